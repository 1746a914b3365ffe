/**
 * Statements whose SQL drizzle builds once per database, for the few that run on every request or reply.
 *
 * drizzle turns a query builder into SQL text anew on every call: 75–120 µs for the sign-in's select on this
 * project's machine, and 10–14 statements a chat message, in code that runs a few hundred times an hour and so
 * stays in V8's baseline tier. A statement built here keeps its text and its column mapping, and takes its
 * values through `sql.placeholder`.
 */
import { getTableColumns, type InferSelectModel, type Table } from "drizzle-orm";
import type { Db } from "./client.ts";

/**
 * A statement built by `build` the first time it is asked for on a database, and the same one after that. Keyed
 * by the database object: a transaction (its own object) builds its own.
 */
export function builtOnce<T>(build: (db: Db) => T): (db: Db) => T {
  const built = new WeakMap<Db, T>();
  return (db) => {
    let statement = built.get(db);
    if (statement === undefined) {
      statement = build(db);
      built.set(db, statement);
    }
    return statement;
  };
}

/**
 * A row a raw statement returned (`returning *`, columns by their SQL names) as drizzle reads that table's rows:
 * each column decoded as its type says (timestamps to dates, jsonb parsed), keyed by the schema's field names.
 */
export function decodeRow<T extends Table>(table: T, raw: Record<string, unknown>): InferSelectModel<T> {
  return Object.fromEntries(
    Object.entries(getTableColumns(table)).map(([field, column]) => {
      const value = raw[column.name];
      return [field, value === null || value === undefined ? null : column.mapFromDriverValue(value)];
    }),
  ) as InferSelectModel<T>;
}
