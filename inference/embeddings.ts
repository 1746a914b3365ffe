/**
 * The endpoint embedder, for any common embedding server: OpenAI-style `/v1/embeddings` (llama.cpp, vLLM, Ollama
 * `/v1`, LM Studio, OpenAI, TEI `/v1`), Ollama's `/api/embed`, TEI's `/embed`, and Hugging Face feature-extraction
 * (Inference Endpoints or Providers, through @huggingface/inference). Batched to the server's batch size with a
 * few requests in flight, retried with backoff on 429/503; one probe text at start tells the dimension, and any
 * failure is one line carrying the server's own reason.
 */
import { InferenceClient, InferenceClientProviderApiError } from "@huggingface/inference";
import type { EmbeddingApiName } from "../config.ts";
import { checkVector, type Embedder } from "../knowledge/embedder.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { EndpointError, parseRetryAfter } from "./endpoint.ts";
import { describeConnectionError, errorReason } from "./server.ts";
import { createOutboundGate } from "../safety/gate.ts";

/** One of config.ts EMBEDDING_API_NAMES: the embedding servers' wire formats. */
export type EmbeddingApi = EmbeddingApiName;

/** Where the embedding model is and how to call it. */
export interface EmbeddingTarget {
  /** EMBEDDING_URL as the operator gave it; null uses Hugging Face Inference Providers with `model`. */
  url: string | null;
  /** EMBEDDING_MODEL; null uses the one model an OpenAI-style or Ollama server lists. */
  model: string | null;
  /** EMBEDDING_API; null follows the URL's path (embeddingRoute). */
  api?: EmbeddingApi | null;
  token: string | null;
  /** The variable the token came from, named when the server refuses it. */
  tokenEnv?: string | null;
}

/** Tuning for the endpoint embedder (tests shorten the waits). */
export interface EmbedderOptions {
  /** Texts per request when the server does not say (TEI's /info max_client_batch_size wins). */
  batchSize?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  maxAttempts?: number;
  retryBaseMs?: number;
  /** How long one request may take before it counts as unanswered (and is retried). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Replace identifiers in every text sent (safety/gate.ts); on unless told otherwise. */
  redactPhi?: boolean;
}

/** The route embeddings are asked for at, and in which API. */
export interface EmbeddingRoute {
  api: EmbeddingApi;
  /** The URL requests go to; null for Hugging Face Inference Providers. */
  url: string | null;
}

/**
 * Which API a URL speaks and where to post: `…/embeddings` or a base ending `/v1` is OpenAI-style, `…/api/embed`
 * Ollama, `…/embed` TEI, anything else Hugging Face feature-extraction. A named API appends its route to a base URL.
 */
export function embeddingRoute(url: string | null, api: EmbeddingApi | null = null): EmbeddingRoute {
  if (url === null) return { api: "hf", url: null };
  const base = url.replace(/\/+$/, "");
  const path = new URL(base).pathname;
  const kind = api ??
    (/\/embeddings$/.test(path) || /\/v1$/.test(path)
      ? "openai"
      : /\/api\/embed$/.test(path)
      ? "ollama"
      : /\/embed$/.test(path)
      ? "tei"
      : "hf");
  switch (kind) {
    case "openai":
      return {
        api: kind,
        url: /\/embeddings$/.test(path)
          ? base
          : /\/v1$/.test(path)
          ? `${base}/embeddings`
          : `${base}/v1/embeddings`,
      };
    case "ollama":
      return { api: kind, url: /\/api\/embed$/.test(path) ? base : `${base}/api/embed` };
    case "tei":
      return { api: kind, url: /\/embed$/.test(path) ? base : `${base}/embed` };
    case "hf":
      return { api: kind, url: base };
  }
}

/** The id recorded with the vectors an endpoint makes: the model name when known, else the URL. */
export function endpointEmbedderId(target: { url: string | null; model: string | null }): string {
  return target.model ? `endpoint:${target.model}` : `endpoint:${target.url}`;
}

const API_NAMES: Record<EmbeddingApi, string> = {
  openai: "OpenAI-style /v1/embeddings",
  ollama: "Ollama /api/embed",
  tei: "TEI /embed",
  hf: "Hugging Face feature-extraction",
};

/** Embedded once at start to learn the dimension (and that the server answers at all). Holds nothing personal. */
const PROBE_TEXT = "Dry cough for two weeks after a cold.";

/**
 * Builds the endpoint embedder: learns the model from the server when none is configured (OpenAI-style and
 * Ollama), TEI's batch size, and the dimension from one probe text. Throws EndpointError (one line, the server's
 * reason) when the server cannot be used.
 */
export async function createEndpointEmbedder(
  target: EmbeddingTarget,
  options: EmbedderOptions = {},
): Promise<Embedder> {
  const fetchFn = options.fetch ?? fetch;
  const gate = createOutboundGate({ redact: options.redactPhi ?? true });
  const concurrency = options.concurrency ?? 3;
  const maxAttempts = options.maxAttempts ?? 5;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const route = embeddingRoute(target.url, target.api ?? null);
  const shown = route.url ?? "Hugging Face Inference Providers";
  const auth: Auth = { token: target.token, tokenEnv: target.tokenEnv ?? null };
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (target.token) headers.authorization = `Bearer ${target.token}`;

  let model = target.model;
  let learned = false;
  if (!model && route.url && (route.api === "openai" || route.api === "ollama")) {
    model = await listedModel(route as EmbeddingRoute & { url: string }, fetchFn, headers, auth);
    learned = model !== null;
  }
  const batchSize = Math.max(
    1,
    Math.min(
      (route.api === "tei" ? await teiBatchSize(route.url!, fetchFn, headers) : null) ?? Infinity,
      options.batchSize ?? 32,
    ),
  );
  const id = endpointEmbedderId({ url: target.url, model });
  const client = route.api === "hf"
    ? new InferenceClient(target.token ?? undefined, route.url ? { endpointUrl: route.url } : {})
    : null;

  /** One request: the raw vectors, in the texts' order. */
  async function request(texts: string[], signal?: AbortSignal): Promise<unknown> {
    if (client) {
      return await requestHf(client, texts, {
        model,
        endpoint: route.url !== null,
        signal,
        fetchFn,
        auth,
        shown,
      });
    }
    // OpenAI-style and Ollama take the same request; only their answers differ.
    const body = route.api === "tei"
      ? { inputs: texts, normalize: true, truncate: true }
      : { ...(model ? { model } : {}), input: texts };
    const json = await postJson(route.url!, body, { headers, signal, timeoutMs, fetchFn, auth });
    return readVectors(route.api, json, route.url!);
  }

  let dimensions = 0;
  async function embedBatch(
    texts: string[],
    signal?: AbortSignal,
    retryUnreachable = true,
  ): Promise<Float32Array[]> {
    for (let attempt = 1;; attempt++) {
      try {
        return toVectors(await request(texts, signal), texts.length, shown, id, dimensions);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (!(error instanceof EndpointError)) throw error;
        // A server that took the whole timeout is not asked again: a chat answer would wait minutes for it.
        const retry = !error.timedOut &&
          (error.kind === "rate_limited" || error.kind === "unavailable" ||
            (retryUnreachable && error.kind === "unreachable"));
        if (!retry || attempt >= maxAttempts) throw error;
        // Retry-After wins, but 0 (or a date past) must not become a busy loop.
        const wait = Math.max(100, Math.min(error.retryAfterMs ?? retryBaseMs * 2 ** (attempt - 1), 30_000));
        await abortableSleep(wait, signal);
        if (signal?.aborted) throw signal.reason;
      }
    }
  }

  // A closed port at start is an answer, not a hiccup: say so at once rather than after the retries.
  const [probe] = await embedBatch([PROBE_TEXT], undefined, false);
  dimensions = probe.length;

  return {
    id,
    description: `${API_NAMES[route.api]} at ${shown}` +
      (model ? ` (${model}${learned ? ", the model the server lists" : ""})` : "") +
      `, ${dimensions} dimensions, batches of ${batchSize}, ${concurrency} in flight`,
    dimensions,
    batchSize: batchSize * concurrency,
    async embed(original, embedOptions = {}) {
      // Through the gate: questions, searches and documents reach the server with identifiers replaced.
      const texts = await gate.texts(original);
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

/** The key sent, and where it came from, for the message when a server refuses it. */
interface Auth {
  token: string | null;
  tokenEnv: string | null;
}

/** Posts JSON and returns the parsed answer; every failure becomes an EndpointError naming the URL. */
async function postJson(
  url: string,
  body: unknown,
  options: {
    headers: Record<string, string>;
    signal?: AbortSignal;
    timeoutMs: number;
    fetchFn: typeof fetch;
    auth: Auth;
  },
): Promise<unknown> {
  let response: Response;
  let text: string;
  try {
    ({ response, text } = await fetchText(
      options.fetchFn,
      url,
      {
        method: "POST",
        headers: options.headers,
        body: JSON.stringify(body),
      },
      options.timeoutMs,
      options.signal,
    ));
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if ((error as Error)?.name === "TimeoutError") {
      const timedOut = new EndpointError(
        "unavailable",
        `embeddings: ${url} did not answer within ${Math.round(options.timeoutMs / 1000)} s`,
      );
      timedOut.timedOut = true;
      throw timedOut;
    }
    throw new EndpointError(
      "unreachable",
      `embeddings: cannot connect to ${url} (${describeConnectionError(error)})`,
    );
  }
  if (!response.ok) {
    throw httpError(url, response.status, text, response.headers.get("retry-after"), options.auth);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new EndpointError(
      "malformed",
      `embeddings: ${url} answered ${response.status} with something other than JSON: ${
        errorReason(text) || "(empty)"
      }`,
      response.status,
    );
  }
}

/** Fetches and reads the whole answer; past timeoutMs it rejects with a TimeoutError. */
async function fetchText(
  fetchFn: typeof fetch,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ response: Response; text: string }> {
  if (signal?.aborted) throw signal.reason;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("Timed out", "TimeoutError")), timeoutMs);
  const onAbort = () => controller.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const response = await fetchFn(url, { ...init, signal: controller.signal });
    return { response, text: await response.text() };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** A refused request as an EndpointError: retryable for 429 and 502–504, and the server's reason in the message. */
function httpError(
  url: string,
  status: number,
  body: unknown,
  retryAfter: string | null,
  auth: Auth,
  hint = "",
): EndpointError {
  const reason = errorReason(body) || "no reason given";
  let note = hint;
  if (status === 401 || status === 403) {
    note = auth.token && auth.tokenEnv
      ? ` (the key came from ${auth.tokenEnv})`
      : " (no key was sent: set EMBEDDING_API_KEY to the server's key)";
  }
  const kind = status === 429
    ? "rate_limited"
    : status === 502 || status === 503 || status === 504
    ? "unavailable"
    : status >= 400 && status < 500
    ? "rejected"
    : "failed";
  return new EndpointError(
    kind,
    `embeddings: ${url} answered ${status}: ${reason}${note}`,
    status,
    parseRetryAfter(retryAfter),
  );
}

/**
 * The model an OpenAI-style (`/v1/models`) or Ollama (`/api/tags`) server lists, when it lists exactly one;
 * null when it lists none or cannot say. Several is an error naming them: the operator must choose.
 */
async function listedModel(
  route: EmbeddingRoute & { url: string },
  fetchFn: typeof fetch,
  headers: Record<string, string>,
  auth: Auth,
): Promise<string | null> {
  const url = route.api === "openai"
    ? route.url.replace(/\/embeddings$/, "/models")
    : route.url.replace(/\/api\/embed$/, "/api/tags");
  let response: Response;
  let text: string;
  try {
    ({ response, text } = await fetchText(fetchFn, url, { headers }, 10_000));
  } catch (error) {
    throw new EndpointError(
      "unreachable",
      `embeddings: cannot connect to ${url} (${describeConnectionError(error)})`,
    );
  }
  if (response.status === 401 || response.status === 403) {
    throw httpError(url, response.status, text, null, auth);
  }
  // A server without the list (404) leaves the model unnamed; any other failure is not "no model": an id made
  // from the URL instead would not match the stored vectors.
  if (response.status === 404 || response.status === 405) return null;
  if (!response.ok) throw httpError(url, response.status, text, response.headers.get("retry-after"), auth);
  let names: string[];
  try {
    const json = JSON.parse(text) as { data?: { id?: unknown }[]; models?: { name?: unknown }[] };
    names = (route.api === "openai" ? json.data?.map((m) => m.id) : json.models?.map((m) => m.name) ?? [])
      ?.filter((name): name is string => typeof name === "string") ?? [];
  } catch {
    return null;
  }
  if (names.length <= 1) return names[0] ?? null;
  const shown = names.length > 8 ? `${names.slice(0, 8).join(", ")}, …` : names.join(", ");
  throw new EndpointError(
    "rejected",
    `embeddings: ${url} lists ${names.length} models (${shown}): set EMBEDDING_MODEL to the one that embeds`,
  );
}

/** TEI tells its batch limit at `/info`; other servers do not, and the default applies. */
async function teiBatchSize(
  url: string,
  fetchFn: typeof fetch,
  headers: Record<string, string>,
): Promise<number | null> {
  try {
    const { response, text } = await fetchText(fetchFn, url.replace(/\/embed$/, "/info"), { headers }, 5000);
    if (!response.ok) return null;
    const info = JSON.parse(text) as { max_client_batch_size?: unknown };
    return typeof info.max_client_batch_size === "number" ? info.max_client_batch_size : null;
  } catch {
    return null;
  }
}

/** Feature-extraction through @huggingface/inference, its failures told the same way as the other APIs'. */
async function requestHf(
  client: InferenceClient,
  texts: string[],
  options: {
    model: string | null;
    /** True for an Inference Endpoint's URL, false for Inference Providers. */
    endpoint: boolean;
    signal?: AbortSignal;
    fetchFn: typeof fetch;
    auth: Auth;
    shown: string;
  },
): Promise<unknown> {
  let retryAfter: string | null = null;
  const capturingFetch: typeof fetch = async (input, init) => {
    const response = await options.fetchFn(input, init);
    retryAfter = response.headers.get("retry-after");
    return response;
  };
  try {
    return await client.featureExtraction({
      inputs: texts,
      // An Inference Endpoint serves one model; Inference Providers are told which.
      ...(options.endpoint ? {} : { model: options.model ?? undefined, provider: "hf-inference" as const }),
      normalize: true,
      truncate: true,
    }, { signal: options.signal, retry_on_error: false, fetch: capturingFetch });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (error instanceof InferenceClientProviderApiError) {
      const status = error.httpResponse?.status ?? 0;
      const body = error.httpResponse?.body;
      const hint = status === 404 || status === 405
        ? " (is this a TEI, Ollama or OpenAI-style server? Point EMBEDDING_URL at …/embed, …/api/embed or …/v1, " +
          "or set EMBEDDING_API)"
        : "";
      throw httpError(options.shown, status, body ?? error.message, retryAfter, options.auth, hint);
    }
    if (error instanceof TypeError) {
      throw new EndpointError(
        "unreachable",
        `embeddings: cannot connect to ${options.shown} (${describeConnectionError(error)})`,
      );
    }
    throw new EndpointError(
      "failed",
      `embeddings: ${options.shown} failed: ${(error as Error)?.message ?? error}`,
    );
  }
}

/** The vectors in an API's answer, in the order of the texts. */
function readVectors(api: EmbeddingApi, json: unknown, url: string): unknown {
  if (api === "openai") {
    const data = (json as { data?: unknown })?.data;
    if (!Array.isArray(data)) throw shapeError(url, "no data[] list");
    return data.map((item, i) => ({ item, i }))
      .sort((a, b) => (a.item?.index ?? a.i) - (b.item?.index ?? b.i))
      .map(({ item }) => typeof item?.embedding === "string" ? fromBase64(item.embedding) : item?.embedding);
  }
  if (api === "ollama") {
    const embeddings = (json as { embeddings?: unknown })?.embeddings;
    if (!Array.isArray(embeddings)) throw shapeError(url, "no embeddings[] list");
    return embeddings;
  }
  return json;
}

/** OpenAI's `encoding_format: "base64"`: little-endian float32s. */
function fromBase64(text: string): number[] {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return Array.from(new Float32Array(bytes.buffer, 0, Math.floor(bytes.length / 4)));
}

function shapeError(url: string, what: string): EndpointError {
  return new EndpointError(
    "malformed",
    `embeddings: ${url} answered with ${what}: is it an embedding route?`,
  );
}

/** Checks and normalises an answer's vectors: one per text, all of the embedder's dimension, unit length. */
function toVectors(
  output: unknown,
  expected: number,
  url: string,
  id: string,
  dimensions: number,
): Float32Array[] {
  const list = Array.isArray(output) && output.length > 0 && typeof output[0] === "number"
    ? [output]
    : output;
  if (!Array.isArray(list) || list.length !== expected) {
    throw shapeError(url, `${Array.isArray(list) ? list.length : "no"} vectors for ${expected} texts`);
  }
  return list.map((item) => {
    // Token-level vectors ([[[…]]]) come from a server without pooling: they cannot be used as they are.
    if (!Array.isArray(item) || item.length === 0 || item.some((v) => typeof v !== "number")) {
      throw shapeError(url, "no single vector per text (is pooling enabled on the server?)");
    }
    try {
      checkVector(item, id, dimensions || item.length);
    } catch (error) {
      throw new EndpointError("malformed", `embeddings: ${url}: ${(error as Error).message}`);
    }
    const vector = Float32Array.from(item as number[]);
    let norm = 0;
    for (let i = 0; i < vector.length; i++) norm += vector[i] * vector[i];
    if (norm > 0 && Math.abs(norm - 1) > 1e-6) {
      norm = Math.sqrt(norm);
      for (let i = 0; i < vector.length; i++) vector[i] /= norm;
    }
    return vector;
  });
}

/** What createEmbedder reads from the configuration. */
export interface EmbeddingConfig {
  embeddingUrl: string | null;
  embeddingModel: string | null;
  embeddingApi?: EmbeddingApi | null;
  embeddingApiKey?: string | null;
  hfToken: string | null;
  /** PHI_REDACTION: identifiers are replaced in every text sent unless it is "off" (absent: replaced). */
  security?: { phiRedaction: string };
}

/**
 * The embedder the configuration names: the endpoint when EMBEDDING_URL or EMBEDDING_MODEL is set (its key from
 * EMBEDDING_API_KEY, else HF_TOKEN), else the built-in lexical one.
 */
export async function createEmbedder(
  config: EmbeddingConfig,
  options: EmbedderOptions = {},
): Promise<Embedder> {
  if (!config.embeddingUrl && !config.embeddingModel) return createLexicalEmbedder();
  const [token, tokenEnv] = config.embeddingApiKey
    ? [config.embeddingApiKey, "EMBEDDING_API_KEY"]
    : config.hfToken
    ? [config.hfToken, "HF_TOKEN"]
    : [null, null];
  return await createEndpointEmbedder({
    url: config.embeddingUrl,
    model: config.embeddingModel,
    api: config.embeddingApi ?? null,
    token,
    tokenEnv,
  }, { redactPhi: config.security?.phiRedaction !== "off", ...options });
}

/** Waits ms, or less when the signal aborts first. */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
