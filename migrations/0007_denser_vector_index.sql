-- The vector index moves to m=24, ef_construction=128 (better recall at the same search cost). Only the old
-- index is dropped here, in milliseconds; the new one (db/snippets.ts CREATE_VECTOR_INDEX, the same definition
-- as db/schema.ts) is built after the migrations, by `deno task migrate` or in the background by a starting
-- server, while searches scan exactly. Databases that applied the earlier text (drop and build) are unaffected.
DROP INDEX IF EXISTS "snippets_embedding_idx";
