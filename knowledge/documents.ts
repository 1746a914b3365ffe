/**
 * Ingesting uploaded documents: the stored bytes go through the same pipeline as `deno task ingest` (format
 * detection, parsing, dedupe, embedding, batches with a resumable ingest run), with the progress, the skipped
 * records and the outcome written to the document's row for its page. One instance at a time holds a document
 * (a heartbeat); one that stops mid-way leaves it to be resumed, from its last stored batch, by the next.
 */
import type { Db } from "../db/client.ts";
import {
  claimDocument,
  documentBytes,
  documentsToResume,
  finishDocument,
  getDocument,
  recordDocumentProgress,
} from "../db/documents.ts";
import { firstSnippetSource, firstSnippetTitle, hasOneConnection } from "../db/snippets.ts";
import type { SkippedRecordNote } from "../db/schema.ts";
import type { Embedder } from "./embedder.ts";
import { type IngestProgress, ingestStream } from "./ingest.ts";
import { DOCUMENT_FORMATS, FORMAT_LABELS, GzipBombError, UnknownFormatError } from "./parsers.ts";
import { UnreadableFileError } from "./parse_document.ts";
import { SLICE_MS } from "../slices.ts";
import type { ColumnMapping, FormatName } from "./records.ts";

/** Skipped records kept with a document for its page (all are counted). */
export const KEPT_SKIP_NOTES = 50;
/** How often a running ingest writes its progress (and heartbeat) at most. */
const PROGRESS_EVERY_MS = 500;
/**
 * Most text a document may become once unzipped (a gzip upload) and held whole (PDF, Word, Parquet, PubMedQA):
 * JSON.parse of PubMedQA at this size needs about 1 GB.
 */
const MAX_DOCUMENT_TEXT_BYTES = 128 * 1024 * 1024;
/**
 * How long one stored batch holds the database, and the rest between two, on PGlite's one connection: a chat
 * question or a progress poll that arrives during an upload waits about one batch, then runs its statements in
 * the rest (Postgres stores 500-row batches without holding anyone up).
 */
const STORE_SLICES = { holdMs: 250, restMs: 20 };
/** How often a running ingest proves it is alive, whatever it is doing. */
const HEARTBEAT_MS = 15_000;

/** What a document's ingest reports as it goes (for an upload's progress bar). */
export interface DocumentProgress extends IngestProgress {
  documentId: string;
}

/** How a document's ingest ended. */
export type DocumentOutcome =
  | { state: "ready"; added: number; duplicates: number; skipped: number; records: number }
  | { state: "failed"; error: string }
  | { state: "busy" }
  | { state: "missing" };

/** Ingests one stored document if no other instance holds it. */
export async function ingestDocument(
  db: Db,
  embedder: Embedder,
  id: string,
  options: { signal?: AbortSignal; onProgress?: (progress: DocumentProgress) => void } = {},
): Promise<DocumentOutcome> {
  const claim = await claimDocument(db, id);
  if (!claim) return (await getDocument(db, id)) ? { state: "busy" } : { state: "missing" };
  const document = await getDocument(db, id);
  const bytes = await documentBytes(db, id);
  if (!document || !bytes) return { state: "missing" };

  const notes: SkippedRecordNote[] = [...document.skippedNotes].slice(0, KEPT_SKIP_NOTES);
  const { generation } = claim;
  let last: Omit<IngestProgress, "path" | "format"> = {
    records: document.records,
    added: document.added,
    duplicates: document.duplicates,
    skipped: document.skipped,
    bytesRead: 0,
    bytesTotal: bytes.byteLength,
  };
  let written = 0;
  let writing: Promise<void> = Promise.resolve();
  const write = (progress: typeof last) => {
    written = performance.now();
    writing = writing.then(() =>
      recordDocumentProgress(db, id, generation, {
        bytesRead: progress.bytesRead,
        records: progress.records,
        added: progress.added,
        duplicates: progress.duplicates,
        skipped: progress.skipped,
        skippedNotes: notes,
      })
    ).catch(() => {}); // a missed progress write only makes the bar lag
  };
  // The heartbeat goes on whatever the ingest is doing (parsing, a slow embedder), so no other instance takes
  // the document over while this one is alive.
  const heartbeat = setInterval(() => write(last), HEARTBEAT_MS);
  let format: FormatName | undefined;
  try {
    const summary = await ingestStream(db, embedder, {
      stream: byteSlices(bytes),
      fileName: document.fileName,
      path: document.fileName,
      runPath: `upload:${document.fileName}`,
      size: bytes.byteLength,
      inputKey: () => `document:${id}:${generation}`,
    }, {
      format: isFormat(document.format) ? document.format : undefined,
      sourceName: document.source || undefined,
      specialty: document.specialty ?? undefined,
      columns: (document.columns ?? undefined) as ColumnMapping | undefined,
      title: document.title ?? undefined,
      documentId: id,
      signal: options.signal,
      // The server's other requests, the list's progress polls and this ingest's heartbeat go on meanwhile.
      yieldEveryMs: SLICE_MS,
      storeSlices: hasOneConnection(db) ? STORE_SLICES : undefined,
      maxBytes: MAX_DOCUMENT_TEXT_BYTES,
      onSkip: (skip) => {
        if (notes.length < KEPT_SKIP_NOTES) notes.push(skip);
      },
      onProgress: (progress) => {
        last = progress;
        format = progress.format;
        options.onProgress?.({ ...progress, documentId: id });
        if (performance.now() - written >= PROGRESS_EVERY_MS) write(progress);
      },
    });
    format = summary.format;
    clearInterval(heartbeat);
    await writing;
    // The counts of a resumed ingest include what the interrupted one stored.
    await recordDocumentProgress(db, id, generation, {
      bytesRead: bytes.byteLength,
      records: summary.read + summary.resumedFrom,
      added: summary.added + (summary.resumedFrom > 0 ? document.added : 0),
      duplicates: summary.duplicates + (summary.resumedFrom > 0 ? document.duplicates : 0),
      skipped: summary.skipped + (summary.resumedFrom > 0 ? document.skipped : 0),
      skippedNotes: notes,
    });
    // A document's title is what its passages are cited by; a table's rows have titles of their own.
    const title = DOCUMENT_FORMATS.has(summary.format)
      ? await citedTitle(db, id, document.title)
      : document.title;
    const source = document.source || (await firstSnippetSource(db, id)) || "";
    if (!(await finishDocument(db, id, generation, { ok: true, format: summary.format, title, source }))) {
      return (await getDocument(db, id)) ? { state: "busy" } : { state: "missing" }; // re-queued or deleted
    }
    const done = await getDocument(db, id);
    return {
      state: "ready",
      added: done?.added ?? summary.added,
      duplicates: done?.duplicates ?? summary.duplicates,
      skipped: done?.skipped ?? summary.skipped,
      records: done?.records ?? summary.read,
    };
  } catch (error) {
    clearInterval(heartbeat);
    await writing;
    if (options.signal?.aborted) {
      // Stopped by a shutdown: left "ingesting" with a heartbeat that goes stale, so the next start resumes it.
      return { state: "failed", error: "The ingest was interrupted; it resumes when Rounds starts again." };
    }
    const message = failureMessage(error, document.fileName, id);
    if (!(await finishDocument(db, id, generation, { ok: false, error: message, format }))) {
      return (await getDocument(db, id)) ? { state: "busy" } : { state: "missing" }; // re-queued or deleted
    }
    return { state: "failed", error: message };
  }
}

function isFormat(value: string): value is FormatName {
  return value in FORMAT_LABELS;
}

/** Bytes as a stream of 4 KB slices, each made when the parse asks: its progress follows what it has read. */
function byteSlices(bytes: Uint8Array, size = 4 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  }, { highWaterMark: 0 });
}

/** The title the document's snippets carry (the uploader's, else what the parser found in the file). */
async function citedTitle(db: Db, id: string, given: string | null): Promise<string | null> {
  return given ?? await firstSnippetTitle(db, id);
}

/** An ingest failure in words for the uploader: what was wrong and what to do, never a stack. */
export function failureMessage(error: unknown, fileName: string, id: string): string {
  if (
    error instanceof UnknownFormatError || error instanceof UnreadableFileError ||
    error instanceof GzipBombError
  ) {
    return error instanceof UnknownFormatError
      ? `Rounds cannot tell what kind of file ${fileName} is. It reads PDF, Word (.docx), web pages, ` +
        `Markdown, text, CSV, Parquet and the medical dataset formats listed on this page.`
      : error.message;
  }
  // The document's id, not its name: a file name can hold a patient's name.
  console.error(`ingest of uploaded document ${id} failed:`, error instanceof Error ? error.name : "error");
  return `${fileName} could not be added: something went wrong on our side. Try "Ingest again"; if it fails ` +
    `again, tell an administrator.`;
}

/** Uploaded documents waiting to be read by this instance, one at a time (an ingest uses a whole core). */
export interface DocumentQueue {
  /** Queues a document; one already queued here is not queued twice. */
  enqueue(id: string): void;
  /** Queues every document left queued or half-done (after a restart, or by an instance that stopped). */
  resume(): Promise<number>;
  /** Settles when nothing is queued (for tests and shutdown). */
  idle(): Promise<void>;
}

/** A queue whose ingests run as `run` runs work (the lifecycle's: a shutdown stops them, to resume later). */
export function createDocumentQueue(
  db: Db,
  embedder: Embedder,
  run: <T>(work: (signal: AbortSignal) => Promise<T>) => Promise<T>,
): DocumentQueue {
  const queued = new Set<string>();
  let chain: Promise<void> = Promise.resolve();
  const enqueue = (id: string) => {
    if (queued.has(id)) return;
    queued.add(id);
    chain = chain.then(async () => {
      try {
        await run((signal) => ingestDocument(db, embedder, id, { signal }));
      } catch (error) {
        console.error(`document ${id}: ingest stopped:`, error instanceof Error ? error.name : "error");
      } finally {
        queued.delete(id);
      }
    });
  };
  return {
    enqueue,
    async resume() {
      const ids = await documentsToResume(db);
      for (const id of ids) enqueue(id);
      return ids.length;
    },
    async idle() {
      let seen: Promise<void> | null = null;
      while (seen !== chain) {
        seen = chain;
        await chain;
      }
    },
  };
}
