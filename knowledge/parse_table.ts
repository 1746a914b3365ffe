/**
 * Tables as snippets: CSV/TSV (streamed, RFC 4180 quoting) and Parquet (how the Hugging Face Hub serves
 * datasets). One snippet per row; which columns hold the question, answer, title and id comes from a mapping,
 * or from the header when the names are the usual ones (`input`/`output`, `question`/`answer`, `long_answer`…).
 */
import type { ColumnMapping, ParseEvent, ParseOptions, SnippetDraft } from "./records.ts";
import { buildSnippets, cleanText, recordEvent, RecordSkip, sourceNameFor } from "./snippets.ts";
import { decodeText, MAX_RECORD_CHARS } from "./text_stream.ts";
import { readAll, titleFromFileName, UnreadableFileError } from "./parse_document.ts";
import { chatDoctorSource } from "./parse_qa.ts";

/** Header names tried for each part, in order, when the mapping does not name a column. */
const USUAL_NAMES: Record<keyof ColumnMapping, string[]> = {
  answer: [
    "answer",
    "output",
    "response",
    "answer_icliniq",
    "long_answer",
    "doctor",
    "doctor_answer",
    "reply",
    "text",
    "content",
    "body",
    "passage",
  ],
  question: ["question", "input", "patient", "query", "prompt", "patient_question", "user", "utterance"],
  title: ["title", "description", "topic", "focus", "heading", "subject"],
  id: ["id", "qid", "pmid", "pubid", "uid", "doc_id", "row_id", "question_id"],
};

/** The columns of a table could not be matched to a question and an answer. */
export class ColumnMappingError extends UnreadableFileError {
  constructor(fileName: string, detail: string, readonly columns: string[]) {
    super(
      `${fileName}: ${detail}. Its columns are ${columns.map((c) => `"${c}"`).join(", ") || "(none)"}. ` +
        `Name the answer column (and the question column, if any) on the upload form, or with ` +
        `--answer-column and --question-column.`,
    );
    this.name = "ColumnMappingError";
  }
}

function normalised(name: string): string {
  return name.trim().toLowerCase().replace(/[\s-]+/g, "_");
}

/** Column positions for each part, from the mapping or the usual names. */
export function mapColumns(
  header: string[],
  mapping: ColumnMapping | undefined,
  fileName: string,
): Partial<Record<keyof ColumnMapping, number>> {
  const names = header.map(normalised);
  const found: Partial<Record<keyof ColumnMapping, number>> = {};
  for (const part of ["answer", "question", "title", "id"] as const) {
    const wanted = mapping?.[part]?.trim();
    if (wanted) {
      const at = names.indexOf(normalised(wanted));
      if (at < 0) throw new ColumnMappingError(fileName, `there is no column "${wanted}"`, header);
      found[part] = at;
      continue;
    }
    const taken = new Set(Object.values(found));
    const at = USUAL_NAMES[part].map((n) => names.indexOf(n)).find((i) => i >= 0 && !taken.has(i));
    if (at !== undefined) found[part] = at;
  }
  if (found.answer === undefined) {
    throw new ColumnMappingError(fileName, "no column looks like the answers", header);
  }
  return found;
}

/** The snippets of one row. */
function rowSnippets(
  cells: (string | null)[],
  columns: Partial<Record<keyof ColumnMapping, number>>,
  rowNumber: number,
  source: string,
  options: ParseOptions,
): SnippetDraft[] {
  const cell = (part: keyof ColumnMapping) => {
    const at = columns[part];
    return at === undefined ? null : cleanText(cells[at] ?? "") || null;
  };
  const answer = cell("answer");
  if (!answer) throw new RecordSkip("empty answer");
  const question = cell("question");
  return buildSnippets({
    source,
    sourceId: cell("id")?.slice(0, 120) ?? String(rowNumber),
    url: null,
    specialty: options.specialty ?? null,
    title: cell("title"),
    question,
    answer,
    questionLabel: question ? "Question" : null,
    answerLabel: question ? "Answer" : null,
  });
}

function tableSource(options: ParseOptions): string {
  const known = chatDoctorSource(options.fileName);
  return sourceNameFor(options, known !== "ChatDoctor" ? known : titleFromFileName(options.fileName));
}

/** CSV or TSV with a header row: one record per row (the header is not one). */
export async function* parseCsv(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const source = tableSource(options);
  const tab = /\.tsv(\.gz)?$/i.test(options.fileName);
  let header: string[] | null = null;
  let columns: Partial<Record<keyof ColumnMapping, number>> = {};
  let index = 0;
  for await (const row of csvRows(decodeText(stream), tab ? "\t" : null)) {
    if (!header) {
      if (!row.cells) throw new ColumnMappingError(options.fileName, "its header row is too long", []);
      if (row.cells.every((c) => !c.trim())) continue;
      header = row.cells.map((c) => c.trim());
      columns = mapColumns(header, options.columns, options.fileName);
      continue;
    }
    const cells = row.cells;
    if (cells && cells.every((c) => !c.trim())) continue;
    const current = index++;
    const location = `${options.fileName}:${row.line}`;
    if (!cells) {
      yield {
        kind: "skip",
        index: current,
        location,
        reason: `row is larger than ${MAX_RECORD_CHARS / (1024 * 1024)} MB`,
      };
      continue;
    }
    yield recordEvent(current, location, () => rowSnippets(cells, columns, row.line, source, options));
  }
  if (!header) throw new ColumnMappingError(options.fileName, "the file is empty", []);
}

/** A CSV row: its cells (null when the row was too long to keep) and the line it starts on. */
interface CsvRow {
  line: number;
  cells: string[] | null;
}

/**
 * Splits CSV text into rows: quoted fields may hold delimiters, quotes ("") and line breaks. The delimiter is
 * `,`, `;` or a tab, whichever the first line has most of, unless given.
 */
export async function* csvRows(text: AsyncIterable<string>, given: string | null): AsyncGenerator<CsvRow> {
  let delimiter = given;
  let cells: string[] = [];
  let field = "";
  let quoted = false;
  let maybeClosed = false; // a quote inside a quoted field: its end, unless another quote follows
  let line = 1;
  let rowLine = 1;
  let size = 0;
  let oversized = false;
  let pendingCr = false;
  const rows: CsvRow[] = [];
  const endRow = () => {
    cells.push(field);
    rows.push({ line: rowLine, cells: oversized ? null : cells });
    cells = [];
    field = "";
    size = 0;
    oversized = false;
  };
  const feed = (input: string) => {
    for (let at = 0; at < input.length; at++) {
      const ch = input[at];
      if (pendingCr) {
        pendingCr = false;
        if (ch === "\n") continue;
      }
      if (++size > MAX_RECORD_CHARS) {
        oversized = true;
        cells = [];
        field = "";
      }
      if (quoted) {
        if (ch === '"') {
          quoted = false;
          maybeClosed = true;
        } else {
          if (ch === "\n") line++;
          if (!oversized) field += ch;
        }
        continue;
      }
      if (maybeClosed) {
        maybeClosed = false;
        if (ch === '"') {
          if (!oversized) field += '"';
          quoted = true;
          continue;
        }
      }
      if (ch === '"' && field === "") quoted = true;
      else if (ch === delimiter) {
        if (!oversized) cells.push(field);
        field = "";
      } else if (ch === "\n" || ch === "\r") {
        endRow();
        line++;
        rowLine = line;
        if (ch === "\r") pendingCr = true;
      } else if (!oversized) field += ch;
    }
  };
  let head = "";
  for await (const chunk of text) {
    if (!delimiter) {
      head += chunk;
      const end = head.search(/\r|\n/);
      if (end < 0 && head.length < 65_536) continue;
      delimiter = guessDelimiter(end < 0 ? head : head.slice(0, end));
      feed(head);
      head = "";
    } else feed(chunk);
    if (rows.length) {
      yield* rows;
      rows.length = 0;
    }
  }
  if (!delimiter) {
    delimiter = guessDelimiter(head);
    feed(head);
  }
  if (field || cells.length) endRow();
  yield* rows;
}

/** `,`, `;` or a tab: whichever the header line has most of (a comma when it has none). */
function guessDelimiter(headerLine: string): string {
  const count = (d: string) => headerLine.split(d).length - 1;
  const best = [",", ";", "\t"].sort((a, b) => count(b) - count(a))[0];
  return count(best) > 0 ? best : ",";
}

/** Most data a Parquet file's footer may say it unpacks to. */
const MAX_PARQUET_UNPACKED_BYTES = 1024 * 1024 * 1024;

/** Parquet: the rows of every row group, read a group at a time, mapped as CSV columns are. */
export async function* parseParquet(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const bytes = await readAll(stream, options.fileName, "Parquet");
  const { parquetMetadata, parquetSchema, parquetReadObjects } = await import("hyparquet");
  const { compressors } = await import("hyparquet-compressors");
  const file = bytes.buffer;
  let metadata;
  try {
    metadata = parquetMetadata(file);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UnreadableFileError(
      `${options.fileName} could not be read as Parquet (${reason.slice(0, 200)}).`,
    );
  }
  // A footer that claims more than the file could hold would have the reader allocate for it.
  const claimedRows = Number(metadata.num_rows);
  const unpacked = metadata.row_groups.flatMap((group) => group.columns)
    .reduce((sum, column) => sum + Number(column.meta_data?.total_uncompressed_size ?? 0), 0);
  if (claimedRows > bytes.byteLength * 100 || unpacked > MAX_PARQUET_UNPACKED_BYTES) {
    throw new UnreadableFileError(
      `${options.fileName} claims ${claimedRows.toLocaleString("en")} rows and ${
        Math.round(unpacked / (1024 * 1024))
      } MB of data in a ${Math.round(bytes.byteLength / 1024)} KB file: not a table Rounds can read.`,
    );
  }
  const header = parquetSchema(metadata).children.map((child) => child.element.name);
  const columns = mapColumns(header, options.columns, options.fileName);
  const wanted = [...new Set(Object.values(columns))].map((i) => header[i]);
  const source = tableSource(options);
  const total = Number(metadata.num_rows);
  const step = 1000;
  for (let start = 0; start < total; start += step) {
    const rows = await parquetReadObjects({
      file,
      metadata,
      columns: wanted,
      rowStart: start,
      rowEnd: Math.min(total, start + step),
      compressors,
    });
    for (const [k, row] of rows.entries()) {
      const current = start + k;
      const cells = header.map((name) => cellText(row[name]));
      yield recordEvent(
        current,
        `${options.fileName} row ${current + 1}`,
        () => rowSnippets(cells, columns, current + 1, source, options),
      );
    }
  }
}

/** A Parquet value as text: strings as they are, numbers as written; lists and structs are not cell text. */
function cellText(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join("\n");
  return null;
}
