/**
 * The one interface every embedder implements, and the check that stored vectors match the configured embedder.
 */
import { EMBEDDING_DIMENSIONS } from "../db/schema.ts";

/** Turns texts into unit vectors of EMBEDDING_DIMENSIONS, in order. */
export interface Embedder {
  /** Recorded with every vector it makes: "lexical-hash-v1", "tei:BAAI/bge-small-en-v1.5". */
  readonly id: string;
  /** What logs and the knowledge page call it. */
  readonly description: string;
  /** Texts per call that suit it (the server's batch size for an endpoint). */
  readonly batchSize: number;
  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
}

/** Thrown at start when the knowledge base was embedded by another embedder than the configured one. */
export class EmbedderMismatchError extends Error {
  constructor(readonly stored: { embedder: string; count: number }[], readonly configured: string) {
    const list = stored.map((s) => `${s.embedder} (${s.count} snippets)`).join(", ");
    super(
      `The knowledge base was embedded with ${list}, but the configured embedder is ${configured}. ` +
        `Vectors from different embedders cannot be compared: run \`deno task ingest --reembed\` to re-embed ` +
        `every snippet with ${configured}, or set EMBEDDING_URL / EMBEDDING_MODEL back to what made them`,
    );
    this.name = "EmbedderMismatchError";
  }
}

/** Throws EmbedderMismatchError unless every stored vector came from the configured embedder. */
export function checkEmbedder(stored: { embedder: string; count: number }[], configured: Embedder): void {
  if (stored.some((s) => s.embedder !== configured.id)) {
    throw new EmbedderMismatchError(stored, configured.id);
  }
}

/** Throws unless the vector has the schema's dimension and finite values. */
export function checkVector(vector: ArrayLike<number>, embedderId: string): void {
  if (vector.length !== EMBEDDING_DIMENSIONS) {
    throw new Error(
      `Embedder ${embedderId} returned ${vector.length}-dimensional vectors; Rounds stores ` +
        `${EMBEDDING_DIMENSIONS} (EMBEDDING_DIMENSIONS): choose a ${EMBEDDING_DIMENSIONS}-dimensional model ` +
        `such as BAAI/bge-small-en-v1.5`,
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

/**
 * An embedder that replaces identifiers with placeholders (safety/phi.ts) before texts leave for it: for the
 * questions and searches users type, when the embedder is a remote endpoint. Same id, so vectors stay
 * comparable with the corpus.
 */
export function withRedaction(embedder: Embedder, redact: (text: string) => string): Embedder {
  return {
    id: embedder.id,
    description: embedder.description,
    batchSize: embedder.batchSize,
    embed: (texts, options) => embedder.embed(texts.map(redact), options),
  };
}
