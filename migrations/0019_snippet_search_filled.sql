-- Custom SQL migration file, put your code below! --
-- The full-text vectors of the snippets stored before snippet_search (0018) existed, moved into it; 0020 drops
-- the column they were generated in. The index's pending list (what GIN keeps aside from inserts, read in full by
-- every search) is merged, and the planner gets the new table's statistics: PGlite has no autovacuum to do either.
insert into snippet_search (snippet_id, search)
select id, search from snippets where search is not null
on conflict (snippet_id) do nothing;
--> statement-breakpoint
select gin_clean_pending_list('snippet_search_idx'::regclass);
--> statement-breakpoint
analyze snippet_search;
