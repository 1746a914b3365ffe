/**
 * Live PubMed through NCBI's E-utilities: `esearch` finds the articles a question is about, `efetch` brings
 * their abstracts as PubMed XML, read by the same parser as ingest (knowledge/parse_pubmed.ts). NCBI asks every
 * caller for `tool` and `email` and allows 3 requests a second (10 with an API key) per caller: the throttle
 * given here is shared by every instance (db/limits.ts counts in the database). Only search terms made from
 * the redacted question leave: never the question itself.
 */
import type { Db } from "../db/client.ts";
import { completeIngestRun, openIngestRun, storeBatch, storedPmids } from "../db/snippets.ts";
import { createRedactor } from "../safety/phi.ts";
import type { Embedder } from "./embedder.ts";
import { contentHash } from "./ingest.ts";
import { parsePubmed } from "./parse_pubmed.ts";
import { type Vocabulary, withGroupNames } from "./vocabulary.ts";
import type { SnippetDraft } from "./records.ts";

/** How the knowledge base asks PubMed: never, when local evidence is weak, or for every question. */
export const PUBMED_MODES = ["off", "fallback", "always"] as const;
/** One of PUBMED_MODES. */
export type PubmedMode = typeof PUBMED_MODES[number];

/** The E-utilities settings. */
export interface PubmedSettings {
  mode: PubmedMode;
  /** E-utilities base URL (NCBI's, or a mirror or stub), ending in `/`. */
  baseUrl: string;
  apiKey: string | null;
  tool: string;
  email: string | null;
  /** Articles fetched per question. */
  results: number;
  /** Longest wait for PubMed per question (search and fetch together). */
  timeoutMs: number;
}

/** NCBI's base URL. */
export const NCBI_EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/";

/** Why PubMed gave nothing, in words a clinician can read under an answer. */
export class PubmedError extends Error {
  constructor(readonly kind: "rate_limited" | "unavailable" | "refused" | "timeout", message: string) {
    super(message);
    this.name = "PubmedError";
  }
}

/** Waits for a turn within NCBI's requests per second (shared by every instance). */
export type Throttle = (perSecond: number, signal: AbortSignal) => Promise<void>;

/** A PubMed client. */
export interface PubmedClient {
  readonly settings: PubmedSettings;
  /** The PMIDs PubMed ranks best for the terms (at most `settings.results`). */
  search(terms: string, signal: AbortSignal): Promise<string[]>;
  /** The abstracts of these articles as snippet drafts (one per abstract section), cited by PMID. */
  fetch(pmids: string[], signal: AbortSignal): Promise<SnippetDraft[]>;
}

/** Abstract sections (and chunks of long ones) stored per article at most. */
const MAX_SECTIONS = 12;

/** Words that make no search term. */
const NOT_TERMS = new Set(
  ("a an the and or but if of to in on at by for with from as is are was were be been it its this that " +
    "these those there i you he she we they me him her us them my your his our their do does did have has " +
    "had not no can could should would may might will shall must what which who whom whose when where why " +
    "how about any some all other such than then so very more most also just only please patient patients " +
    "doctor doctors tell know need want get take taking taken give given use used using best good bad next " +
    "step steps now still since after before year years old month months week weeks day days today " +
    "mr mrs ms dr yes mrn nhs dob ssn id").split(" "),
);

/**
 * Search terms from a question: its content words (identifier placeholders like `[NAME_1]`, numbers and
 * one-letter words left out), at most `max`, in order. PubMed maps plain words to MeSH itself.
 */
export function pubmedTerms(question: string, max = 6): string[] {
  const withoutPlaceholders = question.replace(/\[[A-Z]+_\d+\]/g, " ");
  const out: string[] = [];
  for (
    const word of withoutPlaceholders.normalize("NFKC").toLowerCase().match(/[\p{L}][\p{L}\p{N}'-]*/gu) ?? []
  ) {
    const clean = word.replace(/^['-]+|['-]+$/g, "");
    if (clean.length < 2 || NOT_TERMS.has(clean) || out.includes(clean)) continue;
    out.push(clean);
    if (out.length >= max) break;
  }
  return out;
}

/**
 * Keywords from a model's reply to "list PubMed keywords": the first line, split on commas, each a short run of
 * words. Anything else (a sentence, a refusal, noise from a small model) is null: the question's terms are used.
 */
export function parseKeywords(reply: string): string[] | null {
  const line = reply.split("\n").map((l) => l.trim()).find(Boolean) ?? "";
  const parts = line.replace(/^(key ?words?|search terms?)\s*:\s*/i, "").split(/\s*[,;]\s*/)
    .map((p) => p.replace(/^[-*•\d.)\s"']+|[\s"'.]+$/g, "")).filter(Boolean);
  if (parts.length === 0 || parts.length > 6) return null;
  const word = /^\p{L}[\p{L}\p{N}'-]*$/u;
  const ok = parts.every((p) => {
    const words = p.split(/\s+/);
    return p.length <= 40 && words.length <= 4 && words.every((w) => word.test(w)) &&
      !NOT_TERMS.has(p.toLowerCase());
  });
  return ok ? parts : null;
}

/** A client over fetch, throttled to NCBI's rate. */
export function createPubmedClient(
  settings: PubmedSettings,
  deps: { throttle: Throttle; fetch?: typeof fetch },
): PubmedClient {
  const fetcher = deps.fetch ?? fetch;
  const perSecond = settings.apiKey ? 10 : 3;
  const base = settings.baseUrl.endsWith("/") ? settings.baseUrl : settings.baseUrl + "/";

  async function call(path: string, params: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const url = new URL(path, base);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    url.searchParams.set("tool", settings.tool);
    if (settings.email) url.searchParams.set("email", settings.email);
    if (settings.apiKey) url.searchParams.set("api_key", settings.apiKey);
    for (let attempt = 1;; attempt++) {
      await deps.throttle(perSecond, signal);
      let response: Response;
      try {
        response = await fetcher(url, { signal, headers: { accept: "application/json, text/xml" } });
      } catch {
        if (signal.aborted) throw new PubmedError("timeout", "PubMed did not answer in time");
        throw new PubmedError("unavailable", "PubMed could not be reached");
      }
      if (response.status === 429) {
        await response.body?.cancel();
        // Another caller (or instance) used the second: one more try in the next one.
        if (attempt < 2) continue;
        throw new PubmedError("rate_limited", "PubMed is limiting requests from this server");
      }
      if (!response.ok) {
        await response.body?.cancel();
        // The status only: what the server wrote beside it reaches clinicians' screens otherwise.
        throw new PubmedError(
          response.status >= 500 ? "unavailable" : "refused",
          `PubMed answered HTTP ${response.status}`,
        );
      }
      return response;
    }
  }

  return {
    settings,
    async search(terms, signal) {
      if (!terms.trim()) return [];
      const response = await call("esearch.fcgi", {
        db: "pubmed",
        term: terms,
        retmode: "json",
        retmax: String(settings.results),
        sort: "relevance",
      }, signal);
      let body: { esearchresult?: { idlist?: unknown; ERROR?: string }; error?: string };
      try {
        body = await response.json();
      } catch {
        throw new PubmedError("refused", "PubMed's search answered something that is not JSON");
      }
      if (body.error) throw new PubmedError("refused", "PubMed refused the search");
      const result = body.esearchresult;
      if (!result) throw new PubmedError("refused", "PubMed's search answered without results");
      if (result.ERROR && !Array.isArray(result.idlist)) {
        throw new PubmedError("refused", "PubMed refused the search");
      }
      const ids = Array.isArray(result.idlist) ? result.idlist : [];
      return ids.filter((id): id is string => typeof id === "string" && /^\d{1,9}$/.test(id))
        .slice(0, settings.results);
    },
    async fetch(pmids, signal) {
      pmids = pmids.filter((id) => /^\d{1,9}$/.test(id)).slice(0, settings.results);
      if (pmids.length === 0) return [];
      const response = await call("efetch.fcgi", {
        db: "pubmed",
        id: pmids.join(","),
        retmode: "xml",
        rettype: "abstract",
      }, signal);
      const drafts: SnippetDraft[] = [];
      // Only the articles asked for, and a bounded number of sections each: a server that sends more does not
      // fill the knowledge base.
      const asked = new Set(pmids);
      for await (const event of parsePubmed(response.body!, { fileName: "PubMed" })) {
        if (event.kind !== "record") continue;
        const pmid = /^PMID:(\d+)#/.exec(event.snippets[0]?.sourceId ?? "")?.[1];
        if (pmid && asked.has(pmid)) drafts.push(...event.snippets.slice(0, MAX_SECTIONS));
      }
      return drafts;
    },
  };
}

/** What asking PubMed for one question did. */
export interface PubmedOutcome {
  /** Articles PubMed ranked for the question. */
  found: number;
  /** Of those, articles fetched now and stored (the others were stored already). */
  added: number;
}

/** Searches already made (terms → PMIDs), so asking again within the hour costs no request. */
const recentSearches = new Map<string, { pmids: string[]; at: number }>();
const SEARCH_CACHE_MS = 60 * 60 * 1000;
const SEARCH_CACHE_SIZE = 500;

/**
 * Asks PubMed about a question and stores the abstracts it brings in the knowledge base as PubMed snippets
 * (cited by PMID, journal and year, with a link), embedded like ingested ones: the search that follows finds
 * them, and the next question on the subject finds them locally. The question is redacted here whatever the
 * settings (only search terms made from redacted text leave), and articles already stored are not fetched.
 * Throws PubmedError when PubMed cannot help; the caller goes on with local evidence.
 */
export async function askPubmed(
  db: Db,
  embedder: Embedder,
  client: PubmedClient,
  question: string,
  signal: AbortSignal,
  options: {
    /** The conversation before the question, oldest first: names it holds are replaced in the question. */
    earlier?: readonly string[];
    vocabulary?: Vocabulary | null;
    /** Search keywords a model suggests for the (redacted) question; null when it has none worth using. */
    keywords?: (question: string, signal: AbortSignal) => Promise<string[] | null>;
  } = {},
): Promise<PubmedOutcome> {
  const redactor = createRedactor();
  for (const text of options.earlier ?? []) redactor.redact(text);
  const redacted = redactor.redact(question).text;
  const terms = pubmedTerms(options.vocabulary ? withGroupNames(redacted, options.vocabulary) : redacted);
  if (terms.length === 0) return { found: 0, added: 0 };
  const search = async (words: string[]) => {
    const key = words.join(" ");
    const cached = recentSearches.get(key);
    if (cached && Date.now() - cached.at < SEARCH_CACHE_MS) return cached.pmids;
    const pmids = await client.search(key, signal);
    recentSearches.delete(key);
    recentSearches.set(key, { pmids, at: Date.now() });
    if (recentSearches.size > SEARCH_CACHE_SIZE) recentSearches.delete(recentSearches.keys().next().value!);
    return pmids;
  };
  // The model's keywords first, as the design's chatbot searched; a model that suggests none, or nothing
  // PubMed finds, leaves the question's own terms.
  let pmids: string[] = [];
  const suggested = options.keywords ? await options.keywords(redacted, signal).catch(() => null) : null;
  if (suggested?.length) pmids = await search(suggested.map((k) => k.toLowerCase()));
  if (pmids.length === 0) pmids = await search(terms);
  // A question of many words may match nothing: then its first three.
  if (pmids.length === 0 && terms.length > 3) pmids = await search(terms.slice(0, 3));
  if (pmids.length === 0) return { found: 0, added: 0 };
  const known = await storedPmids(db, pmids);
  const missing = pmids.filter((p) => !known.has(p));
  if (missing.length === 0) return { found: pmids.length, added: 0 };
  const drafts = await client.fetch(missing, signal);
  if (drafts.length === 0) return { found: pmids.length, added: 0 };
  const { run } = await openIngestRun(db, {
    inputKey: `pubmed-live:${crypto.randomUUID()}`,
    path: "PubMed (live search)",
    format: "pubmed",
    source: "PubMed",
  });
  const vectors = await embedder.embed(drafts.map((d) => d.text), { signal });
  await storeBatch(
    db,
    drafts.map((draft, i) => ({
      ...draft,
      contentHash: contentHash(draft.text),
      embedder: embedder.id,
      embedding: vectors[i],
    })),
    { runId: run.id, recordsDone: missing.length, duplicates: 0, skipped: 0 },
  );
  await completeIngestRun(db, run.id);
  return { found: pmids.length, added: new Set(drafts.map((d) => d.sourceId.split("#")[0])).size };
}
