DROP INDEX "snippets_embedding_idx";--> statement-breakpoint
CREATE INDEX "snippets_embedding_idx" ON "snippets" USING hnsw ("embedding" vector_cosine_ops) WITH (m=24,ef_construction=128);