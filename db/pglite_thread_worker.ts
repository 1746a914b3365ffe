/**
 * The embedded database's thread: PGlite (WebAssembly) answers queries here, so its synchronous work, and above
 * all a commit's flush to disk, never holds up the server's event loop while replies stream. The protocol is
 * one message per query; the main thread (db/pglite_thread.ts) serialises them and holds transactions.
 */
/// <reference lib="deno.worker" />
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { copyInput } from "./pglite_thread.ts";

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

/** A request from the main thread. */
export type ThreadRequest =
  | { id: number; op: "open"; dataDir: string; checkpoints?: CheckpointPolicy }
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
    } else if (request.op === "query") {
      const parsers = Object.fromEntries(request.rawTypes.map((type) => [type, identity]));
      const blob = request.blob ? copyInput(request.blob) : undefined;
      const r = await pg!.query(request.sql, request.params, { rowMode: request.rowMode, parsers, blob });
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
  }
}
