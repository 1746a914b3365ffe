/**
 * The model endpoint: streams text from an OpenAI-compatible chat API, an OpenAI-style `/v1/completions`, or
 * TGI's native `/generate_stream`. The only module that imports @huggingface/inference.
 */
import { InferenceClient, InferenceClientProviderApiError } from "@huggingface/inference";
import type { InferenceApi } from "../config.ts";
import type { ChatMessage } from "./templates.ts";

/** What one generation asks of the endpoint. */
export interface GenerationRequest {
  /** A rendered prompt (raw templates) … */
  prompt?: string;
  /** … or chat messages (the chat API). */
  messages?: ChatMessage[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  stop: string[];
  /**
   * Constrain the output to JSON matching this schema: TGI's grammar (`/generate_stream`, or `response_format`
   * `json_object` on its chat API), or OpenAI/vLLM `response_format` `json_schema`. OpenAI-style
   * `/v1/completions` has no common way to constrain output; there the caller's validation has to catch it.
   */
  jsonSchema?: Record<string, unknown>;
}

/** A piece of streamed text; the last piece carries the finish reason. */
export interface StreamChunk {
  text: string;
  finishReason: string | null;
}

/** How an endpoint call failed. */
export type EndpointErrorKind =
  /** 429, or TGI's `overloaded`: retry after a while. */
  | "rate_limited"
  /** 502/503/504: starting, scaled to zero, or overloaded. */
  | "unavailable"
  /** No connection: refused, DNS, TLS, reset. */
  | "unreachable"
  /** 4xx other than 429: the request itself is wrong (template missing, bad parameters, auth). */
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
  ) {
    super(message);
    this.name = "EndpointError";
  }

  /** Worth trying again (before any text arrived). */
  get retryable(): boolean {
    return this.kind === "rate_limited" || this.kind === "unavailable" || this.kind === "unreachable";
  }
}

/** Where and how to reach one model. */
export interface EndpointTarget {
  /** Base URL; null for Hugging Face Inference Providers. */
  url: string | null;
  /** Model name sent to the server (required by vLLM and Providers). */
  model: string | null;
  api: InferenceApi;
  /** LoRA adapter served by TGI (`--lora-adapters`). */
  adapterId: string | null;
  token: string | null;
}

/** Streams generations from one endpoint. */
export interface EndpointClient {
  stream(request: GenerationRequest, signal: AbortSignal): AsyncGenerator<StreamChunk>;
}

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
  options: { fetch?: typeof fetch } = {},
): EndpointClient {
  const baseFetch: typeof fetch = async (input, init) =>
    compactBody(await (options.fetch ?? fetch)(input, init), init?.signal);
  return {
    async *stream(request, signal) {
      // The HF client reports status and body but not headers; this fetch keeps Retry-After for us.
      const seen: { status: number | null; retryAfter: string | null } = { status: null, retryAfter: null };
      const capturingFetch: typeof fetch = async (input, init) => {
        const response = await baseFetch(input, init);
        seen.status = response.status;
        seen.retryAfter = response.headers.get("retry-after");
        return response;
      };
      try {
        if (request.messages) yield* streamChat(target, request, signal, capturingFetch);
        else if (target.api === "tgi") yield* streamTgi(target, request, signal, baseFetch, seen);
        else yield* streamCompletions(target, request, signal, capturingFetch);
      } catch (error) {
        throw classify(error, seen, signal);
      }
    },
  };
}

function hfClient(target: EndpointTarget): InferenceClient {
  return target.url
    ? new InferenceClient(target.token ?? undefined, { endpointUrl: target.url })
    : new InferenceClient(target.token ?? undefined);
}

async function* streamChat(
  target: EndpointTarget,
  request: GenerationRequest,
  signal: AbortSignal,
  fetchFn: typeof fetch,
): AsyncGenerator<StreamChunk> {
  const stream = hfClient(target).chatCompletionStream(
    {
      model: target.adapterId ?? target.model ?? (target.url ? "tgi" : undefined),
      ...(target.url ? {} : { provider: "auto" as const }),
      messages: request.messages!.map((m) => ({ role: m.role, content: m.content })),
      max_tokens: request.maxNewTokens,
      temperature: request.temperature,
      top_p: request.topP,
      ...(request.stop.length ? { stop: request.stop } : {}),
      ...(request.jsonSchema ? { response_format: responseFormat(target, request.jsonSchema) } : {}),
    } as Parameters<InferenceClient["chatCompletionStream"]>[0],
    { signal, retry_on_error: false, fetch: fetchFn },
  );
  for await (const chunk of stream) {
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    yield { text: choice.delta?.content ?? "", finishReason: choice.finish_reason ?? null };
  }
}

async function* streamCompletions(
  target: EndpointTarget,
  request: GenerationRequest,
  signal: AbortSignal,
  fetchFn: typeof fetch,
): AsyncGenerator<StreamChunk> {
  const stream = hfClient(target).textGenerationStream({
    model: target.adapterId ?? target.model ?? undefined,
    inputs: request.prompt!,
    parameters: {
      max_new_tokens: request.maxNewTokens,
      temperature: request.temperature,
      top_p: request.topP,
      ...(request.stop.length ? { stop: request.stop } : {}),
    },
  }, { signal, retry_on_error: false, fetch: fetchFn });
  // Since 4.13.17 the client yields raw OpenAI completion chunks for endpoints.
  for await (const raw of stream as AsyncIterable<unknown>) {
    const choice = (raw as { choices?: { text?: string; finish_reason?: string | null }[] }).choices?.[0];
    const token = (raw as { token?: { text?: string; special?: boolean } }).token;
    if (choice) yield { text: choice.text ?? "", finishReason: choice.finish_reason ?? null };
    else if (token && !token.special) yield { text: token.text ?? "", finishReason: null };
  }
}

/** TGI's chat API takes the schema as `json_object`'s value; OpenAI and vLLM take a named `json_schema`. */
function responseFormat(target: EndpointTarget, schema: Record<string, unknown>): Record<string, unknown> {
  return target.api === "tgi"
    ? { type: "json_object", value: schema }
    : { type: "json_schema", json_schema: { name: "rounds_output", schema } };
}

interface TgiEvent {
  token?: { text?: string; special?: boolean };
  details?: { finish_reason?: string } | null;
  error?: string;
  error_type?: string;
}

/** TGI's native streaming route: needed for `adapter_id` and repetition penalty on raw prompts. */
async function* streamTgi(
  target: EndpointTarget,
  request: GenerationRequest,
  signal: AbortSignal,
  fetchFn: typeof fetch,
  seen: { status: number | null; retryAfter: string | null },
): AsyncGenerator<StreamChunk> {
  const sampling = request.temperature > 0
    ? {
      do_sample: true,
      temperature: request.temperature,
      top_p: request.topP < 1 ? request.topP : undefined,
    }
    : { do_sample: false };
  const response = await fetchFn(`${target.url!.replace(/\/v1$/, "")}/generate_stream`, {
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
  if (!response.ok) {
    const body = await response.text().catch(() => "");
    let message = body.slice(0, 500);
    try {
      message = (JSON.parse(body) as TgiEvent).error ?? message;
    } catch { /* not JSON: keep the text */ }
    throw new HttpFailure(response.status, message);
  }
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
      throw new EndpointError(kind, `The endpoint reported an error while generating: ${event.error}`);
    }
    const text = event.token && !event.token.special ? event.token.text ?? "" : "";
    yield { text, finishReason: event.details?.finish_reason ?? null };
  }
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
  constructor(readonly status: number, readonly detail: string) {
    super(detail);
  }
}

/** Turns whatever a call threw into an EndpointError (or the abort reason when the caller aborted). */
export function classify(
  error: unknown,
  seen: { status: number | null; retryAfter: string | null },
  signal: AbortSignal,
): unknown {
  if (signal.aborted) return signal.reason ?? error;
  if (error instanceof EndpointError) return error;
  const retryAfterMs = parseRetryAfter(seen.retryAfter);
  let status: number | null = null;
  let detail = "";
  if (error instanceof HttpFailure) {
    status = error.status;
    detail = error.detail;
  } else if (error instanceof InferenceClientProviderApiError) {
    status = error.httpResponse?.status ?? seen.status;
    detail = error.message.replace(/^Failed to perform inference: /, "");
    if (status === 200) {
      // An error event inside a stream that had started fine.
      return new EndpointError(
        "failed",
        `The endpoint reported an error while generating: ${detail}`,
        status,
      );
    }
  } else if (error instanceof SyntaxError) {
    return new EndpointError("malformed", `The endpoint sent a malformed stream chunk (${error.message})`);
  } else if (error instanceof TypeError || (error as { code?: string })?.code === "ECONNREFUSED") {
    const cause = String((error as Error).message || error).slice(0, 200);
    return new EndpointError("unreachable", `Cannot connect to the model endpoint (${cause})`);
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
    return new EndpointError(
      "unavailable",
      `The model endpoint is unavailable (HTTP ${status}): it may be starting, scaled to zero or overloaded`,
      status,
      retryAfterMs,
    );
  }
  if (status !== null && status >= 400 && status < 500) {
    const hint = /template not found/i.test(detail)
      ? ". This model has no chat template: configure a raw template such as llama2-meddialog instead of chat"
      : status === 401 || status === 403
      ? ". Check HF_TOKEN"
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
