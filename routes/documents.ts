/**
 * Knowledge → Documents: uploads (PDF, Word, web pages, Markdown, text, tables and the dataset formats) into
 * the knowledge base through the ingest pipeline, with a live progress bar; a document's page; re-ingest and
 * delete. Uploading is for administrators (and educators when UPLOADERS=educators); everyone signed in can see
 * what is there. An upload's body is read only after its sender is known to be allowed to upload.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { createHash } from "node:crypto";
import type { Db } from "../db/client.ts";
import {
  createDocument,
  deleteDocument,
  type DocumentRow,
  documentStatus,
  findBySha256,
  getDocument,
  listDocuments,
  requeueDocument,
  retryFailedDocument,
} from "../db/documents.ts";
import { findSignedIn } from "../db/sign_ins.ts";
import type { UserRole } from "../db/schema.ts";
import type { DocumentQueue } from "../knowledge/documents.ts";
import { DETECT_HEAD_BYTES, detectFormat } from "../knowledge/parsers.ts";
import { cleanText } from "../knowledge/snippets.ts";
import {
  documentListFragment,
  type DocumentNotice,
  documentPage,
  documentProgressFragment,
  documentsPage,
  documentsPanelFragment,
  type DocumentsView,
  EMPTY_UPLOAD_FORM,
  type UploadFormValues,
} from "../views/documents.tsx";
import type { PageContext } from "../views/page.ts";
import {
  checkOrigin,
  revocableStream,
  SESSION_COOKIE,
  signedInUser,
  signInIdOf,
  type StreamGuard,
} from "./auth.ts";
import type { Guards } from "./guards.ts";
import { bodyDeadline } from "./hygiene.ts";
import { sseResponse } from "./sse.ts";

/** Where uploads are posted: the one path whose body may be larger than MAX_BODY_BYTES. */
export const UPLOAD_PATH = "/knowledge/documents";

/** Room for the form's other fields and the multipart framing, beside the files. */
const FORM_OVERHEAD_BYTES = 64 * 1024;
/** An upload may take this long to arrive (a 50 MB file over a slow clinic line), with 30 s pauses at most. */
const UPLOAD_TOTAL_MS = 15 * 60_000;
const UPLOAD_IDLE_MS = 30_000;
/** Files one upload may carry (together at most UPLOAD_MAX_MB). */
const MAX_FILES = 20;
/** Uploads one instance receives at once. */
const MAX_UPLOADS_RECEIVING = 2;
/** How often a document's progress stream looks at its row, and the list's stream at the list. */
const PROGRESS_POLL_MS = 500;
const LIST_POLL_MS = 1000;
/** Longest a progress stream lives. */
const STREAM_MAX_MS = 15 * 60_000;

/** What the document routes need. */
export interface DocumentDeps {
  db: Db;
  queue: DocumentQueue;
  guards: Guards;
  guard: StreamGuard;
  pageContext: (c: Context, path?: string) => PageContext;
  maxBytes: number;
  uploaders: "admins" | "educators";
}

/** The roles that may upload, re-ingest and delete, for a setting of UPLOADERS. */
export function uploaderRoles(uploaders: "admins" | "educators"): readonly UserRole[] {
  return uploaders === "educators" ? ["admin", "educator"] : ["admin"];
}

function managersInWords(uploaders: "admins" | "educators"): string {
  return uploaders === "educators" ? "educators and administrators" : "administrators";
}

/**
 * Runs before the app reads any body: an upload from someone not signed in, or not allowed to upload, is refused
 * without reading it; an allowed one is read within the upload limits (instead of the usual 256 KB).
 */
export function admitUploads(deps: {
  db: Db;
  sessionIdleMs: number;
  trustProxy: number;
  maxBytes: number;
  uploaders: "admins" | "educators";
}): MiddlewareHandler {
  const roles = uploaderRoles(deps.uploaders);
  const sameSite = checkOrigin(deps.trustProxy);
  const read = bodyDeadline({
    maxBytes: deps.maxBytes + FORM_OVERHEAD_BYTES,
    idleMs: UPLOAD_IDLE_MS,
    totalMs: UPLOAD_TOTAL_MS,
    tooLarge: () => {
      throw new HTTPException(413, { message: tooLargeMessage(deps.maxBytes) });
    },
  });
  let receiving = 0;
  return async (c, next) => {
    if (c.req.method !== "POST" || c.req.path !== UPLOAD_PATH) return await next();
    // Another site's page (or a sibling subdomain's) cannot make a signed-in browser send a large body.
    await sameSite(c, async () => {
      const token = getCookie(c, SESSION_COOKIE);
      const signedIn = token && token.length <= 100
        ? await findSignedIn(deps.db, await signInIdOf(token), deps.sessionIdleMs)
        : null;
      if (!signedIn) {
        throw new HTTPException(401, {
          message: "Your session has ended. Sign in again, then upload the file again.",
        });
      }
      if (!roles.includes(signedIn.user.role)) {
        throw new HTTPException(403, {
          message: `Only ${managersInWords(deps.uploaders)} can add documents. Ask one to upload it.`,
        });
      }
      // Each upload is held in memory while it arrives and is stored: a few at a time per instance.
      if (receiving >= MAX_UPLOADS_RECEIVING) {
        throw new HTTPException(503, {
          message: "Rounds is receiving other uploads right now. Nothing was saved; try again in a minute.",
        });
      }
      receiving++;
      try {
        await read(c, next);
      } finally {
        receiving--;
      }
    });
  };
}

function tooLargeMessage(maxBytes: number): string {
  return `This upload is larger than Rounds accepts (${
    Math.round(maxBytes / (1024 * 1024))
  } MB in all). Nothing was saved. Send the files one at a time, split a large one, or ask an administrator ` +
    `to raise UPLOAD_MAX_MB.`;
}

/** The document routes. */
export function documentRoutes(deps: DocumentDeps): Hono {
  const app = new Hono();
  const { db, guards } = deps;
  const managers = guards.role(uploaderRoles(deps.uploaders), managersInWords(deps.uploaders));
  const canManage = (c: Context) => uploaderRoles(deps.uploaders).includes(signedInUser(c).role);

  const view = async (
    c: Context,
    notices: DocumentNotice[] = [],
    form?: UploadFormValues,
  ): Promise<DocumentsView> => ({
    documents: await listDocuments(db),
    canManage: canManage(c),
    managers: managersInWords(deps.uploaders),
    maxBytes: deps.maxBytes,
    notices,
    form,
  });

  app.get("/knowledge/documents", async (c) => {
    const notices: DocumentNotice[] = [];
    if (c.req.query("deleted") === "1") {
      notices.push({ kind: "ok", text: "The document and its snippets were deleted." });
    }
    return c.html(documentsPage(deps.pageContext(c), await view(c, notices)));
  });

  app.post(UPLOAD_PATH, managers, async (c) => {
    const body = await c.req.parseBody({ all: true });
    const form = uploadFormValues(body);
    const files = ([] as unknown[]).concat(body.files ?? []).filter((f): f is File => f instanceof File);
    const htmx = c.req.header("hx-request") === "true";
    const refuse = async (status: 400 | 413 | 415 | 409 | 422, notices: DocumentNotice[]) => {
      if (htmx) return c.html(documentsPanelFragment(await view(c, notices, form)), status);
      return c.html(documentsPage(deps.pageContext(c), await view(c, notices, form)), status);
    };
    const named = files.filter((f) => f.name || f.size > 0);
    if (named.length === 0) {
      return await refuse(400, [{ kind: "error", text: "Choose a file to upload first." }]);
    }
    if (named.length > MAX_FILES) {
      return await refuse(413, [{
        kind: "error",
        text: `At most ${MAX_FILES} files at a time; this upload has ${named.length}. Nothing was saved.`,
      }]);
    }
    const notices: DocumentNotice[] = [];
    const added: string[] = [];
    /** Documents to read once the answer is ready. */
    const queued: string[] = [];
    let worst: 400 | 409 | 413 | 415 | null = null;
    for (const file of named) {
      const fileName = cleanText(file.name.split(/[\\/]/).pop() ?? "").slice(0, 200) || "upload";
      if (file.size === 0) {
        notices.push({ kind: "error", text: `${fileName} is empty: nothing to add.` });
        worst ??= 400;
        continue;
      }
      if (file.size > deps.maxBytes) {
        notices.push({ kind: "error", text: `${fileName}: ${tooLargeMessage(deps.maxBytes)}` });
        worst ??= 413;
        continue;
      }
      const bytes = new Uint8Array(await file.arrayBuffer());
      const gzip = bytes[0] === 0x1f && bytes[1] === 0x8b;
      const format = gzip
        ? null
        : detectFormat(new TextDecoder().decode(bytes.subarray(0, DETECT_HEAD_BYTES)), fileName);
      if (!gzip && !format) {
        notices.push({
          kind: "error",
          text:
            `Rounds cannot tell what kind of file ${fileName} is. It reads PDF, Word (.docx), web pages, ` +
            `Markdown, text (.txt), CSV, Parquet, and the ${datasetNames()} formats. Nothing was saved.`,
        });
        worst ??= 415;
        continue;
      }
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      const id = await createDocument(db, {
        fileName,
        title: files.length === 1 && form.title ? form.title : null,
        format: format ?? "unknown",
        source: form.source,
        specialty: form.specialty || null,
        columns: columnsOf(form),
        sha256,
        data: bytes,
        uploadedBy: signedInUser(c).id,
      });
      if (!id) {
        const existing = await findBySha256(db, sha256);
        const options = {
          fileName,
          title: files.length === 1 && form.title ? form.title : null,
          source: form.source,
          specialty: form.specialty || null,
          columns: columnsOf(form),
          uploadedBy: signedInUser(c).id,
        };
        if (existing && await retryFailedDocument(db, existing.id, options)) {
          // The same file again after it could not be read: read it again with this upload's settings.
          await guards.record(c, {
            action: "document.reingest",
            objectType: "document",
            objectId: existing.id,
            outcome: "202",
          });
          queued.push(existing.id);
          added.push(fileName);
          continue;
        }
        notices.push({
          kind: "error",
          text: `${fileName} is already in the knowledge base${
            existing && existing.fileName !== fileName ? ` (uploaded as ${existing.fileName})` : ""
          }: it was not added twice.`,
          link: existing ? { href: `/knowledge/documents/${existing.id}`, label: "Open it" } : undefined,
        });
        worst ??= 409;
        continue;
      }
      await guards.record(c, {
        action: "document.upload",
        objectType: "document",
        objectId: id,
        outcome: "202",
      });
      queued.push(id);
      added.push(fileName);
    }
    if (added.length > 0) {
      notices.unshift({
        kind: "ok",
        text:
          `${added.join(", ")} ${added.length === 1 ? "is" : "are"} being added: the progress shows below. ` +
          `You can leave this page; it goes on.`,
      });
    }
    if (added.length === 0 && worst) return await refuse(worst, notices);
    // The answer is read before reading starts, so it shows the new documents waiting with their progress bars:
    // on PGlite's one connection, reading a small file could otherwise finish before the list was read.
    const html = htmx
      ? documentsPanelFragment(await view(c, notices))
      : documentsPage(deps.pageContext(c), await view(c, notices));
    for (const id of queued) deps.queue.enqueue(id);
    return c.html(html, 202);
  });

  // The whole list as it changes, while any document is waiting or being read: one stream per page.
  app.get("/knowledge/documents/live", (c) => {
    const showUploader = canManage(c);
    return sseResponse(c.req.raw, async (sse) => {
      let n = 0;
      let last = "";
      const until = performance.now() + STREAM_MAX_MS;
      while (!sse.signal.aborted && performance.now() < until) {
        const documents = await listDocuments(db);
        const html = documentListFragment(documents, showUploader);
        if (html !== last) sse.send({ id: String(++n), data: html });
        last = html;
        if (!documents.some((d) => d.status === "queued" || d.status === "ingesting")) break;
        await new Promise((resolve) => setTimeout(resolve, LIST_POLL_MS));
      }
      if (!sse.signal.aborted) sse.send({ id: String(++n), data: "", event: "done" });
      sse.close();
    }, revocableStream(c, deps.guard));
  });

  const documentOf = async (c: Context): Promise<DocumentRow> => {
    const doc = await getDocument(db, c.req.param("id") ?? "");
    if (!doc) {
      throw new HTTPException(404, {
        message: "This document is not in the knowledge base. It may have been deleted.",
      });
    }
    return doc;
  };

  app.get("/knowledge/documents/:id", async (c) => {
    const doc = await documentOf(c);
    const notice: DocumentNotice | undefined = c.req.query("requeued")
      ? { kind: "ok", text: "The stored file is being read again; its snippets are replaced as it goes." }
      : undefined;
    return c.html(documentPage(deps.pageContext(c), { doc, canManage: canManage(c), notice }));
  });

  // The status as it changes, from the database (so it follows an ingest running on any instance); a stream
  // lives STREAM_MAX_MS at most (the page then shows how far it got, and a reload shows the rest).
  app.get("/knowledge/documents/:id/progress", async (c) => {
    const first = await documentOf(c);
    const showUploader = canManage(c);
    return sseResponse(c.req.raw, async (sse) => {
      let n = 0;
      let doc: DocumentRow | null = first;
      let last = "";
      const until = performance.now() + STREAM_MAX_MS;
      while (doc && !sse.signal.aborted && performance.now() < until) {
        const html = documentProgressFragment(doc, showUploader);
        if (html !== last) sse.send({ id: String(++n), data: html });
        last = html;
        if (doc.status === "ready" || doc.status === "failed") break;
        await new Promise((resolve) => setTimeout(resolve, PROGRESS_POLL_MS));
        doc = await documentStatus(db, doc.id);
      }
      if (!doc && !sse.signal.aborted) {
        sse.send({ id: String(++n), data: "<p>This document was deleted.</p>" });
      }
      if (!sse.signal.aborted) sse.send({ id: String(++n), data: "", event: "done" });
      sse.close();
    }, revocableStream(c, deps.guard));
  });

  app.post("/knowledge/documents/:id/reingest", managers, async (c) => {
    const doc = await documentOf(c);
    if (!(await requeueDocument(db, doc.id))) {
      throw new HTTPException(409, {
        message: "This document is being read now. Wait for it to finish, then ingest it again if needed.",
      });
    }
    await guards.record(c, { action: "document.reingest", objectType: "document", objectId: doc.id });
    deps.queue.enqueue(doc.id);
    return c.redirect(`/knowledge/documents/${doc.id}?requeued=1`, 303);
  });

  app.post("/knowledge/documents/:id/delete", managers, async (c) => {
    const doc = await documentOf(c);
    const body = await c.req.parseBody();
    if (body.confirm !== "yes") {
      throw new HTTPException(422, {
        message: "Tick the box to confirm the deletion; nothing was deleted.",
      });
    }
    const deleted = await deleteDocument(db, doc.id);
    await guards.record(c, {
      action: "document.delete",
      objectType: "document",
      objectId: doc.id,
      outcome: deleted ? `deleted ${deleted.snippets} snippets` : "404",
    });
    return c.redirect(`/knowledge/documents?deleted=1`, 303);
  });

  return app;
}

function text(value: unknown, max: number): string {
  return typeof value === "string" ? cleanText(value).slice(0, max) : "";
}

function uploadFormValues(body: Record<string, unknown>): UploadFormValues {
  const values = { ...EMPTY_UPLOAD_FORM };
  for (const key of Object.keys(values) as (keyof UploadFormValues)[]) {
    values[key] = text(body[key], key === "title" ? 200 : 100);
  }
  return values;
}

function columnsOf(form: UploadFormValues): Record<string, string> | null {
  const columns: Record<string, string> = {};
  if (form.answer_column) columns.answer = form.answer_column;
  if (form.question_column) columns.question = form.question_column;
  if (form.title_column) columns.title = form.title_column;
  if (form.id_column) columns.id = form.id_column;
  return Object.keys(columns).length ? columns : null;
}

function datasetNames(): string {
  const names = ["MedDialog", "HealthCareMagic", "iCliniq", "MASHQA", "MedQuAD", "PubMedQA", "PubMed XML"];
  return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}
