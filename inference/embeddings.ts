/**
 * The endpoint embedder: TEI (`/embed`) or a Hugging Face feature-extraction endpoint through
 * @huggingface/inference, batched to the server's batch size with a few requests in flight, retried with backoff.
 */
import { InferenceClient } from "@huggingface/inference";
import { checkVector, type Embedder } from "../knowledge/embedder.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { classify, EndpointError } from "./endpoint.ts";

/** Where the embedding model is and how to call it. */
export interface EmbeddingTarget {
  /** TEI `/embed` URL or a feature-extraction endpoint; null uses Hugging Face Inference Providers with `model`. */
  url: string | null;
  model: string | null;
  token: string | null;
}

/** Tuning for the endpoint embedder (tests shorten the waits). */
export interface EmbedderOptions {
  /** Texts per request when the server does not say (TEI's /info max_client_batch_size wins). */
  batchSize?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  maxAttempts?: number;
  retryBaseMs?: number;
  fetch?: typeof fetch;
}

/** The id recorded with the vectors an endpoint makes: the model name when given, else the URL. */
export function endpointEmbedderId(target: EmbeddingTarget): string {
  return target.model ? `endpoint:${target.model}` : `endpoint:${target.url}`;
}

/** Builds the endpoint embedder, asking TEI for its batch size first when the URL is a TEI `/embed` route. */
export async function createEndpointEmbedder(
  target: EmbeddingTarget,
  options: EmbedderOptions = {},
): Promise<Embedder> {
  const fetchFn = options.fetch ?? fetch;
  const concurrency = options.concurrency ?? 3;
  const maxAttempts = options.maxAttempts ?? 5;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const batchSize = Math.max(
    1,
    Math.min(await serverBatchSize(target, fetchFn) ?? Infinity, options.batchSize ?? 32),
  );
  const id = endpointEmbedderId(target);
  const client = target.url
    ? new InferenceClient(target.token ?? undefined, { endpointUrl: target.url })
    : new InferenceClient(target.token ?? undefined);

  async function embedBatch(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    for (let attempt = 1;; attempt++) {
      const seen: { status: number | null; retryAfter: string | null } = { status: null, retryAfter: null };
      const capturingFetch: typeof fetch = async (input, init) => {
        const response = await fetchFn(input, init);
        seen.status = response.status;
        seen.retryAfter = response.headers.get("retry-after");
        return response;
      };
      try {
        const output = await client.featureExtraction({
          inputs: texts,
          ...(target.url ? {} : { model: target.model ?? undefined, provider: "hf-inference" as const }),
          normalize: true,
          truncate: true,
        }, { signal, retry_on_error: false, fetch: capturingFetch });
        return toVectors(output, texts.length, id);
      } catch (raw) {
        const error = raw instanceof EndpointError || raw instanceof EmbeddingShapeError
          ? raw
          : classify(raw, seen, signal ?? new AbortController().signal);
        if (!(error instanceof EndpointError) || !error.retryable || attempt >= maxAttempts) {
          throw error instanceof EndpointError
            ? new EndpointError(error.kind, `Embedding endpoint: ${error.message}`, error.status)
            : error;
        }
        const wait = Math.min(error.retryAfterMs ?? retryBaseMs * 2 ** (attempt - 1), 30_000);
        await new Promise((resolve) => setTimeout(resolve, wait));
        if (signal?.aborted) throw signal.reason;
      }
    }
  }

  return {
    id,
    description: `embedding endpoint ${target.url ?? "Hugging Face Inference Providers"}` +
      (target.model ? ` (${target.model})` : "") + `, batches of ${batchSize}, ${concurrency} in flight`,
    batchSize: batchSize * concurrency,
    async embed(texts, embedOptions = {}) {
      const batches: string[][] = [];
      for (let i = 0; i < texts.length; i += batchSize) batches.push(texts.slice(i, i + batchSize));
      const results: Float32Array[][] = new Array(batches.length);
      let next = 0;
      const worker = async () => {
        while (next < batches.length) {
          const index = next++;
          results[index] = await embedBatch(batches[index], embedOptions.signal);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, batches.length) }, worker));
      return results.flat();
    },
  };
}

class EmbeddingShapeError extends Error {}

function toVectors(output: unknown, expected: number, id: string): Float32Array[] {
  const list = Array.isArray(output) && output.length > 0 && typeof output[0] === "number"
    ? [output]
    : output;
  if (!Array.isArray(list) || list.length !== expected) {
    throw new EmbeddingShapeError(
      `Embedder ${id} returned ${Array.isArray(list) ? list.length : "no"} vectors for ${expected} texts`,
    );
  }
  return list.map((item) => {
    // Some servers return token-level vectors ([[[…]]]) without pooling: they cannot be used as they are.
    if (!Array.isArray(item) || item.some((v) => typeof v !== "number")) {
      throw new EmbeddingShapeError(
        `Embedder ${id} did not return one vector per text (is pooling enabled on the server?)`,
      );
    }
    checkVector(item as number[], id);
    return Float32Array.from(item as number[]);
  });
}

/** TEI tells its batch limit at `/info`; other servers do not, and the default applies. */
async function serverBatchSize(target: EmbeddingTarget, fetchFn: typeof fetch): Promise<number | null> {
  if (!target.url || !/\/embed\/?$/.test(new URL(target.url).pathname)) return null;
  try {
    const response = await fetchFn(target.url.replace(/\/embed\/?$/, "/info"), {
      signal: AbortSignal.timeout(5000),
      headers: target.token ? { authorization: `Bearer ${target.token}` } : {},
    });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    const info = await response.json() as { max_client_batch_size?: number };
    return typeof info.max_client_batch_size === "number" ? info.max_client_batch_size : null;
  } catch {
    return null;
  }
}

/** The embedder the configuration names: the endpoint when EMBEDDING_URL or EMBEDDING_MODEL is set, else lexical. */
export async function createEmbedder(
  config: { embeddingUrl: string | null; embeddingModel: string | null; hfToken: string | null },
  options: EmbedderOptions = {},
): Promise<Embedder> {
  if (!config.embeddingUrl && !config.embeddingModel) return createLexicalEmbedder();
  return await createEndpointEmbedder(
    { url: config.embeddingUrl, model: config.embeddingModel, token: config.hfToken },
    options,
  );
}
