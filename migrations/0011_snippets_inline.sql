-- Custom SQL migration file, put your code below! --
-- A search reads each candidate snippet's vector and full-text terms. pgvector stores a vector "external", so
-- every snippet's 1.5 KB vector sat in the TOAST table and each candidate cost a TOAST index lookup and fetch:
-- 300 candidates read ~3,900 buffers on Postgres, and PGlite paid tens of microseconds a row. Kept in the row
-- (rows up to the page size stay whole), the same search reads ~350 buffers: at 100,000 snippets, 7.1-7.6 ->
-- 3.0-3.6 ms on Postgres and p95 31.9 -> 20.0 ms on PGlite for the search alone (docs/performance.md).
-- Only rows written from now on take the new layout; `deno task ingest --compact` rewrites the rows stored
-- before it (VACUUM FULL, which locks the table while it runs).
ALTER TABLE "snippets" ALTER COLUMN "embedding" SET STORAGE MAIN;
--> statement-breakpoint
ALTER TABLE "snippets" SET (toast_tuple_target = 8160);
