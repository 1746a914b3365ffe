/**
 * Is the inference endpoint usable? A cheap probe for /healthz and the start-up log that tells a server that
 * is loading (or waking from scale-to-zero) from one that refuses the key and from one that does not answer.
 */
import { serverRoot } from "./server.ts";

/** What /healthz reports for the model side. */
export type InferenceStatus =
  | "ok"
  | "not configured"
  /** Answers 503: loading its model, or a scaled-to-zero endpoint starting. */
  | "loading"
  /** Answers 401/403: the configured key is missing or wrong. */
  | "unauthorized"
  /** Answers with another error. */
  | "failing"
  /** Does not answer at all. */
  | "unreachable";

/** An endpoint to probe: a TGI / vLLM / llama.cpp / Ollama base URL, or an OpenAI-style `/v1` URL. */
export interface ProbeTarget {
  url: string;
  token: string | null;
}

/** Options for createInferenceProbe. */
export interface ProbeOptions {
  /** How long a result is reused; keeps frequent health checks from reaching the GPU server. */
  cacheMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Base URL of Hugging Face Inference Providers' OpenAI-compatible router (used when only MODEL is set). */
export const HF_ROUTER_URL = "https://router.huggingface.co/v1";

/** Worst first: with several models, the worst status is the one reported. */
const SEVERITY: InferenceStatus[] = ["unreachable", "unauthorized", "failing", "loading", "ok"];

/**
 * Returns a function that reports the state of the configured endpoints. `GET /v1/models` comes first: every
 * family serves it and it needs the key (llama.cpp's `/health` answers 200 even when every request would fail
 * 401). Servers without it are asked `GET /health`.
 */
export function createInferenceProbe(
  targets: ProbeTarget[],
  options: ProbeOptions = {},
): () => Promise<InferenceStatus> {
  const cacheMs = options.cacheMs ?? 10_000;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const fetchFn = options.fetch ?? fetch;
  let cached: { at: number; status: Promise<InferenceStatus> } | null = null;

  async function probeOne(target: ProbeTarget): Promise<InferenceStatus> {
    const headers: HeadersInit = target.token ? { authorization: `Bearer ${target.token}` } : {};
    const root = serverRoot(target.url);
    for (const url of [`${root}/v1/models`, `${root}/health`]) {
      let status: number;
      try {
        const response = await fetchFn(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
        await response.body?.cancel();
        status = response.status;
      } catch {
        return "unreachable";
      }
      if (status >= 200 && status < 300) return "ok";
      if (status === 401 || status === 403) return "unauthorized";
      if (status === 502 || status === 503 || status === 504) return "loading";
      // 404/405: this server has no such route; try the next. Anything else is an answer about health.
      if (status !== 404 && status !== 405) return "failing";
    }
    return "failing";
  }

  return () => {
    if (targets.length === 0) return Promise.resolve("not configured");
    const now = Date.now();
    if (cached && now - cached.at < cacheMs) return cached.status;
    const status = Promise.all(targets.map(probeOne)).then((results) =>
      SEVERITY.find((s) => results.includes(s)) ?? "ok"
    );
    cached = { at: now, status };
    return status;
  };
}
