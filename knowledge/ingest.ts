/**
 * Ingest: parse a dataset file as a stream, hash and deduplicate its snippets, embed the new ones and store them
 * in batches, recording progress so an interrupted run resumes where it stopped. Also re-embedding.
 */
import { createHash } from "node:crypto";
import { basename, relative, resolve } from "node:path";
import type { Db } from "../db/client.ts";
import {
  completeIngestRun,
  dropVectorIndex,
  ensureVectorIndex,
  hasSnippets,
  type NewSnippet,
  openIngestRun,
  refreshSearchTerms,
  snippetsToReembed,
  storeBatch,
  storedHashes,
  updateEmbeddings,
} from "../db/snippets.ts";
import { type Embedder, vectorLiteral } from "./embedder.ts";
import { parseFile, parseStream } from "./parsers.ts";
import { yieldToEventLoop } from "../slices.ts";
import type { ColumnMapping, FormatName, SnippetDraft } from "./records.ts";

/** What an ingest reports while it runs. */
export interface IngestProgress {
  path: string;
  format: FormatName;
  records: number;
  added: number;
  duplicates: number;
  skipped: number;
  /**
   * Bytes of the file whose records are stored (where the parse stood when their batch was cut) and its size,
   * for a bar, a rate and an ETA (compressed bytes for .gz). Not the bytes parsed: the parse runs a batch and a
   * read-ahead before the database, and a 3,000-row table showed "100%" with a sixth of it stored.
   */
  bytesRead: number;
  bytesTotal: number;
}

/** A record that could not be used. */
export interface SkippedRecord {
  location: string;
  reason: string;
}

/** Options of one file's ingest. */
export interface IngestOptions {
  format?: FormatName;
  sourceName?: string;
  specialty?: string;
  /** Snippets per stored batch. */
  batchSize?: number;
  onProgress?: (progress: IngestProgress) => void;
  onSkip?: (skipped: SkippedRecord) => void;
  /** For CSV and Parquet: which columns hold the question, answer, title and id. */
  columns?: ColumnMapping;
  /** For documents: the title their snippets are cited by. */
  title?: string;
  /** The uploaded document the snippets belong to. */
  documentId?: string;
  /** Most bytes the input may be once unzipped; past it the ingest stops with UnreadableFileError. */
  maxBytes?: number;
  /** Awaited once, before the first batch that has new rows is stored (a bulk load drops its index here). */
  beforeFirstInsert?: () => Promise<void>;
  /**
   * For an ingest inside the server: give the event loop a turn at least this often (a yield costs 1–2 ms, so a
   * command-line ingest, alone in its process, leaves it unset).
   */
  yieldEveryMs?: number;
  /**
   * For an ingest inside the server: size each stored batch so its transaction holds the database about
   * `holdMs`, and leave the database `restMs` between batches. PGlite has one connection, and a request's
   * statements queue behind the ingest's one by one: with 500-row batches a progress poll waited 2–4 s, and
   * each of a chat question's statements would wait a whole batch. The first batch is small; the next follow
   * the last store's milliseconds per row (at most doubling), up to `batchSize`.
   */
  storeSlices?: { holdMs: number; restMs: number };
  signal?: AbortSignal;
}

/** Rows in a sliced ingest's first batch, and the fewest any of its batches takes. */
const FIRST_SLICED_BATCH = 32;
const SMALLEST_SLICED_BATCH = 8;

/** How one file's ingest ended. */
export interface IngestSummary {
  path: string;
  format: FormatName;
  /** Records read in this run (records a resumed run skipped are not counted). */
  read: number;
  added: number;
  duplicates: number;
  skipped: number;
  /** Records an earlier, interrupted run had already stored. */
  resumedFrom: number;
  seconds: number;
  /** Seconds spent embedding (the rest is parsing and the database). */
  embedSeconds: number;
}

/** The content hash of a snippet: SHA-256 of its text with whitespace and case normalised. */
export function contentHash(text: string): string {
  return createHash("sha256").update(text.replace(/\s+/g, " ").trim().toLowerCase()).digest("hex");
}

/** Ingests one file. Running it again adds nothing; running it after an interruption continues from there. */
export async function ingestFile(
  db: Db,
  embedder: Embedder,
  path: string,
  options: IngestOptions = {},
): Promise<IngestSummary> {
  const absolute = resolve(path);
  const stat = await Deno.stat(absolute);
  const file = await Deno.open(absolute, { read: true });
  return await ingestStream(db, embedder, {
    stream: file.readable,
    fileName: basename(path),
    path,
    runPath: relative(Deno.cwd(), absolute) || absolute,
    size: stat.size,
    inputKey: (format) =>
      createHash("sha256").update(JSON.stringify([
        absolute,
        stat.size,
        stat.mtime?.getTime() ?? null,
        format,
        options.sourceName ?? null,
        options.specialty ?? null,
        options.columns ?? null,
        options.title ?? null,
      ])).digest("hex"),
  }, options);
}

/** Bytes to ingest, from a file or an upload. */
export interface IngestInput {
  stream: ReadableStream<Uint8Array>;
  /** Name shown in locations and used for format and source hints. */
  fileName: string;
  /** What progress reports call it. */
  path: string;
  /** What the ingest run records as its path. */
  runPath: string;
  size: number;
  /** Identifies this input (and its options) across runs, so an interrupted run resumes. */
  inputKey: (format: FormatName) => string;
}

/** Ingests bytes from anywhere: the pipeline behind {@link ingestFile} and uploaded documents. */
export async function ingestStream(
  db: Db,
  embedder: Embedder,
  input: IngestInput,
  options: IngestOptions = {},
): Promise<IngestSummary> {
  const started = performance.now();
  const path = input.path;
  const stat = { size: input.size };
  let bytesRead = 0;
  let bytesStored = 0;
  const parsed = await parseStream(input.stream, {
    fileName: input.fileName,
    format: options.format,
    sourceName: options.sourceName,
    specialty: options.specialty,
    columns: options.columns,
    title: options.title,
    maxBytes: options.maxBytes,
    onBytes: (n) => (bytesRead = n),
  });
  const { run } = await openIngestRun(db, {
    inputKey: input.inputKey(parsed.format),
    path: input.runPath,
    format: parsed.format,
    source: options.sourceName ?? null,
  });
  const resumedFrom = run.recordsDone;
  const largestBatch = options.batchSize ?? Math.max(embedder.batchSize, 500);
  const slices = options.storeSlices;
  let batchSize = slices ? Math.min(largestBatch, FIRST_SLICED_BATCH) : largestBatch;
  let lastStoreEnded = -Infinity;
  const totals = { read: 0, added: 0, duplicates: 0, skipped: 0 };
  let embedSeconds = 0;
  let pending: SnippetDraft[] = [];
  let pendingSkips = 0;
  let lastIndex = resumedFrom - 1;

  const report = () =>
    options.onProgress?.({
      path,
      format: parsed.format,
      records: totals.read,
      added: totals.added,
      duplicates: totals.duplicates,
      skipped: totals.skipped,
      bytesRead: bytesStored,
      bytesTotal: stat.size,
    });

  // A database or embedder in this process (in-memory PGlite, the lexical embedder) answers without giving the
  // event loop a turn: a 1,200-row table held it for 6 s, so no request, progress poll or heartbeat ran until
  // the ingest ended (and its upload's answer was written only then).
  const yieldEveryMs = options.yieldEveryMs ?? Infinity;
  let sliceStarted = performance.now();
  const yieldWhenDue = async () => {
    if (performance.now() - sliceStarted < yieldEveryMs) return;
    await yieldToEventLoop();
    sliceStarted = performance.now();
  };
  // One batch is stored while the next is parsed, checked and embedded: the database and the embedder (or
  // this process's CPU) work at the same time. Stores stay in input order, so a run's recordsDone is exact.
  let storing: Promise<void> | null = null;
  let beforeFirstInsert = options.beforeFirstInsert;
  const flush = async () => {
    const batch = pending;
    const batchSkips = pendingSkips;
    const recordsDone = lastIndex + 1;
    const batchEnd = bytesRead;
    pending = [];
    pendingSkips = 0;
    const unique = new Map<string, SnippetDraft>();
    let duplicates = 0;
    for (const draft of batch) {
      const hash = contentHash(draft.text);
      if (unique.has(hash)) duplicates++;
      else unique.set(hash, draft);
    }
    await yieldWhenDue();
    const known = await storedHashes(db, [...unique.keys()]);
    duplicates += known.size;
    const fresh = [...unique].filter(([hash]) => !known.has(hash));
    await yieldWhenDue();
    const embedStarted = performance.now();
    const vectors = fresh.length
      ? await embedder.embed(fresh.map(([, d]) => d.text), { signal: options.signal })
      : [];
    embedSeconds += (performance.now() - embedStarted) / 1000;
    const rows: NewSnippet[] = fresh.map(([hash, draft], i) => ({
      source: draft.source,
      sourceId: draft.sourceId,
      url: draft.url,
      specialty: draft.specialty,
      title: draft.title,
      question: draft.question,
      answer: draft.answer,
      text: draft.text,
      contentHash: hash,
      embedder: embedder.id,
      embedding: vectors[i],
      documentId: options.documentId ?? null,
      page: draft.page ?? null,
    }));
    await storing; // the batch before is stored (a failure there ends the run here)
    await yieldWhenDue();
    // A request whose statements queued behind the last store runs them all before the next store begins.
    const restMs = slices ? slices.restMs - (performance.now() - lastStoreEnded) : 0;
    if (restMs > 0) await new Promise((resolve) => setTimeout(resolve, restMs));
    if (rows.length > 0 && beforeFirstInsert) {
      const prepare = beforeFirstInsert;
      beforeFirstInsert = undefined;
      await prepare();
    }
    const storeStarted = performance.now();
    storing = storeBatch(db, rows, { runId: run.id, recordsDone, duplicates, skipped: batchSkips })
      .then((added) => {
        lastStoreEnded = performance.now();
        if (slices && rows.length > 0) {
          const msPerRow = (lastStoreEnded - storeStarted) / rows.length;
          const fits = Math.min(slices.holdMs / msPerRow, batchSize * 2, largestBatch);
          batchSize = Math.max(SMALLEST_SLICED_BATCH, Math.round(fits));
        }
        totals.added += added;
        // A row stored between the check and the insert (by the batch before, or elsewhere) is a duplicate.
        totals.duplicates += duplicates + rows.length - added;
        bytesStored = batchEnd;
        report();
      });
    storing.catch(() => {}); // awaited at the next flush or the end; never an unhandled rejection
  };

  try {
    for await (const event of parsed.events) {
      options.signal?.throwIfAborted();
      await yieldWhenDue();
      if (event.index < resumedFrom) continue;
      totals.read++;
      lastIndex = event.index;
      if (event.kind === "skip") {
        totals.skipped++;
        pendingSkips++;
        options.onSkip?.({ location: event.location, reason: event.reason });
      } else {
        pending.push(...event.snippets);
      }
      if (pending.length >= batchSize) await flush();
    }
    await flush();
  } finally {
    // Whatever stopped the loop, the batch already handed to the database finishes (or fails) first.
    await (storing as Promise<void> | null)?.catch(() => {});
  }
  await storing;
  await completeIngestRun(db, run.id);
  return {
    path,
    format: parsed.format,
    ...totals,
    resumedFrom,
    seconds: (performance.now() - started) / 1000,
    embedSeconds,
  };
}

/**
 * The snippets of a dataset file or directory (a directory's manifest.json giving per-file format, source and
 * specialty), parsed as ingest would store them; skipped records are left out. For evaluations that read a corpus
 * without storing it.
 */
export async function* corpusSnippets(path: string): AsyncGenerator<SnippetDraft> {
  const manifest = (await Deno.stat(path)).isDirectory ? await readManifest(path) : {};
  for (const file of await inputFiles(path)) {
    const entry = manifest[relative(resolve(path), resolve(file))] ?? {};
    const { events } = await parseFile(file, {
      format: entry.format,
      sourceName: entry.source,
      specialty: entry.specialty,
    });
    for await (const event of events) if (event.kind === "record") yield* event.snippets;
  }
}

/** Files under a directory (or the file itself), sorted, skipping hidden files and manifests. */
export async function inputFiles(path: string): Promise<string[]> {
  const stat = await Deno.stat(path);
  if (stat.isFile) return [path];
  const found: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    if (entry.name.startsWith(".") || entry.name === MANIFEST) continue;
    const child = `${path.replace(/\/$/, "")}/${entry.name}`;
    if (entry.isDirectory) found.push(...await inputFiles(child));
    else if (entry.isFile) found.push(child);
  }
  return found.sort();
}

/** Name of the optional file in a corpus directory that gives per-file ingest options. */
export const MANIFEST = "manifest.json";

/** Per-file options a corpus directory's manifest.json gives, keyed by path relative to the directory. */
export type Manifest = Record<string, { format?: FormatName; source?: string; specialty?: string }>;

/** Reads a directory's manifest.json, or an empty one. */
export async function readManifest(dir: string): Promise<Manifest> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir.replace(/\/$/, "")}/${MANIFEST}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return {};
    throw error;
  }
  const parsed = JSON.parse(text);
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`${dir}/${MANIFEST} must be an object keyed by file path`);
  }
  return parsed as Manifest;
}

/** The sample corpus that ships with Rounds (hypothetical dialogues and records written for the project). */
export const SAMPLE_CORPUS = new URL("../data/corpus/", import.meta.url);

/**
 * Loads the sample corpus when the knowledge base is empty (the embedded default's first start). Returns the
 * number of snippets added, or null when the knowledge base already had some.
 */
export async function loadSampleCorpusIfEmpty(db: Db, embedder: Embedder): Promise<number | null> {
  if (await hasSnippets(db)) return null;
  const dir = SAMPLE_CORPUS.pathname;
  const manifest = await readManifest(dir);
  let added = 0;
  // Building the HNSW graph once is several times faster than growing it row by row.
  await dropVectorIndex(db);
  try {
    for (const file of await inputFiles(dir)) {
      const entry = manifest[relative(dir, file)] ?? {};
      const summary = await ingestFile(db, embedder, file, {
        format: entry.format,
        sourceName: entry.source,
        specialty: entry.specialty,
      });
      added += summary.added;
    }
  } finally {
    await ensureVectorIndex(db);
  }
  await refreshSearchTerms(db);
  return added;
}

/** What a re-embed reports as it goes. */
export interface ReembedProgress {
  done: number;
  total: number;
}

/** Re-embeds every snippet not made by `embedder`, in id order, in batches. Returns how many changed. */
export async function reembedAll(
  db: Db,
  embedder: Embedder,
  options: { total: number; batchSize?: number; onProgress?: (p: ReembedProgress) => void },
): Promise<number> {
  const limit = options.batchSize ?? Math.max(embedder.batchSize, 256);
  let afterId: string | null = null;
  let done = 0;
  for (;;) {
    const page = await snippetsToReembed(db, embedder.id, { afterId, limit });
    if (page.length === 0) return done;
    const vectors = await embedder.embed(page.map((s) => s.text));
    await updateEmbeddings(
      db,
      embedder.id,
      page.map((s, i) => ({ id: s.id, embedding: vectorLiteral(vectors[i]) })),
    );
    done += page.length;
    afterId = page[page.length - 1].id;
    options.onProgress?.({ done, total: options.total });
  }
}
