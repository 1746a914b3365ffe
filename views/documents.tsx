/**
 * Knowledge → Documents: the upload form, the list of uploaded files with their ingest status (a live
 * progress bar while one is read), and one document's page (counts, skipped records, re-ingest, delete).
 * File names, titles and skip reasons come from uploads: shown as escaped text only.
 */
import type { DocumentRow } from "../db/documents.ts";
import { CsrfField } from "./csrf.tsx";
import { renderPage } from "./layout.tsx";
import type { PageContext } from "./page.ts";

/** A message above the list after an upload, re-ingest or deletion. */
export interface DocumentNotice {
  kind: "ok" | "error";
  text: string;
  /** A document the notice is about (the copy already uploaded, say). */
  link?: { href: string; label: string };
}

/** What the documents page shows. */
export interface DocumentsView {
  documents: DocumentRow[];
  /** The signed-in user may upload, re-ingest and delete. */
  canManage: boolean;
  /** Who may, in words, for those who may not ("administrators"). */
  managers: string;
  maxBytes: number;
  notices: DocumentNotice[];
  /** The form's values after a refused upload. */
  form?: UploadFormValues;
}

/** What the upload form was given. */
export interface UploadFormValues {
  title: string;
  source: string;
  specialty: string;
  question_column: string;
  answer_column: string;
  title_column: string;
  id_column: string;
}

export const EMPTY_UPLOAD_FORM: UploadFormValues = {
  title: "",
  source: "",
  specialty: "",
  question_column: "",
  answer_column: "",
  title_column: "",
  id_column: "",
};

/** What the file picker offers (the ingest reads more, told by content; these are the usual names). */
const ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.txt,.csv,.tsv,.parquet,.json,.jsonl,.xml,.gz";

const FORMAT_NAMES: Record<string, string> = {
  pdf: "PDF",
  docx: "Word",
  html: "Web page",
  markdown: "Markdown",
  text: "Text",
  csv: "CSV",
  parquet: "Parquet",
  medquad: "MedQuAD",
  pubmedqa: "PubMedQA",
  chatdoctor: "ChatDoctor / iCliniq",
  mashqa: "MASHQA",
  pubmed: "PubMed XML",
  "meddialog-raw": "MedDialog text",
  "meddialog-json": "MedDialog JSON",
  "hf-medical-dialog": "medical_dialog",
};

/** GET /knowledge/documents */
export function documentsPage(page: PageContext, view: DocumentsView): string {
  return renderPage(
    page,
    "Documents · Knowledge base",
    <div class="documents">
      <nav class="breadcrumbs" aria-label="Breadcrumb">
        <a href="/knowledge">Knowledge base</a> › Documents
      </nav>
      <h1>Documents</h1>
      <p class="lead">
        A clinic's own material — guidelines, protocols, formularies — and question-and-answer datasets, added
        to the knowledge base from here. Answers cite a PDF by page ("Chest pain pathway, p. 12") and other
        documents by section. Uploaded text is quoted to the model as retrieved text, never as verified fact.
      </p>
      {view.canManage
        ? <UploadForm maxBytes={view.maxBytes} values={view.form ?? EMPTY_UPLOAD_FORM} />
        : <p class="notice">Only {view.managers} can add documents. Ask one to upload what you need.</p>}
      <div id="documents-panel">
        <DocumentsPanel view={view} />
      </div>
    </div>,
  );
}

/** The notices and the list: what an upload's htmx response swaps in. */
export function documentsPanelFragment(view: DocumentsView): string {
  return String(<DocumentsPanel view={view} />);
}

function DocumentsPanel(props: { view: DocumentsView }) {
  const { view } = props;
  return (
    <>
      <div id="upload-notices" role="status" aria-live="polite">
        {view.notices.map((n) => (
          <p
            class={`notice ${n.kind === "error" ? "error" : "ok"}`}
            role={n.kind === "error" ? "alert" : undefined}
          >
            {n.text}
            {n.link && (
              <>
                {" "}
                <a href={n.link.href}>{n.link.label}</a>
              </>
            )}
          </p>
        ))}
      </div>
      <section aria-labelledby="documents-heading">
        <h2 id="documents-heading">Uploaded ({view.documents.length})</h2>
        {view.documents.length === 0
          ? (
            <p class="empty">
              Nothing uploaded yet. {view.canManage
                ? "Choose a file above: a guideline PDF is a good first one."
                : `Documents ${view.managers} upload appear here.`}
            </p>
          )
          : (
            // One live stream for the whole list while anything is being read (a browser allows only a few
            // connections to one server over HTTP/1.1: one stream per document would stall the page).
            <div
              id="document-list"
              {...(view.documents.some(running)
                ? {
                  "hx-sse:connect": "/knowledge/documents/live",
                  "hx-swap": "innerHTML",
                  "hx-sse:close": "done",
                }
                : {})}
            >
              <DocumentList documents={view.documents} showUploader={view.canManage} />
            </div>
          )}
      </section>
    </>
  );
}

function running(doc: DocumentRow): boolean {
  return doc.status === "queued" || doc.status === "ingesting";
}

function DocumentList(props: { documents: DocumentRow[]; showUploader: boolean }) {
  return (
    <ul class="document-list">
      {props.documents.map((d) => <DocumentItem doc={d} showUploader={props.showUploader} />)}
    </ul>
  );
}

/** One message of the list's live stream: the list as it is now. */
export function documentListFragment(documents: DocumentRow[], showUploader: boolean): string {
  return String(<DocumentList documents={documents} showUploader={showUploader} />);
}

function UploadForm(props: { maxBytes: number; values: UploadFormValues }) {
  const v = props.values;
  const mb = Math.round(props.maxBytes / (1024 * 1024));
  return (
    <form
      id="upload-form"
      class="upload-form"
      method="post"
      action="/knowledge/documents"
      enctype="multipart/form-data"
      hx-post="/knowledge/documents"
      hx-target="#documents-panel"
      hx-swap="innerHTML"
      hx-disable="find button"
      {...{ "hx-status:4xx": "target:#documents-panel swap:innerHTML" }}
    >
      <CsrfField />
      <label class="wide">
        Files
        <input type="file" name="files" multiple required accept={ACCEPT} aria-describedby="files-help" />
      </label>
      <p id="files-help" class="muted wide">
        PDF, Word (.docx), web pages, Markdown, text, CSV or Parquet tables, and the MedDialog,
        HealthCareMagic, iCliniq, MASHQA, MedQuAD, PubMedQA and PubMed formats; up to {mb}{" "}
        MB each. A scanned PDF without a text layer adds nothing: its pages are listed as skipped.
      </p>
      <label>
        Title to cite (optional)
        <input name="title" maxlength={200} value={v.title} placeholder="default: the document's own title" />
      </label>
      <label>
        Source name (optional)
        <input
          name="source"
          maxlength={80}
          value={v.source}
          placeholder="default: from the file"
        />
      </label>
      <label>
        Specialty (optional)
        <input name="specialty" maxlength={80} value={v.specialty} placeholder="e.g. Cardiology" />
      </label>
      <details class="wide column-mapping" open={Boolean(v.answer_column || v.question_column) || undefined}>
        <summary>Columns of a CSV or Parquet table</summary>
        <p class="muted">
          Leave empty when the header says it (question, answer, input, output, long_answer, title, id…).
        </p>
        <div class="column-fields">
          <label>
            Answer column
            <input name="answer_column" maxlength={100} value={v.answer_column} />
          </label>
          <label>
            Question column
            <input name="question_column" maxlength={100} value={v.question_column} />
          </label>
          <label>
            Title column
            <input name="title_column" maxlength={100} value={v.title_column} />
          </label>
          <label>
            Id column
            <input name="id_column" maxlength={100} value={v.id_column} />
          </label>
        </div>
      </details>
      <button type="submit" class="wide">Upload and add to the knowledge base</button>
    </form>
  );
}

function DocumentItem(props: { doc: DocumentRow; showUploader: boolean }) {
  const d = props.doc;
  return (
    <li class="document-item" id={`doc-${d.id}`}>
      <div class="document-head">
        <a href={`/knowledge/documents/${d.id}`} class="document-name">{d.title ?? d.fileName}</a>
        <span class="muted">
          {" "}
          {d.title ? `${d.fileName} · ` : ""}
          {FORMAT_NAMES[d.format] ?? "detecting the format"} · {formatBytes(d.sizeBytes)}
        </span>
      </div>
      <div class="document-status">
        <ProgressBody doc={d} showUploader={props.showUploader} />
      </div>
    </li>
  );
}

function ProgressBody(props: { doc: DocumentRow; showUploader: boolean }) {
  const d = props.doc;
  if (d.status === "failed") {
    return <p class="status-failed" role="alert">Not added: {d.error ?? "the ingest failed."}</p>;
  }
  if (d.status === "ready") {
    return (
      <p class="status-ready">
        Added: {count(d.snippetCount ?? d.added, "snippet")} in the knowledge base
        {d.duplicates > 0 && `, ${count(d.duplicates, "passage")} already there`}
        {d.skipped > 0 && `, ${count(d.skipped, "part")} skipped`}
        {props.showUploader && d.uploaderEmail && (
          <span class="muted">{` · uploaded by ${d.uploaderEmail}`}</span>
        )}
      </p>
    );
  }
  const percent = d.sizeBytes > 0 ? Math.min(100, Math.round((d.bytesRead / d.sizeBytes) * 100)) : 0;
  return (
    <div class="status-running">
      <p>
        {d.status === "queued" ? "Waiting to be read…" : `Reading: ${percent}%`}
        {d.records > 0 && ` · ${count(d.records, "part")} read, ${count(d.added, "snippet")} added`}
      </p>
      <progress max={100} value={percent} aria-label={`Reading ${d.fileName}`}>{percent}%</progress>
    </div>
  );
}

/** One SSE message of a document's page: its status as it is now. */
export function documentProgressFragment(doc: DocumentRow, showUploader: boolean): string {
  return String(<ProgressBody doc={doc} showUploader={showUploader} />);
}

/** GET /knowledge/documents/:id */
export function documentPage(
  page: PageContext,
  props: { doc: DocumentRow; canManage: boolean; notice?: DocumentNotice },
): string {
  const d = props.doc;
  return renderPage(
    page,
    `${d.title ?? d.fileName} · Documents`,
    <div class="documents document-page">
      <nav class="breadcrumbs" aria-label="Breadcrumb">
        <a href="/knowledge">Knowledge base</a> › <a href="/knowledge/documents">Documents</a> ›{" "}
        {d.title ?? d.fileName}
      </nav>
      <h1>{d.title ?? d.fileName}</h1>
      {props.notice && (
        <p class={`notice ${props.notice.kind === "error" ? "error" : "ok"}`} role="status">
          {props.notice.text}
        </p>
      )}
      <div
        class="document-status"
        {...(running(d)
          ? {
            "hx-sse:connect": `/knowledge/documents/${d.id}/progress`,
            "hx-swap": "innerHTML",
            "hx-sse:close": "done",
          }
          : {})}
      >
        <ProgressBody doc={d} showUploader={props.canManage} />
      </div>
      <dl class="document-facts">
        <dt>File</dt>
        <dd>{d.fileName} ({formatBytes(d.sizeBytes)})</dd>
        <dt>Kind</dt>
        <dd>{FORMAT_NAMES[d.format] ?? "not yet known"}</dd>
        <dt>Source name</dt>
        <dd>{d.source || "from the file, once read"}</dd>
        {d.specialty && (
          <>
            <dt>Specialty</dt>
            <dd>{d.specialty}</dd>
          </>
        )}
        <dt>Uploaded</dt>
        <dd>
          <time datetime={d.createdAt.toISOString()}>
            {d.createdAt.toISOString().slice(0, 16).replace("T", " ")}
          </time>
          {" UTC"}
          {props.canManage && d.uploaderEmail && ` by ${d.uploaderEmail}`}
        </dd>
        <dt>In the knowledge base</dt>
        <dd>
          {count(d.snippetCount ?? d.added, "snippet")}{" "}
          {(d.snippetCount ?? d.added) > 0 && (
            <a href={`/knowledge?source=${encodeURIComponent(d.source)}`}>search this source</a>
          )}
        </dd>
      </dl>
      {d.skippedNotes.length > 0 && (
        <section aria-labelledby="skipped-heading">
          <h2 id="skipped-heading">Skipped ({d.skipped})</h2>
          <p class="muted">
            Parts that added nothing, with the reason{d.skipped > d.skippedNotes.length
              ? ` (the first ${d.skippedNotes.length} of ${d.skipped})`
              : ""}.
          </p>
          <ul class="skipped-list">
            {d.skippedNotes.map((n) => (
              <li>
                <span class="location">{n.location}</span>: {n.reason}
              </li>
            ))}
          </ul>
        </section>
      )}
      {props.canManage && (
        <section aria-labelledby="manage-heading" class="document-actions">
          <h2 id="manage-heading">Manage</h2>
          <form method="post" action={`/knowledge/documents/${d.id}/reingest`}>
            <CsrfField />
            <p class="muted">
              Reads the stored file again (after a parser update, or when it failed): its snippets are
              replaced.
            </p>
            <button type="submit" class="secondary" disabled={running(d) || undefined}>Ingest again</button>
          </form>
          <form method="post" action={`/knowledge/documents/${d.id}/delete`} class="danger-zone">
            <CsrfField />
            <label class="check">
              <input type="checkbox" name="confirm" value="yes" required /> Delete this document and its{" "}
              {count(d.snippetCount ?? d.added, "snippet")}. Replies that cited it will say the source was
              removed.
            </label>
            <button type="submit" class="danger">Delete</button>
          </form>
        </section>
      )}
    </div>,
  );
}

function count(n: number, noun: string): string {
  return `${n.toLocaleString("en")} ${noun}${n === 1 ? "" : "s"}`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
