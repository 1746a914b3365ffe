CREATE TABLE "ingest_runs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"input_key" text NOT NULL,
	"path" text NOT NULL,
	"format" text NOT NULL,
	"source" text,
	"records_done" integer DEFAULT 0 NOT NULL,
	"added" integer DEFAULT 0 NOT NULL,
	"duplicates" integer DEFAULT 0 NOT NULL,
	"skipped" integer DEFAULT 0 NOT NULL,
	"completed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "message_sources" (
	"message_id" uuid NOT NULL,
	"rank" smallint NOT NULL,
	"snippet_id" uuid,
	"score" real NOT NULL,
	CONSTRAINT "message_sources_message_id_rank_pk" PRIMARY KEY("message_id","rank")
);
--> statement-breakpoint
CREATE TABLE "snippets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"source" text NOT NULL,
	"source_id" text NOT NULL,
	"url" text,
	"specialty" text,
	"title" text,
	"question" text,
	"answer" text NOT NULL,
	"text" text NOT NULL,
	"content_hash" text NOT NULL,
	"embedder" text NOT NULL,
	"embedding" vector(384) NOT NULL,
	"search" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', "text")) STORED,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "evidence" text;--> statement-breakpoint
ALTER TABLE "message_sources" ADD CONSTRAINT "message_sources_message_id_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "public"."messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_sources" ADD CONSTRAINT "message_sources_snippet_id_snippets_id_fk" FOREIGN KEY ("snippet_id") REFERENCES "public"."snippets"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ingest_runs_input_key_idx" ON "ingest_runs" USING btree ("input_key","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "snippets_content_hash_idx" ON "snippets" USING btree ("content_hash");--> statement-breakpoint
CREATE INDEX "snippets_embedding_idx" ON "snippets" USING hnsw ("embedding" vector_cosine_ops) WITH (m=16,ef_construction=64);--> statement-breakpoint
CREATE INDEX "snippets_search_idx" ON "snippets" USING gin ("search");--> statement-breakpoint
CREATE INDEX "snippets_source_idx" ON "snippets" USING btree ("source");--> statement-breakpoint
CREATE INDEX "snippets_specialty_idx" ON "snippets" USING btree ("specialty");--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_evidence_check" CHECK ("messages"."evidence" in ('sources', 'none_relevant', 'empty'));