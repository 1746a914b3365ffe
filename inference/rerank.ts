/**
 * The optional reranker: a cross-encoder endpoint that reorders retrieval's best candidates by reading the
 * question and each snippet together. Two wire formats cover the common servers:
 *
 * - TEI `POST /rerank {query, texts, truncate}` → `[{index, score}]` (llama.cpp's `/rerank` answers it too);
 * - Cohere-style `POST /v1/rerank {model, query, documents, top_n}` → `{results: [{index, relevance_score}]}`
 *   (llama.cpp `--reranking`, vLLM, Jina, Cohere's v1/v2).
 *
 * The question and the snippets pass the outbound gate (identifiers replaced), as for the embedder. A reranker
 * that fails or is slow never fails an answer: retrieval keeps its own order (knowledge/retrieve.ts).
 */
import type { RerankApiName } from "../config.ts";
import { EndpointError } from "./endpoint.ts";
import { describeConnectionError, errorReason } from "./server.ts";
import { createOutboundGate } from "../safety/gate.ts";
import type { Reranker } from "../knowledge/retrieve.ts";

/** Where the reranker is and how to call it. */
export interface RerankTarget {
  /** RERANK_URL: the server's base address or its rerank route. */
  url: string;
  /** RERANK_MODEL: sent in Cohere-style requests (servers with one model ignore it). */
  model: string | null;
  /** RERANK_API; null follows the URL's path (rerankRoute). */
  api: RerankApiName | null;
  token: string | null;
}

/**
 * Which format a URL speaks and where to post: a path ending `/v1/rerank` or `/v2/rerank` is Cohere-style, one
 * ending `/rerank` TEI; a base URL gets `/v1/rerank` (Cohere-style, what most servers serve) unless RERANK_API
 * names TEI.
 */
export function rerankRoute(
  url: string,
  api: RerankApiName | null = null,
): { api: RerankApiName; url: string } {
  const base = url.replace(/\/+$/, "");
  const path = new URL(base).pathname;
  const named = /\/v\d+\/rerank$/.test(path) ? "cohere" : /\/rerank$/.test(path) ? "tei" : null;
  const kind = api ?? named ?? "cohere";
  if (/\/rerank$/.test(path)) return { api: kind, url: base };
  return { api: kind, url: kind === "tei" ? `${base}/rerank` : `${base}/v1/rerank` };
}

/** Reads either answer shape into one score per text. */
export function readScores(json: unknown, count: number, url: string): number[] {
  const list = Array.isArray(json)
    ? json
    : json && typeof json === "object" && Array.isArray((json as { results?: unknown }).results)
    ? (json as { results: unknown[] }).results
    : null;
  if (!list) throw new EndpointError("malformed", `rerank: ${url} answered without a list of scores`);
  const scores: number[] = new Array(count).fill(Number.NEGATIVE_INFINITY);
  let seen = 0;
  for (const item of list) {
    const { index, score, relevance_score } = (item ?? {}) as Record<string, unknown>;
    const value = typeof relevance_score === "number" ? relevance_score : score;
    if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= count) continue;
    if (typeof value !== "number" || !Number.isFinite(value)) continue;
    scores[index as number] = value;
    seen++;
  }
  if (seen !== count) {
    throw new EndpointError("malformed", `rerank: ${url} scored ${seen} of the ${count} texts sent`);
  }
  return scores;
}

/** How long one rerank request may take: it is on the path of an answer. */
const RERANK_TIMEOUT_MS = 5_000;

/** Builds the reranker and asks it once (two texts), so a wrong address fails at start with the server's reason. */
export async function createReranker(
  target: RerankTarget,
  options: { redactPhi?: boolean; fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<Reranker> {
  const route = rerankRoute(target.url, target.api);
  const fetchFn = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? RERANK_TIMEOUT_MS;
  const gate = createOutboundGate({ redact: options.redactPhi ?? true });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (target.token) headers.authorization = `Bearer ${target.token}`;

  async function rerank(
    query: string,
    texts: string[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<number[]> {
    if (texts.length === 0) return [];
    // Through the gate: the question and the snippets reach the server with identifiers replaced.
    const [gatedQuery, ...gatedTexts] = await gate.texts([query, ...texts]);
    const body = route.api === "tei" ? { query: gatedQuery, texts: gatedTexts, truncate: true } : {
      ...(target.model ? { model: target.model } : {}),
      query: gatedQuery,
      documents: gatedTexts,
      top_n: gatedTexts.length,
    };
    const signals = [AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])];
    let response: Response;
    let text: string;
    try {
      response = await fetchFn(route.url, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.any(signals),
      });
      text = await response.text();
    } catch (error) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if ((error as Error)?.name === "TimeoutError") {
        throw new EndpointError(
          "unavailable",
          `rerank: ${route.url} did not answer within ${Math.round(timeoutMs / 100) / 10} s`,
        );
      }
      throw new EndpointError(
        "unreachable",
        `rerank: cannot connect to ${route.url} (${describeConnectionError(error)})`,
      );
    }
    if (!response.ok) {
      throw new EndpointError(
        response.status === 429 ? "rate_limited" : response.status >= 500 ? "unavailable" : "rejected",
        `rerank: ${route.url} answered ${response.status}: ${errorReason(text) || "no reason given"}`,
        response.status,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new EndpointError("malformed", `rerank: ${route.url} answered with something other than JSON`);
    }
    return readScores(json, texts.length, route.url);
  }

  await rerank("Dry cough for two weeks after a cold.", [
    "Cough after a viral infection.",
    "A changing mole.",
  ]);
  return {
    id: `rerank:${target.model ?? route.url}`,
    description: `${route.api === "tei" ? "TEI" : "Cohere-style"} rerank at ${route.url}` +
      (target.model ? ` (${target.model})` : ""),
    rerank,
  };
}

/** What createConfiguredReranker reads from the configuration. */
export interface RerankConfig {
  rerankUrl: string | null;
  rerankModel: string | null;
  rerankApi: RerankApiName | null;
  rerankApiKey: string | null;
  security?: { phiRedaction: string };
}

/** The reranker RERANK_URL names (asked once now), or null when none is configured. */
export async function createConfiguredReranker(
  config: RerankConfig,
  options: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<Reranker | null> {
  if (!config.rerankUrl) return null;
  return await createReranker({
    url: config.rerankUrl,
    model: config.rerankModel,
    api: config.rerankApi,
    token: config.rerankApiKey,
  }, { redactPhi: config.security?.phiRedaction !== "off", ...options });
}
