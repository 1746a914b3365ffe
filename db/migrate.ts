/**
 * Applies the committed migrations in migrations/ to either driver. Idempotent: applied ones are skipped.
 */
import { sql } from "drizzle-orm";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { fileURLToPath } from "node:url";
import type { Database } from "./client.ts";

/** The folder drizzle-kit writes to, resolved relative to this file so it works from any working directory. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../migrations", import.meta.url));

/** An arbitrary constant: instances starting together take turns migrating on this advisory lock. */
const MIGRATION_LOCK_KEY = 7_406_281_133;

/** What migrate() did. */
export interface MigrationResult {
  /** Migrations applied by this call. */
  applied: number;
  /** Migrations recorded in the database after this call. */
  total: number;
}

/**
 * Applies pending migrations; on Postgres, holds an advisory lock so concurrent starts cannot race. Then builds
 * the vector index if it is missing (migration 0007, or an interrupted bulk load, left it so), unless told to
 * leave that to the caller: a starting server on Postgres builds it in the background instead of holding its
 * start for minutes on a large knowledge base.
 */
export async function migrate(
  database: Database,
  options: { vectorIndex?: "build" | "leave" } = {},
): Promise<MigrationResult> {
  const result = await applyMigrations(database);
  if (options.vectorIndex !== "leave") {
    const { ensureVectorIndex } = await import("./snippets.ts");
    await ensureVectorIndex(database.db);
  }
  return result;
}

async function applyMigrations(database: Database): Promise<MigrationResult> {
  if (database.driver === "pglite") return await applyCounted(database);
  // A dedicated connection holds the lock while the pool runs drizzle's migration transaction.
  const lock = postgres(database.url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await lock`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    const result = await applyCounted(database);
    await lock`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    return result;
  } finally {
    await lock.end({ timeout: 5 });
  }
}

async function applyCounted(database: Database): Promise<MigrationResult> {
  const before = await countApplied(database);
  if (database.driver === "pglite") {
    await migratePglite(database.db as never, { migrationsFolder: MIGRATIONS_FOLDER });
  } else {
    await migratePostgres(database.db as never, { migrationsFolder: MIGRATIONS_FOLDER });
  }
  const total = await countApplied(database);
  return { applied: total - before, total };
}

async function countApplied(database: Database): Promise<number> {
  const exists = await database.db.execute<{ present: boolean }>(
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`,
  );
  if (!rows<{ present: boolean }>(exists)[0]?.present) return 0;
  const result = await database.db.execute<{ n: number }>(
    sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
  );
  return Number(rows<{ n: number }>(result)[0]?.n ?? 0);
}

/** Rows of a raw `execute()` result, whose shape differs between the two drivers. */
export function rows<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}
