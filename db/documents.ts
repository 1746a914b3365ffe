/**
 * Uploaded documents: the stored file (kept for re-ingest), its ingest status and counts, and the claim an
 * instance holds while it ingests one (a heartbeat; a stale one lets another instance resume the work).
 */
import { and, desc, eq, isNull, lt, or, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { documents, type SkippedRecordNote, snippets, users } from "./schema.ts";
import { isUuid } from "./ids.ts";
import { rows } from "./migrate.ts";
import { adjustSearchTerms, recountSearchTotal } from "./snippets.ts";

/** A document as listed and shown: everything but its bytes. */
export type DocumentRow = Omit<typeof documents.$inferSelect, "data"> & {
  uploaderEmail: string | null;
  /** Snippets of it in the knowledge base now (counted for one document's page; null in the list). */
  snippetCount: number | null;
};

/** How long an ingest may go without a heartbeat before another instance takes it over. */
export const STALE_INGEST_MS = 60_000;

const COLUMNS = {
  id: documents.id,
  fileName: documents.fileName,
  title: documents.title,
  format: documents.format,
  source: documents.source,
  specialty: documents.specialty,
  columns: documents.columns,
  sizeBytes: documents.sizeBytes,
  sha256: documents.sha256,
  uploadedBy: documents.uploadedBy,
  status: documents.status,
  generation: documents.generation,
  attempts: documents.attempts,
  bytesRead: documents.bytesRead,
  records: documents.records,
  added: documents.added,
  duplicates: documents.duplicates,
  skipped: documents.skipped,
  skippedNotes: documents.skippedNotes,
  error: documents.error,
  heartbeatAt: documents.heartbeatAt,
  ingestedAt: documents.ingestedAt,
  createdAt: documents.createdAt,
  updatedAt: documents.updatedAt,
  uploaderEmail: users.email,
  snippetCount: sql<
    number
  >`(select count(*)::int from ${snippets} where ${snippets.documentId} = ${documents.id})`,
};

/** What an upload stores. */
export interface NewDocument {
  fileName: string;
  title: string | null;
  format: string;
  source: string;
  specialty: string | null;
  columns: Record<string, string> | null;
  sha256: string;
  data: Uint8Array;
  uploadedBy: string;
}

/** Stores an upload, queued for ingest; null when the same bytes are already stored (see {@link findBySha256}). */
export async function createDocument(db: Db, input: NewDocument): Promise<string | null> {
  const [row] = await db.insert(documents).values({ ...input, sizeBytes: input.data.byteLength })
    .onConflictDoNothing({ target: documents.sha256 }).returning({ id: documents.id });
  return row?.id ?? null;
}

/** The document with these bytes, if one is stored. */
export async function findBySha256(db: Db, sha256: string): Promise<{ id: string; fileName: string } | null> {
  const [row] = await db.select({ id: documents.id, fileName: documents.fileName }).from(documents)
    .where(eq(documents.sha256, sha256));
  return row ?? null;
}

/** Every document, newest first (without counting snippets: the list is polled while documents are read). */
export async function listDocuments(db: Db): Promise<DocumentRow[]> {
  const found = await db.select(COLUMNS).from(documents).leftJoin(users, eq(users.id, documents.uploadedBy))
    .orderBy(desc(documents.createdAt));
  return found.map((row) => ({ ...row, snippetCount: null }));
}

/** One document without its bytes, or null. */
export async function getDocument(db: Db, id: string): Promise<DocumentRow | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.select({
    ...COLUMNS,
    snippetCount: sql<
      number
    >`(select count(*)::int from ${snippets} where ${snippets.documentId} = ${documents.id})`,
  }).from(documents).leftJoin(users, eq(users.id, documents.uploadedBy)).where(eq(documents.id, id));
  return row ?? null;
}

/** One document as its progress shows it (without counting its snippets), or null. */
export async function documentStatus(db: Db, id: string): Promise<DocumentRow | null> {
  const [row] = await db.select(COLUMNS).from(documents).leftJoin(users, eq(users.id, documents.uploadedBy))
    .where(eq(documents.id, id));
  return row ? { ...row, snippetCount: null } : null;
}

/** A document's stored bytes. */
export async function documentBytes(db: Db, id: string): Promise<Uint8Array<ArrayBuffer> | null> {
  const [row] = await db.select({ data: documents.data }).from(documents).where(eq(documents.id, id));
  return row ? new Uint8Array(row.data) : null;
}

/**
 * Claims a document for ingest: one that is queued, or ingesting under a heartbeat older than
 * {@link STALE_INGEST_MS} (its instance stopped). Returns the generation to ingest, or null when another
 * instance holds it (or it is done).
 */
export async function claimDocument(db: Db, id: string): Promise<{ generation: number } | null> {
  const [row] = await db.update(documents).set({
    status: "ingesting",
    attempts: sql`${documents.attempts} + 1`,
    heartbeatAt: sql`now()`,
    error: null,
    updatedAt: sql`now()`,
  }).where(and(eq(documents.id, id), lt(documents.attempts, MAX_ATTEMPTS), waiting())).returning({
    generation: documents.generation,
  });
  return row ?? null;
}

/** Times an instance may take a document up before it is set aside as failed (a file that stops its instance). */
export const MAX_ATTEMPTS = 3;

/** Queued, or left ingesting by an instance whose heartbeat went stale. */
function waiting(): SQL {
  return or(
    eq(documents.status, "queued"),
    and(
      eq(documents.status, "ingesting"),
      or(
        isNull(documents.heartbeatAt),
        lt(documents.heartbeatAt, sql`now() - make_interval(secs => ${STALE_INGEST_MS / 1000})`),
      ),
    ),
  )!;
}

/** Documents waiting for an instance: queued, or left ingesting by one that stopped. */
export async function documentsToResume(db: Db): Promise<string[]> {
  // One taken up MAX_ATTEMPTS times that never finished stopped its instance each time: set aside, not retried.
  await db.update(documents).set({
    status: "failed",
    error: `Reading this file stopped the server ${MAX_ATTEMPTS} times, so it was set aside. Delete it, or ` +
      `upload a smaller or different copy.`,
    heartbeatAt: null,
    updatedAt: sql`now()`,
  }).where(and(sql`${documents.attempts} >= ${MAX_ATTEMPTS}`, waiting()));
  const found = await db.select({ id: documents.id }).from(documents).where(waiting())
    .orderBy(documents.createdAt);
  return found.map((r) => r.id);
}

/** Progress of the ingest (also its heartbeat). */
export async function recordDocumentProgress(
  db: Db,
  id: string,
  generation: number,
  counts: {
    bytesRead: number;
    records: number;
    added: number;
    duplicates: number;
    skipped: number;
    skippedNotes: SkippedRecordNote[];
  },
): Promise<void> {
  await db.update(documents).set({ ...counts, heartbeatAt: sql`now()`, updatedAt: sql`now()` })
    .where(
      and(eq(documents.id, id), eq(documents.generation, generation), eq(documents.status, "ingesting")),
    );
}

/**
 * The ingest's end: ready (its terms counted in the full-text statistics in the same transaction) or failed
 * with a reason in words. Only for the generation claimed: false when the document was re-queued, deleted or
 * taken over meanwhile.
 */
export async function finishDocument(
  db: Db,
  id: string,
  generation: number,
  outcome:
    | { ok: true; format: string; title: string | null; source: string }
    | { ok: false; error: string; format?: string },
): Promise<boolean> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.update(documents).set(
      outcome.ok
        ? {
          status: "ready",
          format: outcome.format,
          title: outcome.title,
          source: outcome.source,
          error: null,
          heartbeatAt: null,
          ingestedAt: sql`now()`,
          updatedAt: sql`now()`,
        }
        : {
          status: "failed",
          error: outcome.error,
          ...(outcome.format ? { format: outcome.format } : {}),
          heartbeatAt: null,
          updatedAt: sql`now()`,
        },
    ).where(
      and(eq(documents.id, id), eq(documents.generation, generation), eq(documents.status, "ingesting")),
    )
      .returning({ id: documents.id });
    if (!row) return false;
    if (outcome.ok) await adjustSearchTerms(tx, id, 1);
    return true;
  });
}

/** Its status, locked for the transaction (so terms are subtracted only from a document that added them). */
async function lockedStatus(tx: Pick<Db, "execute">, id: string): Promise<string | null> {
  const [row] = rows<{ status: string }>(
    await tx.execute(sql`select status from ${documents} where ${documents.id} = ${id} for update`),
  );
  return row?.status ?? null;
}

/**
 * Queues a document to be ingested again: its snippets are removed, its counts reset, and the generation
 * moves on (a fresh ingest run). Returns false when it is being ingested now.
 */
export async function requeueDocument(db: Db, id: string): Promise<boolean> {
  return await db.transaction(async (tx) => {
    const before = await lockedStatus(tx, id);
    const [row] = await tx.update(documents).set(queuedAgain()).where(and(
      eq(documents.id, id),
      or(
        sql`${documents.status} in ('ready', 'failed')`,
        and(
          eq(documents.status, "ingesting"),
          lt(documents.heartbeatAt, sql`now() - make_interval(secs => ${STALE_INGEST_MS / 1000})`),
        ),
      ),
    )).returning({ id: documents.id });
    if (!row) return false;
    if (before === "ready") await adjustSearchTerms(tx, id, -1);
    await tx.delete(snippets).where(eq(snippets.documentId, id));
    await recountSearchTotal(tx);
    return true;
  });
}

/** A document queued to be read afresh: a new generation (a new ingest run), its attempts and counts at zero. */
function queuedAgain() {
  return {
    status: "queued" as const,
    generation: sql`${documents.generation} + 1`,
    attempts: 0,
    bytesRead: 0,
    records: 0,
    added: 0,
    duplicates: 0,
    skipped: 0,
    skippedNotes: [],
    error: null,
    heartbeatAt: null,
    updatedAt: sql`now()`,
  };
}

/** Deletes a document and its snippets; replies that cited them keep saying a source was removed. */
export async function deleteDocument(
  db: Db,
  id: string,
): Promise<{ fileName: string; snippets: number } | null> {
  if (!isUuid(id)) return null;
  return await db.transaction(async (tx) => {
    if (await lockedStatus(tx, id) === "ready") await adjustSearchTerms(tx, id, -1);
    const gone = await tx.delete(snippets).where(eq(snippets.documentId, id)).returning({ id: snippets.id });
    const [row] = await tx.delete(documents).where(eq(documents.id, id)).returning({
      fileName: documents.fileName,
    });
    await recountSearchTotal(tx);
    return row ? { fileName: row.fileName, snippets: gone.length } : null;
  });
}

/**
 * A failed document uploaded again (the same bytes), with the options of the new upload (a column mapping
 * the first lacked, say): queued to be read again. False when it is not a failed one.
 */
export async function retryFailedDocument(
  db: Db,
  id: string,
  options: Pick<NewDocument, "fileName" | "title" | "source" | "specialty" | "columns" | "uploadedBy">,
): Promise<boolean> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.update(documents).set({ ...options, ...queuedAgain() })
      .where(and(eq(documents.id, id), eq(documents.status, "failed"))).returning({ id: documents.id });
    if (!row) return false;
    // A failed ingest never added its terms to the statistics: only its stored snippets go.
    await tx.delete(snippets).where(eq(snippets.documentId, id));
    await recountSearchTotal(tx);
    return true;
  });
}
