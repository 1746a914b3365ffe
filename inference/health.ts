/**
 * Is the inference endpoint reachable? A cheap probe for /healthz and the start-up log.
 */

/** What /healthz reports for the model side. */
export type InferenceStatus = "ok" | "not configured" | "unreachable";

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

/**
 * Returns a function that reports whether every configured endpoint answers. TGI, vLLM and llama.cpp answer
 * `GET /health`; servers without it (Ollama, the HF router) are tried on `GET /v1/models`.
 */
export function createInferenceProbe(
  targets: ProbeTarget[],
  options: ProbeOptions = {},
): () => Promise<InferenceStatus> {
  const cacheMs = options.cacheMs ?? 10_000;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const fetchFn = options.fetch ?? fetch;
  let cached: { at: number; status: Promise<InferenceStatus> } | null = null;

  async function probeOne(target: ProbeTarget): Promise<boolean> {
    const headers: HeadersInit = target.token ? { authorization: `Bearer ${target.token}` } : {};
    const base = target.url.replace(/\/+$/, "");
    const root = base.replace(/\/v1$/, "");
    const candidates = base.endsWith("/v1") ? [`${base}/models`, `${root}/health`] : [
      `${root}/health`,
      `${root}/v1/models`,
    ];
    for (const url of candidates) {
      try {
        const response = await fetchFn(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
        await response.body?.cancel();
        if (response.ok) return true;
        // 404/405: this server has no such route; try the next. Anything else is an answer about health.
        if (response.status !== 404 && response.status !== 405) return false;
      } catch {
        return false;
      }
    }
    return false;
  }

  return () => {
    if (targets.length === 0) return Promise.resolve("not configured");
    const now = Date.now();
    if (cached && now - cached.at < cacheMs) return cached.status;
    const status = Promise.all(targets.map(probeOne)).then((results) =>
      results.every(Boolean) ? "ok" as const : "unreachable" as const
    );
    cached = { at: now, status };
    return status;
  };
}
