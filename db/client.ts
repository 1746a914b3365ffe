/**
 * Opening the database: postgres.js to a real Postgres with pgvector when DATABASE_URL is set,
 * otherwise the embedded PGlite (with pgvector) in DATA_DIR.
 */
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres, { type Sql } from "postgres";
import { DrizzleQueryError } from "drizzle-orm";
import { join, resolve } from "node:path";
import type { Config } from "../config.ts";
import { PgliteThread } from "./pglite_thread.ts";
import { preparable } from "./prepared.ts";
import * as schema from "./schema.ts";

/** The drizzle database both drivers share; every query function takes one of these first. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

interface DatabaseBase {
  db: Db;
  /** Human-readable location for logs: `PGlite at .data/pglite`, `Postgres at host:5432/rounds`. */
  description: string;
  /** Resolves when the database answers a trivial query within the timeout; rejects otherwise. */
  ping(timeoutMs?: number): Promise<void>;
  /** Closes the connection(s) and releases the data-directory lock. Safe to call twice. */
  close(): Promise<void>;
}

/** The embedded database. */
export interface PgliteDatabase extends DatabaseBase {
  driver: "pglite";
  /** PGlite in this thread (in memory), or on its own thread (a data directory). */
  client: PGlite | PgliteThread;
}

/** A real Postgres server. */
export interface PostgresDatabase extends DatabaseBase {
  driver: "postgres";
  client: postgres.Sql;
  url: string;
}

/** An open database of either kind. */
export type Database = PgliteDatabase | PostgresDatabase;

/** Thrown when another process holds the PGlite data directory. */
export class DatabaseLockedError extends Error {
  constructor(dir: string, holder: string) {
    super(
      `PGlite data directory ${dir} is already in use by another Rounds process${holder}. ` +
        `PGlite allows one process per directory: stop the other process, choose another DATA_DIR, ` +
        `or set DATABASE_URL to share a Postgres server between processes`,
    );
    this.name = "DatabaseLockedError";
  }
}

/** Opens the database the configuration names. Migrations are applied separately (db/migrate.ts). */
export function openDatabase(
  config: DatabaseConfig,
): Promise<Database> {
  return config.databaseUrl
    ? Promise.resolve(openPostgres(config.databaseUrl, {
      poolSize: config.databasePoolSize,
      preparedStatements: config.databasePreparedStatements,
    }))
    : openPglite({ dataDir: join(config.dataDir, "pglite") });
}

/** What opening the database reads from the configuration (prepared statements are on unless said). */
export type DatabaseConfig =
  & Pick<Config, "databaseUrl" | "databasePoolSize" | "dataDir">
  & Partial<Pick<Config, "databasePreparedStatements">>;

/** HNSW candidates per vector search, on every connection. */
export const CONNECTION_EF_SEARCH = 100;

/**
 * Settings every connection starts with. hnsw.ef_search 100: the HNSW candidates a vector search considers
 * (recall@10 0.979 at 1M snippets, docs/performance.md); set per connection so that a search is one statement.
 */
export const SESSION_SETTINGS: Readonly<Record<string, string>> = {
  "hnsw.ef_search": String(CONNECTION_EF_SEARCH),
};

/**
 * The client drizzle is given: its statements are named prepared statements that each connection keeps. drizzle
 * asks postgres.js for unnamed ones, which postgres.js sends in two round trips when they have values (describe
 * first, then run): a prepared one is described once per connection and then runs in one. Transactions and
 * savepoints hand their own client to drizzle, so they are wrapped too.
 */
function preparing(client: Sql): Sql {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property === "unsafe") {
        return (query: string, parameters?: unknown[], options?: { prepare?: boolean }) =>
          target.unsafe(query, parameters as never, {
            ...options,
            prepare: preparable(query, parameters?.length ?? 0),
          });
      }
      if (property === "begin" || property === "savepoint") {
        return (...args: unknown[]) => {
          const body = args.pop() as (tx: Sql) => unknown;
          return (value as (...a: unknown[]) => unknown).apply(target, [
            ...args,
            (tx: Sql) => body(preparing(tx)),
          ]);
        };
      }
      return value;
    },
  });
}

/** Connects to a real Postgres (lazily: the first query opens the connection). */
export function openPostgres(
  url: string,
  options: { poolSize?: number; preparedStatements?: boolean } = {},
): PostgresDatabase {
  const client = postgres(url, {
    max: options.poolSize ?? 10,
    connect_timeout: 10,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: "rounds", ...SESSION_SETTINGS },
    // Off: nothing is prepared, not even postgres.js's own statements (a transaction pooler would lose them).
    prepare: options.preparedStatements !== false,
  });
  const parsed = new URL(url);
  let closed = false;
  return {
    driver: "postgres",
    client,
    url,
    db: drizzlePostgres(options.preparedStatements === false ? client : preparing(client), {
      schema,
    }) as unknown as Db,
    description: `Postgres at ${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`,
    ping: (timeoutMs = 3000) => withTimeout(client`select 1`.execute(), timeoutMs, "Postgres did not answer"),
    close: async () => {
      if (closed) return;
      closed = true;
      await client.end({ timeout: 5 });
    },
  };
}

/**
 * Opens PGlite with pgvector. With a dataDir, takes an exclusive lock first (PGlite takes none of its own and
 * corrupts a directory two processes open) and runs PGlite on its own thread (db/pglite_thread.ts). Without
 * one, the database lives in memory, in this thread.
 */
export async function openPglite(options: { dataDir?: string | null } = {}): Promise<PgliteDatabase> {
  if (!options.dataDir) {
    return wrapPglite(await PGlite.create({ extensions: { vector } }), "PGlite in memory");
  }
  const dir = resolve(options.dataDir);
  const lock = await lockDataDir(dir);
  try {
    const client = await PgliteThread.open(dir);
    return wrapPglite(client, `PGlite at ${options.dataDir}`, () => lock.release());
  } catch (error) {
    lock.release();
    throw error;
  }
}

/** Wraps an already created PGlite (tests clone a migrated template this way). */
export function wrapPglite(
  client: PGlite | PgliteThread,
  description: string,
  onClose?: () => void,
): PgliteDatabase {
  let closed = false;
  // PGlite runs statements in order on its one connection: these apply before anything the app sends.
  const settings = Object.entries(SESSION_SETTINGS).map(([name, value]) => `set ${name} = ${value};`).join(
    " ",
  );
  client.exec(settings).catch((error) =>
    console.error(`PGlite: ${settings} failed:`, error?.message ?? error)
  );
  return {
    driver: "pglite",
    client,
    // drizzle's types name the PGlite class; it calls only query, exec and transaction, which PgliteThread has.
    db: drizzlePglite(client as unknown as PGlite, { schema }) as unknown as Db,
    description,
    ping: (timeoutMs = 3000) => withTimeout(client.query("select 1"), timeoutMs, "PGlite did not answer"),
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        if (!client.closed) await client.close();
      } finally {
        onClose?.();
      }
    },
  };
}

/** An exclusive OS-level lock on `<dir>.lock`, released when the process exits, however it exits. */
async function lockDataDir(dir: string): Promise<{ release(): void }> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}.lock`;
  const file = await Deno.open(path, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = await file.tryLock(true);
  } catch (error) {
    file.close();
    throw error;
  }
  if (!locked) {
    const holder = await Deno.readTextFile(path).catch(() => "");
    file.close();
    const pid = holder.match(/^pid (\d+)/m)?.[1];
    throw new DatabaseLockedError(dir, pid ? ` (pid ${pid})` : "");
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`pid ${Deno.pid}\nsince ${new Date().toISOString()}\n`));
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      try {
        file.unlockSync();
      } finally {
        file.close();
      }
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * An error as it may be logged. A failed statement's error (drizzle's DrizzleQueryError) carries the statement's
 * values in its message and stack — a question's text, a name, a password hash — so it is replaced by one that
 * names the statement and the database's reason only. Anything else is returned as it is.
 */
export function loggable(error: unknown): unknown {
  if (!(error instanceof DrizzleQueryError)) return error;
  // The database's own message can quote a value too ('invalid input syntax for type integer: "…"'): only its
  // code (SQLSTATE) and the constraint or table it names are kept.
  const cause = (error.cause ?? {}) as {
    name?: string;
    code?: string;
    constraint?: string;
    constraint_name?: string;
    table?: string;
    table_name?: string;
    stack?: string;
  };
  const what = [
    cause.code && `SQLSTATE ${cause.code}`,
    (cause.constraint ?? cause.constraint_name) && `constraint ${cause.constraint ?? cause.constraint_name}`,
    (cause.table ?? cause.table_name) && `table ${cause.table ?? cause.table_name}`,
  ].filter(Boolean).join(", ");
  const safe = new Error(
    `a database statement failed${what ? ` (${what})` : ""}: ${error.query.slice(0, 300)}`,
  );
  safe.name = "DatabaseError";
  safe.stack = `${safe.name}: ${safe.message}\n${(cause.stack ?? "").split("\n").slice(1).join("\n")}`;
  return safe;
}

/** The message of an error as it may be logged (see {@link loggable}). */
export function loggableMessage(error: unknown): string {
  const safe = loggable(error);
  return safe instanceof Error ? safe.message : String(safe);
}
