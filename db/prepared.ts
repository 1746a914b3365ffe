/**
 * Which statements both database drivers keep as named prepared statements (db/client.ts for Postgres,
 * db/pglite_thread_worker.ts for PGlite on disk).
 */

/** A nearest-neighbour search: whether the vector index serves it best depends on its filters' values. */
const NEAREST = /order by \w+(\.\w+)? <=>/i;

/**
 * Which statements are kept prepared: those with values (one without is sent in one round trip anyway, and DDL
 * need not stay cached), up to 64 of them (bulk inserts and long id lists would each keep a statement of its
 * own), except nearest-neighbour searches. A prepared statement saves a round trip, and after five runs Postgres
 * may plan it once for any values (when that plan costs no more than the plans made for each): planning the
 * limits check took 0.7 ms and running it 0.09 ms; the full-text search, 2.6 ms prepared against 4.3 unprepared.
 * A nearest-neighbour search with a filter is planned for its values every time.
 */
export const preparable = (query: string, parameters: number): boolean =>
  parameters > 0 && parameters <= 64 && !NEAREST.test(query);
