/**
 * The one interface every embedder implements, and the start-up check that stored vectors match the configured
 * embedder: the same embedder, and the same dimension (an empty knowledge base simply takes the embedder's).
 */
import type { Db } from "../db/client.ts";
import {
  MAX_INDEXED_DIMENSIONS,
  switchEmptyVectorColumns,
  type VectorColumn,
  vectorColumns,
  type VectorTable,
} from "../db/snippets.ts";

/** Turns texts into unit vectors of its dimension, in order. */
export interface Embedder {
  /** Recorded with every vector it makes: "lexical-hash-v1", "endpoint:BAAI/bge-small-en-v1.5". */
  readonly id: string;
  /** What logs and the knowledge page call it. */
  readonly description: string;
  /** Values in each vector: 384 for the built-in embedder; a server's model says its own (learned at start). */
  readonly dimensions: number;
  /** Texts per call that suit it (the server's batch size for an endpoint). */
  readonly batchSize: number;
  /**
   * Its vectors say which words a text has and nothing more (the built-in embedder): two texts are near only
   * when they share words, so retrieval ranks full text's matches by similarity instead of walking the index.
   */
  readonly wordsOnly?: boolean;
  /** Runs in this process (the built-in embedder): nothing it is given leaves the server. */
  readonly local?: boolean;
  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
}

/** Thrown at start when the stored vectors were made by another embedder, or in another dimension. */
export class EmbedderMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EmbedderMismatchError";
  }
}

/** Rows some embedder made, in the knowledge base (the default) or the case library. */
export interface StoredVectors {
  embedder: string;
  count: number;
  table?: VectorTable;
}

const REEMBED = "`deno task ingest --reembed`";

function counted(stored: StoredVectors): string {
  const noun = stored.table === "cases" ? "case" : "snippet";
  return `${stored.count.toLocaleString("en")} ${noun}${stored.count === 1 ? "" : "s"}`;
}

/** Throws EmbedderMismatchError unless every stored vector came from the configured embedder. */
export function checkEmbedder(stored: StoredVectors[], configured: Embedder): void {
  if (!stored.some((s) => s.embedder !== configured.id)) return;
  const list = stored.map((s) => `${s.embedder} (${counted(s)})`).join(", ");
  throw new EmbedderMismatchError(
    `The knowledge base was embedded with ${list}, but the configured embedder is ${configured.id}. ` +
      `Vectors from different embedders cannot be compared: run ${REEMBED} to re-embed every snippet and ` +
      `case with ${configured.id}, or set EMBEDDING_URL / EMBEDDING_MODEL back to what made them`,
  );
}

/**
 * Compares the embedding columns with the embedder's dimension. Throws EmbedderMismatchError, naming both
 * dimensions and the re-embed command, when a table holding vectors has another one (or none: an interrupted
 * re-embed); returns the empty tables whose dimension must change.
 */
export function checkDimensions(columns: VectorColumn[], configured: Embedder): VectorColumn[] {
  const dimensions = configured.dimensions;
  if (dimensions > MAX_INDEXED_DIMENSIONS) {
    throw new EmbedderMismatchError(
      `The configured embedder ${configured.id} makes ${dimensions}-dimension vectors; pgvector's HNSW index ` +
        `holds at most ${MAX_INDEXED_DIMENSIONS}: choose an embedding model with fewer dimensions`,
    );
  }
  const differ = columns.filter((c) => c.dimensions !== dimensions);
  const held = differ.filter((c) => c.embedders.some((e) => e.count > 0));
  if (held.length === 0) return differ;
  const parts = held.map((c) => {
    const where = c.table === "cases" ? "case library" : "knowledge base";
    const made = c.embedders.map((e) => `${counted({ ...e, table: c.table })} by ${e.embedder}`).join(", ");
    return c.dimensions === null
      ? `${where} is part-way through an interrupted re-embed (${made})`
      : `${where} holds ${c.dimensions}-dimension vectors (${made})`;
  });
  const interrupted = held.some((c) => c.dimensions === null);
  throw new EmbedderMismatchError(
    `The ${
      parts.join(" and the ")
    }, but the configured embedder ${configured.id} makes ${dimensions}-dimension ` +
      `vectors. Run ${REEMBED} to ${
        interrupted ? "finish re-embedding" : "re-embed"
      } every snippet and case ` +
      `with ${configured.id} (it changes the embedding columns to ${dimensions} dimensions and rebuilds the ` +
      `vector index), or set EMBEDDING_URL / EMBEDDING_MODEL back to what made them`,
  );
}

/**
 * The start-up check of the stored vectors against the configured embedder (main.ts and the tasks): an empty
 * knowledge base or case library takes the embedder's dimension; stored vectors of another dimension or embedder
 * throw EmbedderMismatchError with the re-embed command. Returns a line to log when a dimension changed.
 */
export async function prepareVectorStore(db: Db, embedder: Embedder): Promise<string | null> {
  const columns = await vectorColumns(db);
  const empty = checkDimensions(columns, embedder);
  checkEmbedder(columns.flatMap((c) => c.embedders.map((e) => ({ ...e, table: c.table }))), embedder);
  if (empty.length === 0) return null;
  const switched = await switchEmptyVectorColumns(db, embedder.dimensions);
  if (switched.length === 0) return null; // another instance did it meanwhile
  const before = [
    ...new Set(empty.filter((c) => switched.includes(c.table)).map((c) => c.dimensions ?? "any")),
  ];
  const names = switched.map((t) => t === "cases" ? "case library" : "knowledge base").join(" and ");
  return `knowledge: the empty ${names} now store${
    switched.length === 1 ? "s" : ""
  } ${embedder.dimensions}-` +
    `dimension vectors for ${embedder.id} (was ${before.join(" / ")})`;
}

/** Throws unless the vector has the embedder's dimension and finite values. */
export function checkVector(vector: ArrayLike<number>, embedderId: string, dimensions: number): void {
  if (vector.length !== dimensions) {
    throw new Error(
      `Embedder ${embedderId} returned a ${vector.length}-dimension vector after ${dimensions}-dimension ones`,
    );
  }
  for (let i = 0; i < vector.length; i++) {
    if (!Number.isFinite(vector[i])) throw new Error(`Embedder ${embedderId} returned a non-finite value`);
  }
}

/** The vector as pgvector's text form: `[0.1,0.2,…]`. */
export function vectorLiteral(vector: ArrayLike<number>): string {
  let out = "[";
  for (let i = 0; i < vector.length; i++) out += (i ? "," : "") + vector[i];
  return out + "]";
}
