/**
 * The embedded database's thread: PGlite (WebAssembly) answers queries here, so its synchronous work, and above
 * all a commit's flush to disk, never holds up the server's event loop while replies stream. The protocol is
 * one message per query; the main thread (db/pglite_thread.ts) serialises them and holds transactions.
 */
/// <reference lib="deno.worker" />
import { parse, PGlite, protocol } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { copyInput } from "./pglite_thread.ts";
import { preparable } from "./prepared.ts";

let pg: PGlite | null = null;

/** When the thread checkpoints (see checkpointIfDue). */
export interface CheckpointPolicy {
  /** WAL written since the last checkpoint that calls for the next one. */
  walBytes: number;
  /** Time since the last checkpoint after which any WAL written calls for one. */
  maxIntervalMs: number;
  /** How often, at most, the WAL position is looked at (after a request, outside a transaction). */
  lookIntervalMs: number;
}

/** Defaults: Postgres's own checkpoint_timeout, and a quarter of its max_wal_size, as a laptop's disk is smaller. */
export const CHECKPOINT_POLICY: CheckpointPolicy = {
  walBytes: 256 * 2 ** 20,
  maxIntervalMs: 5 * 60_000,
  lookIntervalMs: 2000,
};

/** When the thread vacuums (see vacuumIfDue). */
export interface VacuumPolicy {
  /** The tables vacuumed and analyzed, one between two requests. */
  tables: readonly string[];
  /** WAL written since the last round that calls for the next one. */
  walBytes: number;
  /** Time since the last round after which any WAL written calls for one. */
  maxIntervalMs: number;
}

/**
 * The tables a chat writes to as it goes (updated rows leave dead versions behind); the knowledge base only grows
 * by ingest, which counts its own terms. Every 8 MB of WAL (a few hundred exchanges) or 10 minutes.
 */
export const VACUUM_POLICY: VacuumPolicy = {
  tables: [
    "messages",
    "chat_sessions",
    "message_sources",
    "rate_limits",
    "token_usage",
    "auth_sessions",
    "users",
    "cases",
    "case_versions",
    "audit_log",
  ],
  walBytes: 8 * 2 ** 20,
  maxIntervalMs: 10 * 60_000,
};

/** A request from the main thread. */
export type ThreadRequest =
  | { id: number; op: "open"; dataDir: string; checkpoints?: CheckpointPolicy; vacuum?: VacuumPolicy }
  | {
    id: number;
    op: "query";
    sql: string;
    params: unknown[];
    rowMode?: "array" | "object";
    rawTypes: number[];
    /** The input of a `COPY … FROM '/dev/blob'`. */
    blob?: ArrayBuffer;
  }
  | { id: number; op: "exec"; sql: string }
  | { id: number; op: "close" };

const identity = (value: string) => value;

/**
 * Statements with values run as named prepared statements, kept per statement text, as on Postgres (which ones:
 * db/prepared.ts): PGlite's own query() parses and plans every statement anew, and planning the full-text search
 * (its question's to_tsvector, the statistics lookups) was ~3 ms of its ~8 at p50 at 100,000 snippets. Postgres
 * plans a kept statement for its values five times, then keeps a generic plan where that costs no more. The
 * least recently used beyond PREPARED_STATEMENTS are closed.
 */
const PREPARED_STATEMENTS = 256;
const prepared = new Map<string, { name: string; types: number[] }>();
let statementsNamed = 0;
type BackendMessage = Awaited<ReturnType<PGlite["execProtocolStream"]>>[number];

async function preparedQuery(
  client: PGlite,
  sql: string,
  params: unknown[],
  options: { rowMode?: "array" | "object"; parsers: Record<number, (value: string) => unknown> },
): Promise<ReturnType<typeof parse.parseResults>[number]> {
  const run = (message: Uint8Array) => client.execProtocolStream(message, { syncToFs: false });
  const messages: BackendMessage[] = [];
  try {
    let statement = prepared.get(sql);
    if (statement) {
      prepared.delete(sql); // the map's order is the order of use
    } else {
      const name = `rounds_${++statementsNamed}`;
      await run(protocol.serialize.parse({ name, text: sql }));
      const described = await run(protocol.serialize.describe({ type: "S", name }));
      const parameters = described.find((m) => m.name === "parameterDescription") as
        | { dataTypeIDs: number[] }
        | undefined;
      statement = { name, types: parameters?.dataTypeIDs ?? [] };
    }
    prepared.set(sql, statement);
    const values = params.map((value, i) => {
      if (value === null || value === undefined) return null;
      const serialize = client.serializers[statement.types[i]];
      return serialize ? serialize(value) : String(value);
    });
    messages.push(
      ...await run(protocol.serialize.bind({ statement: statement.name, values })),
      ...await run(protocol.serialize.describe({ type: "P" })),
      ...await run(protocol.serialize.execute({})),
    );
  } catch (error) {
    // A table altered under a kept statement ("cached plan must not change result type"): parsed afresh next time.
    if ((error as { code?: string }).code === "0A000") await forget(client, sql);
    throw error;
  } finally {
    messages.push(...await run(protocol.serialize.sync()));
  }
  // As PGlite's query() does outside a transaction.
  if (!client.isInTransaction()) await client.syncToFs();
  while (prepared.size > PREPARED_STATEMENTS) await forget(client, prepared.keys().next().value!);
  return parse.parseResults(messages, client.parsers, options)[0];
}

/** Closes a kept statement. */
async function forget(client: PGlite, sql: string): Promise<void> {
  const statement = prepared.get(sql);
  if (!statement) return;
  prepared.delete(sql);
  await client.execProtocolStream(protocol.serialize.close({ type: "S", name: statement.name }), {
    syncToFs: false,
  })
    .catch(() => {});
  await client.execProtocolStream(protocol.serialize.sync(), { syncToFs: false }).catch(() => {});
}

let policy = CHECKPOINT_POLICY;
let walAtCheckpoint = 0n;
let checkpointedAt = 0;
let lookedAt = 0;

/**
 * PGlite is Postgres as a single backend, without the checkpointer process: nothing checkpoints on WAL volume or
 * on time, so the WAL grows until PGlite closes (6.8 GB of it after a 1 GB ingest), and a crash replays all of
 * it at the next start (65 s for that one). The thread checkpoints itself instead, between requests; Postgres
 * then recycles the WAL before the checkpoint, keeping at most max_wal_size.
 */
async function checkpointIfDue(): Promise<void> {
  const now = performance.now();
  if (!pg || pg.closed || pg.isInTransaction() || now - lookedAt < policy.lookIntervalMs) return;
  lookedAt = now;
  const written = await walPosition(pg) - walAtCheckpoint;
  if (written >= BigInt(policy.walBytes) || (written > 0n && now - checkpointedAt >= policy.maxIntervalMs)) {
    await pg.exec("checkpoint");
    walAtCheckpoint += written;
    checkpointedAt = performance.now();
  }
}

let vacuumPolicy = VACUUM_POLICY;
let walAtVacuum = 0n;
let vacuumedAt = 0;
let vacuumLookedAt = 0;
/** Tables still to vacuum in the current round. */
let vacuumQueue: string[] = [];

/**
 * PGlite has no autovacuum either: an updated row's old version stays, in the table and in its indexes, and the
 * planner's statistics are never gathered. After a few thousand chat messages, the statement that checks a
 * user's limits read 2,235 dead index entries for the replies being written (there were none) and took 17 ms
 * instead of 1.3 ms. So the thread vacuums and analyzes the tables chat writes to, one table between two
 * requests (a waiting query goes first), with a small statistics sample (3,000 rows) so that no table holds the
 * line for long.
 */
async function vacuumIfDue(): Promise<void> {
  if (!pg || pg.closed || pg.isInTransaction()) return;
  if (vacuumQueue.length === 0) {
    const now = performance.now();
    if (now - vacuumLookedAt < policy.lookIntervalMs) return;
    vacuumLookedAt = now;
    const written = await walPosition(pg) - walAtVacuum;
    if (
      written < BigInt(vacuumPolicy.walBytes) &&
      !(written > 0n && now - vacuumedAt >= vacuumPolicy.maxIntervalMs)
    ) {
      return;
    }
    walAtVacuum += written;
    vacuumedAt = now;
    vacuumQueue = [...vacuumPolicy.tables];
  }
  const table = vacuumQueue.shift()!;
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`Not a table name: ${table}`);
  // Before the migrations, or in a database of something else, a table may not be there.
  const { rows } = await pg.query<{ present: boolean }>(`select to_regclass($1) is not null as present`, [
    table,
  ]);
  if (rows[0]?.present) {
    // One statement each: several in one message would run as one transaction, where VACUUM cannot.
    await pg.exec("set default_statistics_target = 30");
    try {
      await pg.exec(`vacuum (analyze) ${table}`);
    } finally {
      await pg.exec("reset default_statistics_target");
    }
  }
  // The round's own WAL does not call for the next one: an idle server is left alone.
  if (vacuumQueue.length === 0) walAtVacuum = await walPosition(pg);
}

/** Bytes of WAL written since the cluster began. */
async function walPosition(client: PGlite): Promise<bigint> {
  const { rows } = await client.query<{ at: string }>(
    "select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::text as at",
  );
  return BigInt(rows[0].at.split(".")[0]);
}

// Requests are handled one after another, each with the checkpoint it may call for, so a checkpoint is never
// half way when the next request starts.
let line = Promise.resolve();
self.onmessage = (event: MessageEvent<ThreadRequest>) => {
  line = line.then(() => handle(event.data));
};

async function handle(request: ThreadRequest): Promise<void> {
  try {
    let result: unknown = null;
    if (request.op === "open") {
      policy = request.checkpoints ?? CHECKPOINT_POLICY;
      pg = await PGlite.create({
        dataDir: request.dataDir,
        extensions: { vector },
        // How much WAL a checkpoint keeps for reuse: Postgres's default is 1 GB.
        startParams: [...PGlite.defaultStartParams, "-c", "max_wal_size=256MB", "-c", "min_wal_size=64MB"],
      });
      checkpointedAt = performance.now();
      walAtCheckpoint = await walPosition(pg);
      vacuumPolicy = request.vacuum ?? VACUUM_POLICY;
      vacuumedAt = checkpointedAt;
      walAtVacuum = walAtCheckpoint;
    } else if (request.op === "query") {
      const parsers = Object.fromEntries(request.rawTypes.map((type) => [type, identity]));
      const blob = request.blob ? copyInput(request.blob) : undefined;
      const r = preparable(request.sql, request.params.length) && !blob
        ? await preparedQuery(pg!, request.sql, request.params, { rowMode: request.rowMode, parsers })
        : await pg!.query(request.sql, request.params, { rowMode: request.rowMode, parsers, blob });
      result = { rows: r.rows, fields: r.fields, affectedRows: r.affectedRows };
    } else if (request.op === "exec") {
      result = (await pg!.exec(request.sql)).map((r) => ({
        rows: r.rows,
        fields: r.fields,
        affectedRows: r.affectedRows,
      }));
    } else if (request.op === "close") {
      if (pg && !pg.closed) await pg.close();
    }
    self.postMessage({ id: request.id, result });
  } catch (error) {
    // PGlite's DatabaseError carries code, detail, constraint …: send them all across.
    const e = error as Error & Record<string, unknown>;
    const fields = Object.fromEntries(
      Object.entries(e).filter(([, v]) => ["string", "number"].includes(typeof v)),
    );
    self.postMessage({
      id: request.id,
      error: { ...fields, name: e?.name, message: e?.message ?? String(error) },
    });
  }
  if (request.op === "query" || request.op === "exec") {
    await checkpointIfDue().catch((error) =>
      console.error(`PGlite checkpoint failed: ${error?.message ?? error}`)
    );
    await vacuumIfDue().catch((error) => console.error(`PGlite vacuum failed: ${error?.message ?? error}`));
  }
}
