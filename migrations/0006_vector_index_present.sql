-- Custom SQL migration file, put your code below! --
-- An interrupted bulk ingest can leave the vector index dropped (start-up rebuilds it after migrating). The next
-- migration replaces the index, so make sure there is one to replace. Both builds get room to work in memory.
SET maintenance_work_mem = '512MB';--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "snippets_embedding_idx" ON "snippets" USING hnsw ("embedding" vector_cosine_ops) WITH (m=16,ef_construction=64);
