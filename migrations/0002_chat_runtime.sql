ALTER TABLE "chat_sessions" ADD COLUMN "temperature" real;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "top_p" real;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "max_new_tokens" integer;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "reply_to" uuid;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "model" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "output_tokens" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "stop_requested" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "superseded" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "feedback" smallint;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "correction" text;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_reply_to_messages_id_fk" FOREIGN KEY ("reply_to") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "messages_reply_to_idx" ON "messages" USING btree ("reply_to");--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_feedback_check" CHECK ("messages"."feedback" in (-1, 1));