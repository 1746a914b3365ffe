CREATE TABLE "snippet_search" (
	"snippet_id" uuid PRIMARY KEY NOT NULL,
	"search" "tsvector" NOT NULL
);
--> statement-breakpoint
ALTER TABLE "snippet_search" ADD CONSTRAINT "snippet_search_snippet_id_snippets_id_fk" FOREIGN KEY ("snippet_id") REFERENCES "public"."snippets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "snippet_search_idx" ON "snippet_search" USING gin ("search");