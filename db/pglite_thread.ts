/**
 * PGlite on its own thread, with the part of PGlite's interface drizzle uses: query, exec, transaction.
 *
 * PGlite runs PostgreSQL as synchronous WebAssembly: on the server's thread, a commit's flush to disk (1–8 ms
 * here) holds back whatever else is due, such as a streamed token. PGlite's own PGliteWorker solves that with five
 * lock round trips per query, which measured 15× slower under 500 concurrent replies; this client sends one
 * message per query. PGlite has one connection, so queries run one at a time, and a transaction holds the line
 * from BEGIN to COMMIT so no other query lands inside it. Outside one, a query goes to the thread the moment it is
 * asked: the thread runs what it is sent in order, one after the other, without waiting for this thread to take
 * each answer and send the next question (a request's statements asked together ran ~0.3 ms apart at p50 and
 * 1.6 ms at p90 when each waited for this thread: bench:request, 2026-12-07).
 */
import type { CheckpointPolicy, ThreadRequest, VacuumPolicy } from "./pglite_thread_worker.ts";

type Result = { rows: unknown[]; fields: { name: string; dataTypeID: number }[]; affectedRows?: number };
type QueryOptions = {
  rowMode?: "array" | "object";
  parsers?: Record<number, (value: string) => unknown>;
  /** The input of a `COPY … FROM '/dev/blob'`, as PGlite takes it. */
  blob?: Blob;
};
type Pending = { resolve: (value: unknown) => void; reject: (error: unknown) => void };
type Distribute<T> = T extends unknown ? Omit<T, "id"> : never;

/** The transaction handle passed to a transaction callback. */
export interface ThreadTransaction {
  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<Result>;
  exec(sql: string): Promise<Result[]>;
  rollback(): Promise<void>;
  readonly closed: boolean;
}

/**
 * Bytes as the `blob` option of a PGlite query, the input of `COPY … FROM '/dev/blob'`, which PGlite reads with
 * arrayBuffer() alone. Not a real Blob: Deno keeps a Blob's bytes outside the JavaScript heap until a garbage
 * collection that nothing prompts: with a Blob per batch, a 1 GB ingest held ~0.91 GB of RSS rather than ~0.68 GB.
 */
export function copyInput(buffer: ArrayBuffer): Blob {
  return { size: buffer.byteLength, type: "", arrayBuffer: () => Promise.resolve(buffer) } as unknown as Blob;
}

/** PGlite in a worker thread. */
export class PgliteThread {
  #worker: Worker;
  #pending = new Map<number, Pending>();
  #next = 1;
  /**
   * Settles when the transaction (or close) asked last has ended; null when none is queued or open. While it is
   * set, queries wait for it rather than being sent, so that none lands inside a transaction.
   */
  #held: Promise<unknown> | null = null;
  closed = false;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.onmessage = (
      event: MessageEvent<{ id: number; result?: unknown; error?: Record<string, unknown> }>,
    ) => {
      const { id, result, error } = event.data;
      const pending = this.#pending.get(id);
      this.#pending.delete(id);
      if (!pending) return;
      if (error) pending.reject(Object.assign(new Error(String(error.message)), error));
      else pending.resolve(result);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const failure = new Error(`The database thread failed: ${event.message}`);
      for (const pending of this.#pending.values()) pending.reject(failure);
      this.#pending.clear();
    };
  }

  /**
   * Starts the thread and opens PGlite (with pgvector) on dataDir; the thread checkpoints and vacuums by the
   * policies given.
   */
  static async open(
    dataDir: string,
    options: { checkpoints?: CheckpointPolicy; vacuum?: VacuumPolicy } = {},
  ): Promise<PgliteThread> {
    const worker = new Worker(new URL("./pglite_thread_worker.ts", import.meta.url), { type: "module" });
    const thread = new PgliteThread(worker);
    try {
      await thread.#call({ op: "open", dataDir, checkpoints: options.checkpoints, vacuum: options.vacuum });
    } catch (error) {
      worker.terminate();
      throw error;
    }
    return thread;
  }

  #call(request: Distribute<ThreadRequest>, transfer: Transferable[] = []): Promise<unknown> {
    if (this.closed && request.op !== "close") return Promise.reject(new Error("PGlite is closed"));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...request, id }, transfer);
    });
  }

  /**
   * Runs fn after whatever was asked before it (the thread runs what it is sent in order); nothing asked after it
   * is sent until fn has finished.
   */
  #alone<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#held ? this.#held.then(fn, fn) : fn();
    const held = run.catch(() => {});
    this.#held = held;
    held.then(() => {
      if (this.#held === held) this.#held = null;
    });
    return run;
  }

  async #query(sql: string, params: unknown[] = [], options: QueryOptions = {}): Promise<Result> {
    // drizzle's parsers keep dates as the text Postgres sends; only such identity parsers can cross the thread.
    const rawTypes = Object.entries(options.parsers ?? {})
      .filter(([, parse]) => parse("2000-01-01") === "2000-01-01")
      .map(([type]) => Number(type));
    // A COPY's input crosses as bytes whose buffer moves to the thread rather than being copied.
    const blob = options.blob ? await options.blob.arrayBuffer() : undefined;
    return await this.#call(
      { op: "query", sql, params, rowMode: options.rowMode, rawTypes, blob },
      blob ? [blob] : [],
    ) as Result;
  }

  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<Result> {
    // Sent at once (#query posts before its first await when there is no COPY input to read), unless a
    // transaction is waiting or open; then after it.
    const run = () => this.#query(sql, params, options);
    return this.#held ? this.#held.then(run) : options?.blob ? this.#alone(run) : run();
  }

  exec(sql: string): Promise<Result[]> {
    const run = () => this.#call({ op: "exec", sql }) as Promise<Result[]>;
    return this.#held ? this.#held.then(run) : run();
  }

  transaction<T>(fn: (tx: ThreadTransaction) => Promise<T>): Promise<T> {
    return this.#alone(async () => {
      await this.#query("BEGIN");
      let done = false;
      const tx: ThreadTransaction = {
        query: (sql, params, options) => this.#query(sql, params, options),
        exec: (sql) => this.#call({ op: "exec", sql }) as Promise<Result[]>,
        rollback: async () => {
          await this.#query("ROLLBACK");
          done = true;
        },
        get closed() {
          return done;
        },
      };
      try {
        const result = await fn(tx);
        if (!done) await this.#query("COMMIT");
        done = true;
        return result;
      } catch (error) {
        if (!done) await this.#query("ROLLBACK").catch(() => {});
        done = true;
        throw error;
      }
    });
  }

  /** Waits for queued queries, closes PGlite cleanly (flushing to disk), and stops the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.#alone(() => this.#call({ op: "close" })).catch(() => {});
    this.#worker.terminate();
  }
}
