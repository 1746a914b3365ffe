-- Custom SQL migration file, put your code below! --
-- pgvector must exist before any table uses the vector type. On managed Postgres (Neon, Supabase, RDS)
-- the extension is allow-listed and the database owner may create it.
CREATE EXTENSION IF NOT EXISTS vector;
