/**
 * What dataset parsers produce: snippet drafts grouped by the record they came from, or a skipped record with
 * its location and reason. Parsers stream; the ingest task turns drafts into stored, embedded snippets.
 */

/** The dataset formats `deno task ingest` reads (shapes in ../shared/REFERENCE.md §4). */
export const FORMATS = [
  "meddialog-raw",
  "meddialog-json",
  "hf-medical-dialog",
  "chatdoctor",
  "mashqa",
  "pubmed",
  "medquad",
  "pubmedqa",
  "csv",
  "parquet",
  "pdf",
  "docx",
  "html",
  "markdown",
  "text",
] as const;
/** A dataset format name, as accepted by `--format`. */
export type FormatName = typeof FORMATS[number];

/** One retrievable passage before it is hashed, embedded and stored. */
export interface SnippetDraft {
  /** Dataset name shown to users: "MedDialog", "HealthCareMagic", "iCliniq", "MASHQA", "PubMed" (or --source-name). */
  source: string;
  /** Stable id within the source: "12#2" (dialogue 12, exchange 2), "qa-17", "PMID:123#BACKGROUND", "…#2" chunks. */
  sourceId: string;
  /** Link to the original, when the record has one (dialogue URL, https://pubmed.ncbi.nlm.nih.gov/<pmid>/). */
  url: string | null;
  /** Specialty when the record or the ingest options say; null when unknown. */
  specialty: string | null;
  /** Dialogue description, article title or MASHQA question. */
  title: string | null;
  /** The patient's question (or MASHQA question) when the snippet is an exchange; null for literature. */
  question: string | null;
  /** The doctor's answer, the answer sentences, or the abstract section text. */
  answer: string;
  /** The full text shown and indexed: title, question and answer composed. */
  text: string;
  /** The page of a paginated document (PDF) the passage is on, counted from 1. */
  page?: number | null;
}

/** What a parser yields for each record: its snippets, or why it was skipped. */
export type ParseEvent =
  | { kind: "record"; index: number; location: string; snippets: SnippetDraft[] }
  | { kind: "skip"; index: number; location: string; reason: string };

/** Options every parser takes. */
export interface ParseOptions {
  /** Path shown in locations and used for source hints ("healthcaremagic", "icliniq" in the name). */
  fileName: string;
  /** Overrides the source name the format would give. */
  sourceName?: string;
  /** Specialty for every snippet of the file when the records carry none. */
  specialty?: string;
  /** For CSV and Parquet: which columns hold what (found from the header when not given). */
  columns?: ColumnMapping;
  /** For documents: the title snippets are cited by (default: the document's own title, else the file name). */
  title?: string;
}

/** Which table columns hold a record's parts, by header name. */
export interface ColumnMapping {
  question?: string;
  answer?: string;
  title?: string;
  id?: string;
}

/** A file that cannot be ingested, with a message that says what to do (for the uploader or the CLI). */
export class UnreadableFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnreadableFileError";
  }
}
