/**
 * Statements whose SQL drizzle builds once per database, for the few that run on every request or reply.
 *
 * drizzle turns a query builder into SQL text anew on every call: 75–120 µs for the sign-in's select on this
 * project's machine, and 10–14 statements a chat message, in code that runs a few hundred times an hour and so
 * stays in V8's baseline tier. A statement built here keeps its text and its column mapping, and takes its
 * values through `sql.placeholder`.
 */
import { type Column, getTableColumns, type InferSelectModel, type Table } from "drizzle-orm";
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
 * Columns decoded as drizzle decodes them (timestamps to dates, jsonb parsed), each read by `read`, keyed by
 * their field names; a missing value is null.
 */
export function decodeColumns<T>(
  columns: Record<string, unknown>,
  read: (field: string, column: Column) => unknown,
): T {
  return Object.fromEntries(
    Object.entries(columns).map(([field, entry]) => {
      const column = entry as Column;
      const value = read(field, column);
      return [field, value === null || value === undefined ? null : column.mapFromDriverValue(value)];
    }),
  ) as T;
}

/**
 * A row a raw statement returned (`returning *`, columns by their SQL names) as drizzle reads that table's rows.
 */
export function decodeRow<T extends Table>(table: T, raw: Record<string, unknown>): InferSelectModel<T> {
  return decodeColumns(getTableColumns(table), (_, column) => raw[column.name]);
}
