/**
 * What kind of server is behind a model's URL, learned once from its own routes: the family (which decides how
 * output is constrained, where the tokenizer is and how raw prompts are sent), its context size and the models
 * it serves. An operator may name the family instead (INFERENCE_SERVER, or `server` in MODELS_FILE).
 */

import type { ServerFamilyName } from "../config.ts";

/** The server families Rounds speaks to (config.ts SERVER_FAMILY_NAMES). `openai` is any other OpenAI-compatible
 * server (LM Studio, OpenAI…). */
export type ServerFamily = ServerFamilyName;

/** What Rounds learned about a server. */
export interface ServerProfile {
  family: ServerFamily;
  /** How the family was learned: "configured", or the route that told ("/props", "/info" …). */
  familyFrom: string;
  /** The context window in tokens the server reports; null when it does not say. */
  contextSize: number | null;
  /** The route that reported the context size. */
  contextFrom: string | null;
  /** TGI's limit on prompt tokens (`max_input_tokens`), below the context. */
  maxInputTokens: number | null;
  /** Model ids the server lists at `/v1/models`; empty when it lists none. */
  models: string[];
  /**
   * The chat template opens a `<think>` block itself (its generation prompt ends with one), so a server that does
   * not separate reasoning streams the thinking as content with no opening tag. Learned from llama.cpp's
   * `/apply-template`; false elsewhere.
   */
  chatOpensThought: boolean;
}

/** Why a server could not be asked: it is still loading, refuses the key, or does not answer. */
export type ServerState = "loading" | "unauthorized" | "unreachable";

/** A server that did not answer discovery; `detail` is its own words where it gave any. */
export interface DiscoveryFailure {
  state: ServerState;
  detail: string;
}

/** Where and how to reach the server. */
export interface ServerTarget {
  /** Base URL (with or without a trailing `/v1`). */
  url: string;
  token: string | null;
  /** The family the operator named, or null to learn it. */
  family: ServerFamily | null;
}

/** The server's root: the base URL without a trailing `/v1`. */
export function serverRoot(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/v1$/, "");
}

interface Answer {
  status: number;
  json: Record<string, unknown> | null;
  text: string;
}

/**
 * Asks the server's info routes at once (llama.cpp `/props`, TGI `/info`, Ollama `/api/version`, and the
 * OpenAI-style `/v1/models` every family has) and reads the family, context size and models from the answers.
 */
export async function discoverServer(
  target: ServerTarget,
  options: { fetch?: typeof fetch; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<ServerProfile | DiscoveryFailure> {
  const fetchFn = options.fetch ?? fetch;
  const root = serverRoot(target.url);
  const headers: HeadersInit = target.token ? { authorization: `Bearer ${target.token}` } : {};
  const timeout = options.timeoutMs ?? 3000;
  const ask = async (path: string): Promise<Answer | Error> => {
    try {
      const signal = options.signal
        ? AbortSignal.any([options.signal, AbortSignal.timeout(timeout)])
        : AbortSignal.timeout(timeout);
      const response = await fetchFn(root + path, { headers, signal });
      const text = (await response.text()).slice(0, 200_000);
      let json: Record<string, unknown> | null = null;
      try {
        const parsed = JSON.parse(text);
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) json = parsed;
      } catch { /* not JSON */ }
      return { status: response.status, json, text };
    } catch (error) {
      return error as Error;
    }
  };
  const [props, info, ollama, models] = await Promise.all(
    target.family === null || target.family === "llama.cpp" || target.family === "tgi" ||
      target.family === "ollama"
      ? ["/props", "/info", "/api/version", "/v1/models"].map(ask)
      : [null, null, null, ask("/v1/models")],
  );
  const answers = [props, info, ollama, models].filter((a): a is Answer | Error => a !== null);
  const ok = (a: Answer | Error | null): a is Answer => a !== null && !(a instanceof Error) && a.status < 300;
  if (!answers.some(ok)) return failureOf(answers);

  const profile: ServerProfile = {
    family: target.family ?? "openai",
    familyFrom: target.family ? "configured" : "default",
    contextSize: null,
    contextFrom: null,
    maxInputTokens: null,
    models: [],
    chatOpensThought: false,
  };
  const setFamily = (family: ServerFamily, from: string) => {
    if (profile.familyFrom !== "default") return;
    profile.family = family;
    profile.familyFrom = from;
  };
  const setContext = (value: unknown, from: string) => {
    if (profile.contextSize !== null || typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      return;
    }
    profile.contextSize = value;
    profile.contextFrom = from;
  };

  if (ok(props) && props.json) {
    const settings = props.json.default_generation_settings as Record<string, unknown> | undefined;
    if (settings || "build_info" in props.json || "total_slots" in props.json) {
      setFamily("llama.cpp", "/props");
      if (profile.family === "llama.cpp") setContext(settings?.n_ctx, "/props");
    }
  }
  if (
    ok(info) && info.json &&
    ("max_total_tokens" in info.json || info.json.router === "text-generation-router")
  ) {
    setFamily("tgi", "/info");
    if (profile.family === "tgi") {
      setContext(info.json.max_total_tokens, "/info");
      const input = info.json.max_input_tokens ?? info.json.max_input_length;
      if (typeof input === "number") profile.maxInputTokens = input;
    }
  }
  if (
    ok(ollama) && ollama.json && typeof ollama.json.version === "string" &&
    !("max_total_tokens" in ollama.json)
  ) {
    setFamily("ollama", "/api/version");
  }
  if (ok(models) && models.json && Array.isArray(models.json.data)) {
    const data = models.json.data as Record<string, unknown>[];
    profile.models = data.map((m) => m?.id).filter((id): id is string => typeof id === "string");
    const owner = data.map((m) => m?.owned_by).find((o) => typeof o === "string");
    if (owner === "vllm") setFamily("vllm", "/v1/models");
    else if (owner === "sglang") setFamily("sglang", "/v1/models");
    else if (owner === "llamacpp") setFamily("llama.cpp", "/v1/models");
    const first = data[0] ?? {};
    const meta = first.meta as Record<string, unknown> | undefined;
    setContext(first.max_model_len ?? meta?.n_ctx ?? first.context_length, "/v1/models");
  }
  if (profile.family === "llama.cpp") {
    try {
      const response = await fetchFn(`${root}/apply-template`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "?" }] }),
        signal: AbortSignal.timeout(timeout),
      });
      const applied = response.ok ? await response.json() : (await response.body?.cancel(), null);
      profile.chatOpensThought = typeof applied?.prompt === "string" && /<think>\s*$/.test(applied.prompt);
    } catch { /* an older server without the route: thinking is found by its tags */ }
  }
  return profile;
}

/** What the failed discovery requests say about the server. */
function failureOf(answers: (Answer | Error)[]): DiscoveryFailure {
  const replies = answers.filter((a): a is Answer => !(a instanceof Error));
  const unauthorized = replies.find((a) => a.status === 401 || a.status === 403);
  if (unauthorized) {
    return { state: "unauthorized", detail: errorDetail(unauthorized.json ?? unauthorized.text) };
  }
  const loading = replies.find((a) => a.status === 503);
  if (loading) return { state: "loading", detail: errorDetail(loading.json ?? loading.text) };
  if (replies.length > 0) {
    const first = replies[0];
    return { state: "unreachable", detail: `HTTP ${first.status}: ${errorDetail(first.json ?? first.text)}` };
  }
  const error = answers[0] as Error | undefined;
  return { state: "unreachable", detail: describeConnectionError(error) };
}

/** A connection failure in a few words (refused, host not found, timed out …) without a stack or an address. */
export function describeConnectionError(error: unknown): string {
  if (!error) return "no answer";
  if ((error as Error).name === "TimeoutError") return "no answer within the time limit";
  return hideAddresses(connectionReason(error));
}

/**
 * Takes addresses out of text that reaches users (the server's own error text, the runtime's "error sending
 * request for url (…)"): an internal host name, or a key in a query string, is nobody's business on a page.
 */
export function hideAddresses(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s)'"<>]+/gi, "(address hidden)");
}

/** The message in an error body, whatever its shape (see errorReason); "no details" when it has none. */
export function errorDetail(body: unknown): string {
  return errorReason(body) || "no details";
}

/**
 * The reason an error body gives, on one line: `{"error": "…"}`, `{"error": {"message": …}}`, `{"message": …}`,
 * `{"detail": …}` (FastAPI, validation lists included), or the text itself (HTML reduced to its words).
 */
export function errorReason(body: unknown): string {
  return hideAddresses(readReason(body));
}

function readReason(body: unknown): string {
  let value = body;
  if (typeof body === "string") {
    const trimmed = body.trim();
    if (!trimmed) return "";
    try {
      value = JSON.parse(trimmed);
    } catch {
      return oneLine(trimmed.startsWith("<") ? trimmed.replace(/<[^>]*>/g, " ") : trimmed);
    }
  }
  return oneLine(reasonIn(value) ?? (typeof value === "string" ? value : JSON.stringify(value)));
}

function reasonIn(value: unknown): string | null {
  if (typeof value === "string") return value.trim() || null;
  if (Array.isArray(value)) {
    const parts = value.map(reasonIn).filter((part): part is string => part !== null);
    return parts.length ? parts.join("; ") : null;
  }
  if (value && typeof value === "object") {
    const record = value as Record<string, unknown>;
    // A FastAPI validation item: where, then what.
    if (typeof record.msg === "string") {
      return Array.isArray(record.loc) ? `${record.loc.join(".")}: ${record.msg}` : record.msg;
    }
    for (const key of ["error", "message", "detail", "error_message"]) {
      const found = reasonIn(record[key]);
      if (found) return found;
    }
  }
  return null;
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

/** The innermost words of a connection failure (fetch wraps them in causes): "connection refused"… */
function connectionReason(error: unknown): string {
  let innermost = "";
  let all = "";
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    innermost = String((e as Error).message ?? e);
    all += ` ${innermost}`;
  }
  if (/connection refused/i.test(all)) return "connection refused";
  if (/dns error|failed to lookup|name or service not known/i.test(all)) return "host not found";
  if (/timed out/i.test(all)) return "connection timed out";
  const last = innermost.split(/:\s+/).filter(Boolean).at(-1) ?? innermost;
  return last.replace(/\s*\(os error \d+\)$/, "").trim() || innermost;
}

/** Reads a context limit from a server's "too long" refusal; null when the message names none. */
export function contextLimitIn(body: unknown): number | null {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    const inner = (b.error && typeof b.error === "object" ? b.error : b) as Record<string, unknown>;
    if (typeof inner.n_ctx === "number") return inner.n_ctx;
  }
  const text = typeof body === "string" ? body : errorDetail(body);
  const match = text.match(/maximum context length is (\d+)/i) ?? text.match(/must be <= (\d+)/i) ??
    text.match(/available context size \((\d+)/i) ??
    text.match(/context (?:size|length|window)[^0-9]{0,20}(\d+)/i);
  return match ? Number(match[1]) : null;
}

/** True when a refusal says the prompt (with the answer's room) does not fit the model's context. */
export function isContextRefusal(body: unknown): boolean {
  if (body && typeof body === "object") {
    const inner = (body as Record<string, unknown>).error as Record<string, unknown> | undefined;
    if (inner && typeof inner === "object" && inner.type === "exceed_context_size_error") return true;
  }
  const text = typeof body === "string" ? body : errorDetail(body);
  return /exceeds? the (available )?context|maximum context length|context length exceeded|context_length_exceeded|`inputs` tokens \+ `max_new_tokens` must be|`inputs` must have less than|prompt is too long|too many tokens/i
    .test(text);
}
