CREATE TABLE "answer_evals" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"question_set" text NOT NULL,
	"questions" integer NOT NULL,
	"figures" jsonb NOT NULL
);
--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "evidence_note" text;--> statement-breakpoint
CREATE INDEX "answer_evals_created_idx" ON "answer_evals" USING btree ("created_at" DESC NULLS LAST);