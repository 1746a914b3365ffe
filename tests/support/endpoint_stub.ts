/**
 * A scriptable stand-in for a model endpoint, over real HTTP on 127.0.0.1. Speaks the wire formats Rounds
 * talks to: OpenAI chat streaming, `/v1/completions` streaming, TGI `/generate_stream` and Ollama's
 * `/api/generate`, and can pose as each server family on its info routes (`server`). Each request takes
 * the next queued script (or the default): token delays, failures before the first token, errors and drops
 * mid-stream, malformed chunks. It records what it received and whether the client went away.
 *
 * Also runs standalone for benchmarks: `deno run -A tests/endpoint_stub.ts --port 8080 --rate 50 --tokens 2000`.
 */

/** What one request should experience. */
export interface StubScript {
  /** The reply, one entry per token. */
  tokens?: string[];
  /** Milliseconds between tokens. */
  delayMs?: number;
  /** Milliseconds before the first token (a slow start). */
  firstTokenDelayMs?: number;
  /** Answer with this HTTP status and body instead of streaming. */
  failWith?: { status: number; retryAfter?: string; body?: unknown; contentType?: string };
  /** After this many tokens, send an error event in the stream. */
  errorAfter?: number;
  /** After this many tokens, break the connection (no end marker). */
  dropAfter?: number;
  /** After this many tokens, send a chunk that is not JSON. */
  malformedAfter?: number;
  /** The finish reason of the last chunk. */
  finishReason?: string;
  /** Send nothing until the client goes away. */
  hang?: boolean;
  /** Thinking sent before the reply, as `delta.reasoning_content` (chat) or Ollama's `thinking`. */
  reasoning?: string[];
  /** Send `usage.completion_tokens` (or TGI's generated_tokens, Ollama's eval_count) on the last chunk. */
  usage?: number;
}

/** One request the stub received. */
export interface StubRequest {
  path: string;
  body: Record<string, unknown>;
  headers: Record<string, string>;
  receivedAt: number;
  /** Set when the client closed the connection before the stub finished. */
  abortedAt: number | null;
  finishedAt: number | null;
  /** performance.timeOrigin-based send time of each token, for latency benchmarks. */
  sentAt: number[];
}

/** A running stub. */
export interface Stub {
  url: string;
  requests: StubRequest[];
  /** Scripts for the next requests, in order; later requests get the default. */
  enqueue(...scripts: StubScript[]): void;
  /** The script used when the queue is empty. */
  defaultScript: StubScript;
  /** The server family the stub poses as on its info routes (`/props`, `/info`, `/api/version`, `/v1/models`). */
  server: "llama.cpp" | "vllm" | "sglang" | "tgi" | "ollama" | null;
  /** The context size its info routes report. */
  contextSize: number;
  /** The model ids `/v1/models` lists. */
  models: string[];
  /** Resolves when a request satisfying the predicate exists (polling). */
  waitFor(predicate: (requests: StubRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** The default reply: a short answer in several tokens. */
export const DEFAULT_TOKENS = [
  "Consider",
  " a",
  " viral",
  " cause",
  " first",
  ";",
  " review",
  " in",
  " 48",
  " hours",
  ".",
];

const now = () => performance.timeOrigin + performance.now();
const encoder = new TextEncoder();

function chunkFor(
  path: string,
  token: string,
  index: number,
  finish: string | null,
  extra: { reasoning?: string; usage?: number } = {},
): string {
  if (path === "/api/generate") {
    return JSON.stringify({
      model: "stub",
      response: finish ? "" : token,
      ...(extra.reasoning ? { thinking: extra.reasoning, response: "" } : {}),
      done: finish !== null,
      ...(finish ? { done_reason: finish, ...(extra.usage ? { eval_count: extra.usage } : {}) } : {}),
    });
  }
  const usage = finish && extra.usage ? { usage: { completion_tokens: extra.usage, prompt_tokens: 5 } } : {};
  if (path.endsWith("/chat/completions")) {
    if (extra.reasoning) {
      return JSON.stringify({
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta: { reasoning_content: extra.reasoning }, finish_reason: null }],
      });
    }
    return JSON.stringify({
      id: "stub",
      object: "chat.completion.chunk",
      created: 0,
      model: "stub",
      choices: [{
        index: 0,
        delta: finish ? {} : { role: "assistant", content: token },
        finish_reason: finish,
      }],
      ...usage,
    });
  }
  if (path.endsWith("/completions")) {
    return JSON.stringify({
      id: "stub",
      object: "text_completion",
      created: 0,
      model: "stub",
      choices: [{ index: 0, text: finish ? "" : token, finish_reason: finish }],
      ...usage,
    });
  }
  // TGI /generate_stream
  return JSON.stringify({
    index,
    token: { id: index, text: finish ? "</s>" : token, logprob: -0.1, special: finish !== null },
    generated_text: null,
    details: finish ? { finish_reason: finish, generated_tokens: extra.usage ?? index } : null,
  });
}

function errorFor(path: string, message: string): string {
  return path === "/generate_stream" || path === "/api/generate"
    ? JSON.stringify({ error: message, error_type: "generation" })
    : JSON.stringify({ error: { message, type: "server_error" } });
}

/** Starts a stub on a free port. */
export function startStub(options: { port?: number; defaultScript?: StubScript } = {}): Stub {
  const queue: StubScript[] = [];
  const requests: StubRequest[] = [];
  const stub: Partial<Stub> = {
    defaultScript: options.defaultScript ?? {},
    server: null,
    contextSize: 4096,
    models: ["stub"],
  };
  /** The info routes of the family the stub poses as; 404 for the others, as real servers answer. */
  const info = (path: string): Response | null => {
    const family = stub.server;
    if (path === "/health") return Response.json({});
    if (path === "/v1/models") {
      const owner = family === "vllm"
        ? "vllm"
        : family === "sglang"
        ? "sglang"
        : family === "llama.cpp"
        ? "llamacpp"
        : "stub";
      return Response.json({
        object: "list",
        data: stub.models!.map((id) => ({
          id,
          object: "model",
          owned_by: owner,
          ...(family === "vllm" ? { max_model_len: stub.contextSize } : {}),
        })),
      });
    }
    if (path === "/props" && family === "llama.cpp") {
      return Response.json({ default_generation_settings: { n_ctx: stub.contextSize }, total_slots: 1 });
    }
    if (path === "/info" && family === "tgi") {
      return Response.json({
        model_id: "stub",
        max_total_tokens: stub.contextSize,
        max_input_tokens: stub.contextSize! - 1,
        router: "text-generation-router",
      });
    }
    if (path === "/api/version" && family === "ollama") return Response.json({ version: "0.12.0" });
    return null;
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (req.method === "GET") return info(path) ?? new Response("Not found", { status: 404 });
      if (
        req.method !== "POST" ||
        !["/v1/chat/completions", "/v1/completions", "/generate_stream", "/api/generate"].includes(path)
      ) {
        return new Response("Not found", { status: 404 });
      }
      let body: Record<string, unknown> = {};
      try {
        body = await req.json();
      } catch { /* recorded as empty */ }
      const record: StubRequest = {
        path,
        body,
        headers: Object.fromEntries(req.headers),
        receivedAt: now(),
        abortedAt: null,
        finishedAt: null,
        sentAt: [],
      };
      requests.push(record);
      const markAborted = () => {
        if (record.finishedAt === null && record.abortedAt === null) record.abortedAt = now();
      };
      req.signal.addEventListener("abort", markAborted);
      const script = queue.shift() ?? stub.defaultScript!;

      if (script.failWith) {
        const { status, retryAfter, body: errorBody, contentType } = script.failWith;
        record.finishedAt = now();
        const payload = errorBody === undefined ? { error: `stub failure ${status}` } : errorBody;
        return new Response(typeof payload === "string" ? payload : JSON.stringify(payload), {
          status,
          headers: {
            "content-type": contentType ?? "application/json",
            ...(retryAfter ? { "retry-after": retryAfter } : {}),
          },
        });
      }

      const tokens = script.tokens ?? DEFAULT_TOKENS;
      const tgi = path === "/generate_stream";
      const ollama = path === "/api/generate";
      // Ollama streams JSON lines; the others SSE.
      const sep = ollama ? "" : tgi ? "data:" : "data: ";
      const end = ollama ? "\n" : "\n\n";
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          const wait = (ms: number) =>
            new Promise<void>((resolve) => {
              if (ms <= 0 || req.signal.aborted) return resolve();
              const timer = setTimeout(resolve, ms);
              req.signal.addEventListener("abort", () => {
                clearTimeout(timer);
                resolve();
              }, { once: true });
            });
          const send = (text: string) => {
            try {
              controller.enqueue(encoder.encode(text));
            } catch {
              // The client closed the connection: a real server notices it this way, on its next write, even
              // where the request's signal has not fired (yet).
              markAborted();
            }
          };
          try {
            if (script.hang) {
              await new Promise((resolve) => req.signal.addEventListener("abort", resolve, { once: true }));
              return;
            }
            await wait(script.firstTokenDelayMs ?? 0);
            const gone = () => req.signal.aborted || record.abortedAt !== null;
            for (const thought of script.reasoning ?? []) {
              if (gone()) return;
              send(`${sep}${chunkFor(path, "", 0, null, { reasoning: thought })}${end}`);
              await wait(script.delayMs ?? 0);
            }
            for (let i = 0; i < tokens.length; i++) {
              if (gone()) return;
              if (i > 0) await wait(script.delayMs ?? 0);
              if (gone()) return;
              if (script.errorAfter === i) {
                send(`${sep}${errorFor(path, "CUDA out of memory (stub)")}${end}`);
                record.finishedAt = now();
                controller.close();
                return;
              }
              if (script.dropAfter === i) {
                await wait(30); // let what was sent reach the client, as it would before a real network drop
                record.finishedAt = now();
                controller.error(new Error("stub dropped the connection"));
                return;
              }
              if (script.malformedAfter === i) send(`${sep}{"choices": [ this is not json${end}`);
              send(`${sep}${chunkFor(path, tokens[i], i + 1, null)}${end}`);
              if (record.abortedAt !== null) return;
              record.sentAt.push(now());
            }
            const finish = script.finishReason ?? (tgi ? "eos_token" : "stop");
            send(`${sep}${chunkFor(path, "", tokens.length + 1, finish, { usage: script.usage })}${end}`);
            if (!tgi && !ollama) send("data: [DONE]\n\n");
            record.finishedAt = now();
            controller.close();
          } catch {
            // The client went away while we were writing.
          }
        },
      });
      return new Response(stream, {
        headers: {
          "content-type": ollama ? "application/x-ndjson" : "text/event-stream",
          "cache-control": "no-cache",
        },
      });
    },
  );

  return Object.assign(stub, {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    enqueue: (...scripts: StubScript[]) => void queue.push(...scripts),
    async waitFor(predicate: (requests: StubRequest[]) => boolean, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(requests)) {
        if (Date.now() > deadline) throw new Error(`Stub: condition not met within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: () => server.shutdown(),
  }) as Stub;
}

/** Tokens shaped like a Llama-2 tokenizer's output (about 4 characters each) for a reply of n tokens. */
export function syntheticTokens(n: number): string[] {
  const words = (
    "The patient describes intermittent chest tightness on exertion that settles with rest. Consider stable " +
    "angina; arrange an exercise electrocardiogram, lipid profile and HbA1c, review smoking status, blood " +
    "pressure and family history, and give clear advice on when to seek urgent care."
  ).split(" ");
  const tokens: string[] = [];
  for (let i = 0; tokens.length < n; i++) {
    const word = (i > 0 && i % 40 === 0 ? "\n\n" : " ") + words[i % words.length];
    for (let j = 0; j < word.length && tokens.length < n; j += 4) tokens.push(word.slice(j, j + 4));
  }
  return tokens;
}

if (import.meta.main) {
  const arg = (name: string, fallback: number) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  };
  const rate = arg("rate", 50);
  const stub = startStub({
    port: arg("port", 8080),
    defaultScript: { tokens: syntheticTokens(arg("tokens", 200)), delayMs: 1000 / rate },
  });
  console.log(`stub listening on ${stub.url} (${rate} tokens/s)`);
}
