ALTER TABLE "chat_sessions" ADD COLUMN "kind" text DEFAULT 'chat' NOT NULL;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "case_id" uuid;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "case_version" integer;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD COLUMN "debrief" jsonb;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD CONSTRAINT "chat_sessions_case_id_cases_id_fk" FOREIGN KEY ("case_id") REFERENCES "public"."cases"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chat_sessions" ADD CONSTRAINT "chat_sessions_kind_check" CHECK ("chat_sessions"."kind" in ('chat', 'practice'));