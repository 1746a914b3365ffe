/**
 * The embedded database's thread: PGlite (WebAssembly) answers queries here, so its synchronous work, and above
 * all a commit's flush to disk, never holds up the server's event loop while replies stream. The protocol is
 * one message per query; the main thread (db/pglite_thread.ts) serialises them and holds transactions.
 */
/// <reference lib="deno.worker" />
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";

let pg: PGlite | null = null;

/** A request from the main thread. */
export type ThreadRequest =
  | { id: number; op: "open"; dataDir: string }
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

self.onmessage = async (event: MessageEvent<ThreadRequest>) => {
  const request = event.data;
  try {
    let result: unknown = null;
    if (request.op === "open") {
      pg = await PGlite.create({ dataDir: request.dataDir, extensions: { vector } });
    } else if (request.op === "query") {
      const parsers = Object.fromEntries(request.rawTypes.map((type) => [type, identity]));
      const blob = request.blob ? new Blob([request.blob]) : undefined;
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
};
