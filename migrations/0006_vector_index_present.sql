-- Custom SQL migration file, put your code below! --
-- Once: made sure a vector index existed for 0007 to replace. Index builds are no longer part of migrations (on
-- a large knowledge base they held every starting instance for minutes): 0007 only drops the old index, and
-- the current one is built by `deno task migrate`, or by a starting server (in the background on Postgres),
-- with db/snippets.ts ensureVectorIndex. Databases that applied the earlier text are unaffected.
SELECT 1;
