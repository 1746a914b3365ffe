/**
 * The model endpoint: streams text from an OpenAI-compatible chat API, an OpenAI-style `/v1/completions`, TGI's
 * native `/generate_stream` or Ollama's native `/api/generate`, choosing the route, the output constraint and
 * the model name from what the server is (inference/server.ts). The only module that imports
 * @huggingface/inference.
 */
import { InferenceClient, InferenceClientProviderApiError } from "@huggingface/inference";
import type { InferenceApi } from "../config.ts";
import {
  contextLimitIn,
  describeConnectionError,
  discoverServer,
  type DiscoveryFailure,
  errorDetail,
  isContextRefusal,
  type ServerFamily,
  type ServerProfile,
  serverRoot,
} from "./server.ts";
import type { ChatMessage } from "./templates.ts";

/** What one generation asks of the endpoint. */
export interface GenerationRequest {
  /** A rendered prompt (raw templates), without the BOS token: every server adds its own … */
  prompt?: string;
  /** … or chat messages (the chat API). */
  messages?: ChatMessage[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  stop: string[];
  /**
   * Constrain the output to JSON matching this schema, the way the server takes it (see `constraintFor`).
   * Where the server has no way, the caller's validation has to catch it.
   */
  jsonSchema?: Record<string, unknown>;
  /** The context window the prompt was fitted to (Ollama is told it: it would silently cut the prompt). */
  contextSize?: number;
}

/** A piece of streamed text; the last piece carries the finish reason. */
export interface StreamChunk {
  text: string;
  /** Thinking the server streamed apart from the answer (`reasoning_content`, Ollama's `thinking`). */
  reasoning?: string;
  finishReason: string | null;
  /** Tokens generated, as the server counts them (its `usage`, sent on the last chunk); absent when it does not say. */
  outputTokens?: number;
}

/** How an endpoint call failed. */
export type EndpointErrorKind =
  /** 429, or TGI's `overloaded`: retry after a while. */
  | "rate_limited"
  /** 502/503/504: starting, scaled to zero, loading a model, or overloaded. */
  | "unavailable"
  /** No connection: refused, DNS, TLS, reset. */
  | "unreachable"
  /** 401/403: the key is missing or wrong. */
  | "unauthorized"
  /** The prompt and the answer's room do not fit the model's context (the server said so). */
  | "too_long"
  /** 4xx other than the above: the request itself is wrong (template missing, bad parameters). */
  | "rejected"
  /** 5xx other than the above, or an error event in the stream. */
  | "failed"
  /** A stream chunk that is not the JSON the protocol promises. */
  | "malformed";

/** A classified endpoint failure with a message a clinician can act on. */
export class EndpointError extends Error {
  constructor(
    readonly kind: EndpointErrorKind,
    message: string,
    readonly status: number | null = null,
    readonly retryAfterMs: number | null = null,
    /** For `too_long`: the context size the server named, when it did. */
    readonly contextLimit: number | null = null,
  ) {
    super(message);
    this.name = "EndpointError";
  }

  /** Set when the server took the whole time limit without answering. */
  timedOut = false;

  /** Worth trying again (before any text arrived). */
  get retryable(): boolean {
    return this.kind === "rate_limited" || this.kind === "unavailable" || this.kind === "unreachable";
  }
}

/** Where and how to reach one model. */
export interface EndpointTarget {
  /** Base URL; null for Hugging Face Inference Providers. */
  url: string | null;
  /** Model name sent to the server; null to use the one model the server lists. */
  model: string | null;
  /** `tgi` sends raw prompts to TGI's native route even before the server was recognised. */
  api: InferenceApi;
  /** LoRA adapter served by TGI (`--lora-adapters`), or a model per request on router servers. */
  adapterId: string | null;
  token: string | null;
  /** The server family the operator named; null to learn it from the server. */
  server?: ServerFamily | null;
  /** The environment variable the token came from, named in messages about a refused key. */
  tokenEnv?: string;
}

/** How output is held to a JSON Schema on one route of one server family; null where it cannot be. */
export function constraintFor(family: ServerFamily, route: "chat" | "raw"): string | null {
  if (route === "chat") {
    if (family === "tgi") return "TGI chat response_format json_object";
    return "chat response_format json_schema";
  }
  switch (family) {
    case "llama.cpp":
      return "llama.cpp /v1/completions json_schema";
    case "vllm":
      return "vLLM /v1/completions response_format json_schema";
    case "sglang":
      return "SGLang /v1/completions json_schema";
    case "tgi":
      return "TGI /generate_stream grammar";
    case "ollama":
      return "Ollama /api/generate format";
    default:
      return null;
  }
}

/** Streams generations from one endpoint, and says what the server is. */
export interface EndpointClient {
  stream(request: GenerationRequest, signal: AbortSignal): AsyncGenerator<StreamChunk>;
  /**
   * What the server is: learned from its routes on first use and kept; while it cannot be asked (loading,
   * refused, unreachable), a profile from the configuration alone, asked again at most every 10 s, or now when
   * `fresh` (a request is about to go to the server anyway). The caller's signal ends only its own wait.
   */
  profile(signal?: AbortSignal, fresh?: boolean): Promise<ServerProfile>;
  /** Why the server could not be asked the last time, or null once it answered. */
  readonly lastFailure: DiscoveryFailure | null;
  /** Records what a refusal taught about the context (a server that says its window is smaller). */
  learnContextSize(tokens: number): void;
  /** Forgets what was learned: the next call asks the server again (it may have been restarted differently). */
  refresh(): void;
}

/** How long a scale-to-zero Inference Endpoint's proxy should hold a request while a GPU starts (seconds). */
export const SCALE_UP_TIMEOUT_S = 600;
/** After a failed discovery, the server is asked again on the next call at most this often. */
const REDISCOVER_MS = 10_000;

/**
 * Re-streams a response body through one reusable buffer. Deno's fetch hands out each chunk as a view into a
 * fresh 64 KB buffer: with one chunk per token that is 64 KB of garbage per token, and 500 streams kept ~175 MB
 * of it alive between collections. Read BYOB into a 4 KB buffer (an endpoint's event for one token is a few
 * hundred bytes; a bigger burst takes more reads) and passed on as exact-size copies: 2 MB for 500 streams.
 *
 * `signal` must be the request's signal. Deno ties a fetch's abort to its body only weakly, through the original
 * Response: once that object is collected, aborting no longer closes the connection and tokens keep coming
 * (seen under GC pressure, where Stop left the GPU generating). So the abort is wired here, strongly: it
 * cancels the upstream body, which closes the connection, and errors the re-streamed one.
 */
export function compactBody(response: Response, signal?: AbortSignal | null): Response {
  if (!response.body) return response;
  let reader: ReadableStreamBYOBReader;
  try {
    reader = response.body.getReader({ mode: "byob" });
  } catch {
    return response; // not a byte stream: nothing to gain
  }
  let buffer = new ArrayBuffer(4 * 1024);
  let onAbort = () => {};
  const release = () => signal?.removeEventListener("abort", onAbort);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      onAbort = () => {
        controller.error(signal!.reason);
        reader.cancel(signal!.reason).catch(() => {});
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      try {
        const { value, done } = await reader.read(new Uint8Array(buffer));
        if (done || !value) {
          release();
          return controller.close();
        }
        controller.enqueue(value.slice());
        buffer = value.buffer as ArrayBuffer;
      } catch (error) {
        release();
        throw error;
      }
    },
    cancel: (reason) => {
      release();
      return reader.cancel(reason);
    },
  });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/** Builds the client for a target; `fetch` is injectable for tests. */
export function createEndpointClient(
  target: EndpointTarget,
  options: { fetch?: typeof fetch; discoveryTimeoutMs?: number } = {},
): EndpointClient {
  const rawFetch = options.fetch ?? fetch;
  // A scale-to-zero Inference Endpoint answers 503 while its GPU starts; this header asks its proxy to hold
  // the request instead. Other servers ignore it.
  const baseFetch: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    if (target.url && !headers.has("x-scale-up-timeout")) {
      headers.set("x-scale-up-timeout", String(SCALE_UP_TIMEOUT_S));
    }
    return compactBody(await rawFetch(input, { ...init, headers }), init?.signal);
  };
  let learned: ServerProfile | null = null;
  let asking: Promise<ServerProfile> | null = null;
  let failedAt = -Infinity;
  let lastFailure: DiscoveryFailure | null = null;
  let contextOverride: number | null = null;

  const configured = (): ServerProfile => ({
    family: target.server ?? (target.api === "tgi" ? "tgi" : "openai"),
    familyFrom: target.server ? "configured" : target.url ? "default" : "Hugging Face Inference Providers",
    contextSize: null,
    contextFrom: null,
    maxInputTokens: null,
    models: [],
    chatOpensThought: false,
  });
  const withOverride = (profile: ServerProfile): ServerProfile =>
    contextOverride !== null && (profile.contextSize === null || contextOverride < profile.contextSize)
      ? { ...profile, contextSize: contextOverride, contextFrom: "the server's refusal" }
      : profile;

  const client: EndpointClient = {
    get lastFailure() {
      return lastFailure;
    },
    learnContextSize(tokens) {
      if (tokens > 0 && (contextOverride === null || tokens < contextOverride)) contextOverride = tokens;
    },
    refresh() {
      learned = null;
      contextOverride = null;
      failedAt = -Infinity;
    },
    async profile(signal, fresh = false) {
      if (learned) return withOverride(learned);
      if (!target.url) return withOverride(configured());
      if (!asking && !fresh && performance.now() - failedAt < REDISCOVER_MS) {
        return withOverride(configured());
      }
      // Shared by every caller, so no caller's abort may end it: each waits on it with its own signal.
      asking ??= discoverServer(
        { url: target.url, token: target.token, family: target.server ?? null },
        { fetch: rawFetch, timeoutMs: options.discoveryTimeoutMs },
      ).then((result) => {
        if ("state" in result) {
          lastFailure = result;
          failedAt = performance.now();
          return configured();
        }
        // A server that answers but is not recognised is still the family the configuration implies.
        if (result.familyFrom === "default" && target.api === "tgi") {
          result = { ...result, family: "tgi", familyFrom: "INFERENCE_API=tgi" };
        }
        lastFailure = null;
        learned = result;
        return result;
      }).finally(() => {
        asking = null;
      });
      return withOverride(await untilAborted(asking, signal));
    },
    async *stream(request, signal) {
      // The HF client reports status and body but not headers; this fetch keeps Retry-After for us.
      const seen: Seen = { status: null, retryAfter: null, body: null };
      const capturingFetch: typeof fetch = async (input, init) => {
        const response = await baseFetch(input, init);
        seen.status = response.status;
        seen.retryAfter = response.headers.get("retry-after");
        // The HF client keeps only the error shapes it knows; the whole body is kept here for classify.
        if (!response.ok) seen.body = await response.clone().text().catch(() => null);
        return response;
      };
      try {
        const profile = await client.profile(signal, true);
        // A server that could not be asked is not sent a request in a guessed format (Ollama's prompt would be
        // templated twice, llama.cpp's schema lost): the failure is what the caller retries or reports.
        if (lastFailure && !target.server) throw discoveryError(lastFailure, target);
        const model = modelName(target, profile);
        if (request.messages) {
          yield* streamChat(target, profile, model, request, signal, capturingFetch);
        } else if (profile.family === "tgi" || target.api === "tgi") {
          yield* streamTgi(target, request, signal, baseFetch, seen);
        } else if (profile.family === "ollama") {
          yield* streamOllama(target, model, request, signal, baseFetch, seen);
        } else {
          yield* streamCompletions(target, profile, model, request, signal, capturingFetch);
        }
      } catch (error) {
        const failure = classify(error, seen, signal, target);
        // A model the server no longer has: it may have been restarted with others; ask it again next time.
        if (failure instanceof EndpointError && failure.status === 404) client.refresh();
        throw failure;
      }
    },
  };
  return client;
}

/** Waits for a shared promise, or rejects when this caller's signal aborts (the promise goes on for others). */
function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Why a server that could not be asked what it is cannot take a request either, as the error to report. */
function discoveryError(failure: DiscoveryFailure, target: EndpointTarget): EndpointError {
  if (failure.state === "unauthorized") {
    return new EndpointError(
      "unauthorized",
      `The model endpoint refused the request (HTTP 401: ${failure.detail}): ${keyAdvice(target)}`,
      401,
    );
  }
  if (failure.state === "loading") {
    return new EndpointError("unavailable", `The model is waking up (${failure.detail})`, 503);
  }
  return new EndpointError("unreachable", `Cannot connect to the model endpoint (${failure.detail})`);
}

/** What an operator should do about a refused key, naming the variable it came from. */
function keyAdvice(target: Pick<EndpointTarget, "token" | "tokenEnv">): string {
  const variable = target.tokenEnv ?? "HF_TOKEN";
  return target.token
    ? `an operator needs to check the key in ${variable}`
    : `an operator needs to set ${variable} to the server's key (it is empty now)`;
}

interface Seen {
  status: number | null;
  retryAfter: string | null;
  /** The error body read by our own fetch code (TGI, Ollama); the HF client keeps it on its error. */
  body?: unknown;
}

/** Thrown when a model name is needed and the server lists several. */
class ModelChoiceError extends Error {}

/**
 * The model name to send: the configured one (or the adapter on a router), else the single model the server
 * lists. A server listing several needs MODEL (or `model` in MODELS_FILE): guessing would answer from the wrong
 * model.
 */
function modelName(target: EndpointTarget, profile: ServerProfile): string | undefined {
  if (target.adapterId && profile.family !== "tgi") return target.adapterId;
  if (target.model) return target.model;
  if (profile.models.length === 1) return profile.models[0];
  if (profile.models.length > 1) {
    throw new ModelChoiceError(
      `The model server serves ${profile.models.length} models (${profile.models.slice(0, 5).join(", ")}${
        profile.models.length > 5 ? ", …" : ""
      }): set MODEL, or "model" in MODELS_FILE, to the one to use`,
    );
  }
  return undefined;
}

/**
 * The HF client refuses a model name that looks like a URL or a path ("Model URLs are no longer supported"),
 * and llama-server names its model by the file's path unless given `--alias`. Such a name travels as a
 * placeholder that this fetch swaps back in the request body.
 */
function carryModel(
  model: string | undefined,
  fetchFn: typeof fetch,
): { model: string | undefined; fetch: typeof fetch } {
  if (!model || !(/^https?:/.test(model) || model.startsWith("/"))) return { model, fetch: fetchFn };
  const placeholder = "rounds-model-name";
  return {
    model: placeholder,
    fetch: (input, init) => {
      if (typeof init?.body !== "string" || !init.body.includes(placeholder)) return fetchFn(input, init);
      const body = JSON.parse(init.body);
      if (body.model === placeholder) body.model = model;
      return fetchFn(input, { ...init, body: JSON.stringify(body) });
    },
  };
}

function hfClient(target: EndpointTarget): InferenceClient {
  return target.url
    ? new InferenceClient(target.token ?? undefined, { endpointUrl: target.url })
    : new InferenceClient(target.token ?? undefined);
}

/** Usage on OpenAI-compatible streams comes on the last chunk, when asked for. */
const INCLUDE_USAGE = { stream_options: { include_usage: true } };

interface OpenAiChunk {
  choices?: {
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null };
    text?: string;
    finish_reason?: string | null;
  }[];
  usage?: { completion_tokens?: number } | null;
  token?: { text?: string; special?: boolean };
}

/** One parsed OpenAI-style event as a chunk (null for an event with nothing in it). */
function openAiChunk(raw: unknown): StreamChunk | null {
  const event = raw as OpenAiChunk;
  const choice = event.choices?.[0];
  const outputTokens = typeof event.usage?.completion_tokens === "number"
    ? event.usage.completion_tokens
    : undefined;
  if (!choice) {
    if (event.token) return { text: event.token.special ? "" : event.token.text ?? "", finishReason: null };
    return outputTokens === undefined ? null : { text: "", finishReason: null, outputTokens };
  }
  const reasoning = choice.delta?.reasoning_content ?? choice.delta?.reasoning ?? undefined;
  return {
    text: choice.delta ? choice.delta.content ?? "" : choice.text ?? "",
    ...(reasoning ? { reasoning } : {}),
    finishReason: choice.finish_reason ?? null,
    ...(outputTokens === undefined ? {} : { outputTokens }),
  };
}

async function* streamChat(
  target: EndpointTarget,
  profile: ServerProfile,
  model: string | undefined,
  request: GenerationRequest,
  signal: AbortSignal,
  baseFetch: typeof fetch,
): AsyncGenerator<StreamChunk> {
  const carried = carryModel(model, baseFetch);
  model = carried.model;
  const fetchFn = carried.fetch;
  const stream = hfClient(target).chatCompletionStream(
    {
      model: model ?? (target.url ? (profile.family === "tgi" ? "tgi" : "default") : undefined),
      ...(target.url ? {} : { provider: "auto" as const }),
      messages: request.messages!.map((m) => ({ role: m.role, content: m.content })),
      max_tokens: request.maxNewTokens,
      temperature: request.temperature,
      top_p: request.topP,
      ...INCLUDE_USAGE,
      ...(request.stop.length ? { stop: request.stop } : {}),
      ...(request.jsonSchema ? { response_format: responseFormat(profile.family, request.jsonSchema) } : {}),
    } as Parameters<InferenceClient["chatCompletionStream"]>[0],
    { signal, retry_on_error: false, fetch: fetchFn },
  );
  for await (const raw of stream as AsyncIterable<unknown>) {
    const chunk = openAiChunk(raw);
    if (chunk) yield chunk;
  }
}

/** The output constraint fields for `/v1/completions`, as each family takes them. */
function completionConstraint(
  family: ServerFamily,
  schema: Record<string, unknown>,
): Record<string, unknown> {
  switch (family) {
    case "llama.cpp":
      return { json_schema: schema };
    case "sglang":
      return { json_schema: JSON.stringify(schema) };
    case "vllm":
      return { response_format: responseFormat(family, schema) };
    default:
      return {};
  }
}

async function* streamCompletions(
  target: EndpointTarget,
  profile: ServerProfile,
  model: string | undefined,
  request: GenerationRequest,
  signal: AbortSignal,
  baseFetch: typeof fetch,
): AsyncGenerator<StreamChunk> {
  const carried = carryModel(model, baseFetch);
  model = carried.model;
  const fetchFn = carried.fetch;
  const stream = hfClient(target).textGenerationStream(
    {
      model: model ?? "default",
      inputs: request.prompt!,
      parameters: {
        max_new_tokens: request.maxNewTokens,
        temperature: request.temperature,
        top_p: request.topP,
        ...(request.stop.length ? { stop: request.stop } : {}),
      },
      ...INCLUDE_USAGE,
      ...(request.jsonSchema ? completionConstraint(profile.family, request.jsonSchema) : {}),
    } as Parameters<InferenceClient["textGenerationStream"]>[0],
    { signal, retry_on_error: false, fetch: fetchFn },
  );
  // Since 4.13.17 the client yields raw OpenAI completion chunks for endpoints.
  for await (const raw of stream as AsyncIterable<unknown>) {
    const chunk = openAiChunk(raw);
    if (chunk) yield chunk;
  }
}

/** TGI's chat API takes the schema as `json_object`'s value; OpenAI, vLLM, llama.cpp and Ollama a named `json_schema`. */
function responseFormat(family: ServerFamily, schema: Record<string, unknown>): Record<string, unknown> {
  return family === "tgi"
    ? { type: "json_object", value: schema }
    : { type: "json_schema", json_schema: { name: "rounds_output", schema, strict: true } };
}

/** Reads a failed response's body as the error to classify. */
async function httpFailure(response: Response, seen: Seen): Promise<HttpFailure> {
  const text = await response.text().catch(() => "");
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON: keep the text */ }
  seen.body = body;
  return new HttpFailure(response.status, errorDetail(body), body);
}

interface TgiEvent {
  token?: { text?: string; special?: boolean };
  details?: { finish_reason?: string; generated_tokens?: number } | null;
  error?: unknown;
  error_type?: string;
}

/** TGI's native streaming route: its grammar, `adapter_id` and repetition penalty on raw prompts. */
async function* streamTgi(
  target: EndpointTarget,
  request: GenerationRequest,
  signal: AbortSignal,
  fetchFn: typeof fetch,
  seen: Seen,
): AsyncGenerator<StreamChunk> {
  const sampling = request.temperature > 0
    ? {
      do_sample: true,
      temperature: request.temperature,
      top_p: request.topP < 1 ? request.topP : undefined,
    }
    : { do_sample: false };
  const response = await fetchFn(`${serverRoot(target.url!)}/generate_stream`, {
    method: "POST",
    signal,
    headers: {
      "content-type": "application/json",
      accept: "text/event-stream",
      ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
    },
    body: JSON.stringify({
      inputs: request.prompt,
      parameters: {
        max_new_tokens: request.maxNewTokens,
        ...sampling,
        ...(request.stop.length ? { stop: request.stop } : {}),
        ...(target.adapterId ? { adapter_id: target.adapterId } : {}),
        ...(request.jsonSchema ? { grammar: { type: "json", value: request.jsonSchema } } : {}),
      },
    }),
  });
  seen.status = response.status;
  seen.retryAfter = response.headers.get("retry-after");
  if (!response.ok) throw await httpFailure(response, seen);
  if (!response.body) return;
  for await (const data of sseData(response.body)) {
    let event: TgiEvent;
    try {
      event = JSON.parse(data);
    } catch {
      throw new EndpointError(
        "malformed",
        `The endpoint sent a stream chunk that is not JSON: ${data.slice(0, 80)}`,
      );
    }
    if (event.error) {
      const kind = event.error_type === "overloaded" ? "rate_limited" : "failed";
      throw new EndpointError(
        kind,
        `The endpoint reported an error while generating: ${errorDetail({ error: event.error })}`,
      );
    }
    const text = event.token && !event.token.special ? event.token.text ?? "" : "";
    const generated = event.details?.generated_tokens;
    yield {
      text,
      finishReason: event.details?.finish_reason ?? null,
      ...(typeof generated === "number" ? { outputTokens: generated } : {}),
    };
  }
}

interface OllamaEvent {
  response?: string;
  thinking?: string;
  done?: boolean;
  done_reason?: string;
  eval_count?: number;
  error?: unknown;
}

/**
 * Ollama's native `/api/generate` with `raw: true`: its OpenAI-style `/v1/completions` wraps the prompt in the
 * model's own template (a second template around Rounds' one) and cannot take an output constraint.
 */
async function* streamOllama(
  target: EndpointTarget,
  model: string | undefined,
  request: GenerationRequest,
  signal: AbortSignal,
  fetchFn: typeof fetch,
  seen: Seen,
): AsyncGenerator<StreamChunk> {
  if (!model) {
    throw new EndpointError(
      "rejected",
      "The Ollama server lists no models: an operator needs to pull one (ollama pull …) and set MODEL to its name",
    );
  }
  const response = await fetchFn(`${serverRoot(target.url!)}/api/generate`, {
    method: "POST",
    signal,
    headers: {
      "content-type": "application/json",
      ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
    },
    body: JSON.stringify({
      model,
      prompt: request.prompt,
      raw: true,
      stream: true,
      ...(request.jsonSchema ? { format: request.jsonSchema } : {}),
      options: {
        // Ollama cuts an overlong prompt without saying so: give it the window the prompt was fitted to.
        ...(request.contextSize ? { num_ctx: request.contextSize } : {}),
        num_predict: request.maxNewTokens,
        temperature: request.temperature,
        top_p: request.topP,
        ...(request.stop.length ? { stop: request.stop } : {}),
      },
    }),
  });
  seen.status = response.status;
  seen.retryAfter = response.headers.get("retry-after");
  if (!response.ok) throw await httpFailure(response, seen);
  if (!response.body) return;
  for await (const line of ndjsonLines(response.body)) {
    let event: OllamaEvent;
    try {
      event = JSON.parse(line);
    } catch {
      throw new EndpointError("malformed", `The endpoint sent a line that is not JSON: ${line.slice(0, 80)}`);
    }
    if (event.error) {
      throw new EndpointError(
        "failed",
        `The endpoint reported an error while generating: ${errorDetail({ error: event.error })}`,
      );
    }
    yield {
      text: event.response ?? "",
      ...(event.thinking ? { reasoning: event.thinking } : {}),
      finishReason: event.done ? event.done_reason ?? "stop" : null,
      ...(event.done && typeof event.eval_count === "number" ? { outputTokens: event.eval_count } : {}),
    };
  }
}

/** The lines of a newline-delimited JSON body. */
async function* ndjsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) yield line;
  }
  if (buffer.trim()) yield buffer;
}

/** The `data:` payloads of an SSE body. */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  let data: string[] = [];
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (data.length) yield data.join("\n");
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line[5] === " " ? 6 : 5));
      }
    }
  }
  if (data.length) yield data.join("\n");
}

class HttpFailure extends Error {
  constructor(readonly status: number, readonly detail: string, readonly body: unknown = detail) {
    super(detail);
  }
}

/** Turns whatever a call threw into an EndpointError (or the abort reason when the caller aborted). */
export function classify(
  error: unknown,
  seen: Seen,
  signal: AbortSignal,
  target?: Pick<EndpointTarget, "url" | "token" | "tokenEnv">,
): unknown {
  if (signal.aborted) return signal.reason ?? error;
  if (error instanceof EndpointError) return error;
  if (error instanceof ModelChoiceError) return new EndpointError("rejected", error.message);
  const retryAfterMs = parseRetryAfter(seen.retryAfter);
  let status: number | null = null;
  let detail = "";
  let body: unknown = null;
  if (error instanceof HttpFailure) {
    status = error.status;
    detail = error.detail;
    body = error.body;
  } else if (error instanceof InferenceClientProviderApiError) {
    status = error.httpResponse?.status ?? seen.status;
    body = seen.body ?? error.httpResponse?.body;
    detail = body !== undefined && body !== null && body !== ""
      ? errorDetail(body)
      : error.message.replace(/^Failed to perform inference: /, "");
    if (status === 200) {
      // An error event inside a stream that had started fine.
      return new EndpointError(
        "failed",
        `The endpoint reported an error while generating: ${
          detail.replace(/^an occurred while streaming the response: /, "")
        }`,
        status,
      );
    }
  } else if (error instanceof SyntaxError) {
    return new EndpointError("malformed", `The endpoint sent a malformed stream chunk (${error.message})`);
  } else if (error instanceof TypeError || (error as { code?: string })?.code === "ECONNREFUSED") {
    return new EndpointError(
      "unreachable",
      `Cannot connect to the model endpoint (${describeConnectionError(error)})`,
    );
  } else {
    return new EndpointError(
      "failed",
      `The model endpoint call failed: ${String((error as Error)?.message ?? error)}`,
    );
  }
  detail = detail.slice(0, 300);
  if (status === 429) {
    return new EndpointError(
      "rate_limited",
      `The model endpoint is rate limiting requests (HTTP 429)`,
      429,
      retryAfterMs,
    );
  }
  if (status === 502 || status === 503 || status === 504) {
    const loading = /loading|starting|initiali[sz]ing|scal/i.test(detail);
    return new EndpointError(
      "unavailable",
      loading
        ? `The model is waking up (HTTP ${status}: ${detail})`
        : `The model endpoint is unavailable (HTTP ${status}): it may be starting, scaled to zero or overloaded`,
      status,
      retryAfterMs,
    );
  }
  if (status === 401 || status === 403) {
    return new EndpointError(
      "unauthorized",
      `The model endpoint refused the request (HTTP ${status}: ${detail}): ${
        keyAdvice(target ?? { token: null })
      }`,
      status,
    );
  }
  if (status !== null && status >= 400 && status < 500 && isContextRefusal(body ?? detail)) {
    return new EndpointError(
      "too_long",
      `The model's context cannot hold this request (HTTP ${status})`,
      status,
      null,
      contextLimitIn(body ?? detail),
    );
  }
  if (status !== null && status >= 400 && status < 500) {
    const hint = /template not found/i.test(detail)
      ? ". This model has no chat template: an operator needs to configure a raw template such as " +
        "llama2-meddialog instead of chat"
      : "";
    return new EndpointError(
      "rejected",
      `The model endpoint rejected the request (HTTP ${status}): ${detail}${hint}`,
      status,
    );
  }
  return new EndpointError("failed", `The model endpoint failed (HTTP ${status ?? "?"}): ${detail}`, status);
}

/** Milliseconds from a Retry-After header (seconds or an HTTP date); null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
