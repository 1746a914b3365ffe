/**
 * Dataset files to parse events: one streaming parser per format, format detection from content, and
 * `parseFile`, which opens a file (gzipped or not), tells its format and hands back its events.
 */
import { basename } from "node:path";
import { parseHfMedicalDialog, parseMedDialogJson, parseMedDialogRaw } from "./parse_dialogue.ts";
import { parsePubmed } from "./parse_pubmed.ts";
import { parseChatDoctor, parseMashqa, parseMedquad, parsePubmedQa } from "./parse_qa.ts";
import { parseDocx, parseHtml, parseMarkdown, parsePdf, parsePlainText } from "./parse_document.ts";
import { parseCsv, parseParquet } from "./parse_table.ts";
import {
  type FormatName,
  FORMATS,
  type ParseEvent,
  type ParseOptions,
  UnreadableFileError,
} from "./records.ts";

/** A streaming parser: bytes in, one event per record out, in record order. */
export type FormatParser = (
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
) => AsyncIterable<ParseEvent>;

/** The parser for each format. */
export const PARSERS: Readonly<Record<FormatName, FormatParser>> = {
  "meddialog-raw": parseMedDialogRaw,
  "meddialog-json": parseMedDialogJson,
  "hf-medical-dialog": parseHfMedicalDialog,
  chatdoctor: parseChatDoctor,
  mashqa: parseMashqa,
  pubmed: parsePubmed,
  medquad: parseMedquad,
  pubmedqa: parsePubmedQa,
  csv: parseCsv,
  parquet: parseParquet,
  pdf: parsePdf,
  docx: parseDocx,
  html: parseHtml,
  markdown: parseMarkdown,
  text: parsePlainText,
};

/** A human label for each format, for progress lines and errors. */
export const FORMAT_LABELS: Readonly<Record<FormatName, string>> = {
  "meddialog-raw": "MedDialog raw text",
  "meddialog-json": "MedDialog processed JSON",
  "hf-medical-dialog": "Hugging Face medical_dialog (JSON Lines)",
  chatdoctor: "ChatDoctor JSON (HealthCareMagic, iCliniq)",
  mashqa: "MASHQA JSON",
  pubmed: "PubMed XML",
  medquad: "MedQuAD XML",
  pubmedqa: "PubMedQA JSON",
  csv: "CSV table",
  parquet: "Parquet table",
  pdf: "PDF document",
  docx: "Word document",
  html: "Web page (HTML)",
  markdown: "Markdown document",
  text: "Plain text document",
};

/** Formats that are a clinic's documents (cited by page or section) rather than question-and-answer datasets. */
export const DOCUMENT_FORMATS: ReadonlySet<FormatName> = new Set(["pdf", "docx", "html", "markdown", "text"]);

/** How much of a file's (decompressed) start `parseFile` reads to tell its format. */
export const DETECT_HEAD_BYTES = 64 * 1024;

/** Thrown by {@link parseFile} when a file's content matches none of the formats. */
export class UnknownFormatError extends Error {
  constructor(readonly fileName: string, readonly tried: readonly FormatName[] = FORMATS) {
    super(`Cannot tell the format of ${fileName}: it is not ${listWithOr(tried)} (use --format)`);
    this.name = "UnknownFormatError";
  }
}

/** Options for {@link parseFile}. */
export interface ParseFileOptions {
  /** Skip detection and parse as this format. */
  format?: FormatName;
  /** Overrides the source name the format would give. */
  sourceName?: string;
  /** Specialty for snippets whose record carries none. */
  specialty?: string;
  /** Name shown in locations and errors; default: the file's base name. */
  fileName?: string;
  /** For CSV and Parquet: which columns hold what. */
  columns?: ParseOptions["columns"];
  /** For documents: the title they are cited by. */
  title?: string;
  /** Most bytes the content may be (after gunzipping); past it the parse stops with UnreadableFileError. */
  maxBytes?: number;
  /** Called as the file is read with the bytes read so far (compressed bytes for a gzip file), for progress. */
  onBytes?: (bytesRead: number) => void;
}

/** Keys that mark a JSON record's format, whichever appears first in the file winning. */
const JSON_SIGNATURES: [RegExp, FormatName][] = [
  [/(?<!\\)"utterances"\s*:/, "meddialog-json"],
  [/(?<!\\)"dialogue_turns"\s*:/, "hf-medical-dialog"],
  [/(?<!\\)"(?:output|instruction|answer_icliniq)"\s*:/, "chatdoctor"],
];
const MASHQA_SIGNATURE = /(?<!\\)"data"\s*:\s*\[/;
const MASHQA_INNER = /(?<!\\)"(?:paragraphs|qas)"\s*:/;
const PUBMED_SIGNATURE =
  /<(?:PubmedArticleSet|PubmedArticle|PubmedBookArticle)[\s>]|<!DOCTYPE\s+PubmedArticleSet/;
const MEDQUAD_DOCUMENT = /<Document[\s>]/;
const MEDQUAD_PARTS = /<(?:QAPairs|QAPair|Focus)[\s>]/;
const HTML_SIGNATURE =
  /^(?:<\?xml[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title|h[1-6]|p|div|article|section|main|table|ul|ol)[\s>\/]/i;
const PUBMEDQA_SIGNATURE = /^\{\s*"\d+"\s*:\s*\{[\s\S]*?"QUESTION"\s*:/;
const NAME_HINT_MIN_CHARS = 16 * 1024;
const MEDDIALOG_HEADER = /^\s*(?:Description|Dialogue|Patient:|Doctor:)/im;

/** Tells a file's format from its first bytes (decoded); the name only breaks ties when the content cannot. */
export function detectFormat(head: string, fileName: string): FormatName | null {
  // Binary formats by their magic numbers (the head is decoded as UTF-8, which keeps ASCII bytes).
  if (head.startsWith("%PDF-")) return "pdf";
  if (head.startsWith("PAR1")) return "parquet";
  if (head.startsWith("PK\u0003\u0004")) return head.includes("word/") ? "docx" : null;
  const name = fileName.toLowerCase().replace(/\.gz$/, "");
  const text = head.replace(/^\ufeff/, "").trimStart();
  if (!text) return null;
  if (text.startsWith("<")) {
    if (PUBMED_SIGNATURE.test(text)) return "pubmed";
    if (MEDQUAD_DOCUMENT.test(text) && MEDQUAD_PARTS.test(text)) return "medquad";
    if (HTML_SIGNATURE.test(text) || /\.x?html?$/.test(name)) return "html";
    return /\.(md|markdown|txt)$/.test(name) ? byName(name) : null;
  }
  if (/^id=\S*[ \t]*\r?\n/.test(text) && MEDDIALOG_HEADER.test(text)) return "meddialog-raw";
  if (text.startsWith("[") || text.startsWith("{")) {
    if (text.startsWith("{") && MASHQA_SIGNATURE.test(text) && MASHQA_INNER.test(text)) return "mashqa";
    if (PUBMEDQA_SIGNATURE.test(text)) return "pubmedqa";
    let best: { at: number; format: FormatName } | null = null;
    for (const [pattern, format] of JSON_SIGNATURES) {
      const at = text.search(pattern);
      if (at >= 0 && (!best || at < best.at)) best = { at, format };
    }
    if (best) return best.format;
    // A first record longer than the head can hide its keys; only then does the name get a say.
    if (text.length >= NAME_HINT_MIN_CHARS && formatFromName(fileName)) return formatFromName(fileName);
  }
  // Tables and text documents have no signature of their own: their extension says what they are.
  return byName(name);
}

/** CSV, Markdown, plain text and HTML, by extension. */
function byName(name: string): FormatName | null {
  if (/\.(csv|tsv)$/.test(name)) return "csv";
  if (/\.(md|markdown)$/.test(name)) return "markdown";
  if (/\.(txt|text)$/.test(name)) return "text";
  if (/\.x?html?$/.test(name)) return "html";
  return null;
}

/** Opens a dataset file (gunzipping gzip content), detects its format unless given, and streams its parse events. */
export async function parseFile(
  path: string,
  options: ParseFileOptions = {},
): Promise<{ format: FormatName; events: AsyncIterable<ParseEvent> }> {
  const file = await Deno.open(path, { read: true });
  return await parseStream(file.readable, { ...options, fileName: options.fileName ?? basename(path) });
}

/** {@link parseFile} for bytes from anywhere (an upload): gunzips, detects the format unless given, parses. */
export async function parseStream(
  input: ReadableStream<Uint8Array>,
  options: ParseFileOptions & { fileName: string },
): Promise<{ format: FormatName; events: AsyncIterable<ParseEvent> }> {
  const fileName = options.fileName;
  let stream = input;
  if (options.onBytes) stream = stream.pipeThrough(countBytes(options.onBytes));
  try {
    const raw = await peek(stream, 2);
    stream = raw.stream;
    if (raw.head[0] === 0x1f && raw.head[1] === 0x8b) {
      // The decompressor hands back all that one input chunk expands to at once, and deflate expands up to
      // 1,032 times: fed whole 64 KB reads, 1 MB of gzipped blank space became 64 MB chunks and 1.1 GB of
      // memory. Fed 4 KB at a time, no chunk it makes exceeds about 4 MB.
      // DecompressionStream's writable side is typed BufferSource, a supertype of what flows here.
      const compressed = { bytes: 0 };
      stream = stream.pipeThrough(inPiecesOf(GZIP_INPUT_BYTES, compressed)).pipeThrough(
        new DecompressionStream("gzip") as ReadableWritablePair<Uint8Array, Uint8Array>,
      ).pipeThrough(expansionGuard(compressed, fileName));
    }
    if (options.maxBytes !== undefined) stream = stream.pipeThrough(sizeGuard(options.maxBytes, fileName));
    let format = options.format;
    if (!format) {
      const decoded = await peek(stream, DETECT_HEAD_BYTES);
      stream = decoded.stream;
      format = detectFormat(new TextDecoder().decode(decoded.head), fileName) ?? undefined;
      if (!format) throw new UnknownFormatError(fileName);
    }
    const parseOptions: ParseOptions = {
      fileName,
      sourceName: options.sourceName,
      specialty: options.specialty,
      columns: options.columns,
      title: options.title,
    };
    return { format, events: PARSERS[format](stream, parseOptions) };
  } catch (error) {
    await stream.cancel().catch(() => {});
    throw error;
  }
}

/** Reads at least `minBytes` from a stream (less at its end) and returns them with a stream that still has them. */
async function peek(
  stream: ReadableStream<Uint8Array>,
  minBytes: number,
): Promise<{ head: Uint8Array; stream: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size < minBytes) {
    const next = await reader.read();
    if (next.done) {
      ended = true;
      break;
    }
    chunks.push(next.value);
    size += next.value.byteLength;
  }
  const head = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    head.set(chunk, offset);
    offset += chunk.byteLength;
  }
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      if (ended) controller.close();
    },
    async pull(controller) {
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { head, stream: rest };
}

/** Compressed bytes fed to the decompressor at a time (see parseFile). */
const GZIP_INPUT_BYTES = 4096;

/** How many times its size a gzip file may grow: text datasets grow 3–20 times; a bomb, a thousand. */
export const MAX_GZIP_EXPANSION = 200;
/** Below this much unzipped text, no file is refused for how much it grew. */
const EXPANSION_FLOOR_BYTES = 64 * 1024 * 1024;

/** A gzip file that unzips to far more than any dataset would: refused before it fills memory or disk. */
export class GzipBombError extends Error {
  constructor(fileName: string, compressed: number, expanded: number) {
    super(
      `${fileName} grows more than ${MAX_GZIP_EXPANSION} times when unzipped (${
        (compressed / 1024).toFixed(0)
      } KB became over ${
        (expanded / (1024 * 1024)).toFixed(0)
      } MB): that is not a dataset. Check the file; ` +
        `nothing after this point was read.`,
    );
    this.name = "GzipBombError";
  }
}

/** Passes bytes through in pieces of at most `size` bytes, counting them. */
function inPiecesOf(size: number, counted: { bytes: number }): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      counted.bytes += chunk.byteLength;
      for (let at = 0; at < chunk.byteLength; at += size) controller.enqueue(chunk.subarray(at, at + size));
    },
  });
}

/** Stops a decompression that grows past MAX_GZIP_EXPANSION times the compressed bytes read so far. */
function expansionGuard(
  compressed: { bytes: number },
  fileName: string,
): TransformStream<Uint8Array, Uint8Array> {
  let expanded = 0;
  return new TransformStream({
    transform(chunk, controller) {
      expanded += chunk.byteLength;
      if (expanded > EXPANSION_FLOOR_BYTES && expanded > compressed.bytes * MAX_GZIP_EXPANSION) {
        throw new GzipBombError(fileName, compressed.bytes, expanded);
      }
      controller.enqueue(chunk);
    },
  });
}

/** Stops a stream that grows past `maxBytes`. */
function sizeGuard(maxBytes: number, fileName: string): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.byteLength;
      if (total > maxBytes) {
        throw new UnreadableFileError(
          `${fileName} is more than ${
            Math.round(maxBytes / (1024 * 1024))
          } MB once unzipped, more than Rounds ` +
            `reads from one upload. Split it, or load it with deno task ingest.`,
        );
      }
      controller.enqueue(chunk);
    },
  });
}

/** Passes bytes through, reporting the running total. */
function countBytes(onBytes: (bytesRead: number) => void): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.byteLength;
      onBytes(total);
      controller.enqueue(chunk);
    },
  });
}

/** A format hinted by the file name, for JSON whose first record is too long to show its keys in the head. */
function formatFromName(fileName: string): FormatName | null {
  const name = fileName.toLowerCase();
  if (/icliniq|healthcaremagic|chatdoctor/.test(name)) return "chatdoctor";
  if (name.includes("mashqa")) return "mashqa";
  if (name.includes("medical_dialog")) return "hf-medical-dialog";
  if (name.includes("meddialog")) return "meddialog-json";
  return null;
}

function listWithOr(items: readonly string[]): string {
  return items.length <= 1
    ? items.join("")
    : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}
