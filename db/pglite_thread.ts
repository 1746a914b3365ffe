/**
 * PGlite on its own thread, with the part of PGlite's interface drizzle uses: query, exec, transaction.
 *
 * PGlite runs PostgreSQL as synchronous WebAssembly: on the server's thread, a commit's flush to disk (1–8 ms
 * here) holds back whatever else is due, such as a streamed token. PGlite's own PGliteWorker solves that with five
 * lock round trips per query, which measured 15× slower under 500 concurrent replies; this client sends one
 * message per query. PGlite has one connection, so queries run one at a time, and a transaction holds the line
 * from BEGIN to COMMIT so no other query lands inside it.
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
  #line: Promise<unknown> = Promise.resolve();
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

  /** Runs fn when the queries before it are done; nothing else runs until it finishes. */
  #inLine<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#line.then(fn, fn);
    this.#line = run.catch(() => {});
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
    return this.#inLine(() => this.#query(sql, params, options));
  }

  exec(sql: string): Promise<Result[]> {
    return this.#inLine(() => this.#call({ op: "exec", sql }) as Promise<Result[]>);
  }

  transaction<T>(fn: (tx: ThreadTransaction) => Promise<T>): Promise<T> {
    return this.#inLine(async () => {
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
    await this.#inLine(() => this.#call({ op: "close" })).catch(() => {});
    this.#worker.terminate();
  }
}
