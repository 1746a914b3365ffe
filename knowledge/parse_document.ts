/**
 * A clinic's own documents as snippets: PDF (one record per page, cited "Title, p. 12"), Word (.docx), HTML,
 * Markdown and plain text (one record per section under a heading, cited "Title, Heading"). Long sections and
 * pages are cut on sentence boundaries into snippets of at most MAX_ANSWER_CHARS.
 */
import { chunkText } from "./chunk.ts";
import { type ParseEvent, type ParseOptions, type SnippetDraft, UnreadableFileError } from "./records.ts";
import { depthLimitedParser } from "./xml_parser.ts";

export { UnreadableFileError };
import { cleanText, MAX_ANSWER_CHARS, recordEvent, RecordSkip, sourceNameFor } from "./snippets.ts";

/** The source name of an uploaded or ingested document when none is given. */
export const DOCUMENTS_SOURCE = "Clinic documents";

/** Largest file read whole into memory (PDF, Word, Parquet, MedQuAD, PubMedQA): bigger ones are refused. */
export const MAX_WHOLE_FILE_BYTES = 256 * 1024 * 1024;

/** Thrown when a file that must be read whole is larger than {@link MAX_WHOLE_FILE_BYTES}. */
export class FileTooLargeError extends UnreadableFileError {
  constructor(fileName: string, what: string) {
    super(
      `${fileName} is larger than ${
        MAX_WHOLE_FILE_BYTES / (1024 * 1024)
      } MB; ${what} files are read whole, ` +
        `so split it into smaller files.`,
    );
    this.name = "FileTooLargeError";
  }
}

/** Reads a stream to its end, refusing more than `maxBytes`. */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
  fileName: string,
  what: string,
  maxBytes = MAX_WHOLE_FILE_BYTES,
): Promise<Uint8Array<ArrayBuffer>> {
  const pieces: Uint8Array[] = [];
  let size = 0;
  for await (const piece of stream) {
    size += piece.byteLength;
    if (size > maxBytes) {
      await stream.cancel().catch(() => {});
      throw new FileTooLargeError(fileName, what);
    }
    pieces.push(piece);
  }
  const whole = new Uint8Array(size);
  let at = 0;
  for (const piece of pieces) {
    whole.set(piece, at);
    at += piece.byteLength;
  }
  return whole;
}

/** A document's file name without folders and extension, as a title of last resort. */
export function titleFromFileName(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return cleanText(base.replace(/(\.gz)?$/i, "").replace(/\.[a-z0-9]{1,8}$/i, "").replace(/[_]+/g, " ")) ||
    base;
}

/** One part of a document: a page (PDF) or a section under a heading. */
interface Part {
  /** 1-based page, for paginated documents. */
  page: number | null;
  /** The heading the section falls under; null before the first heading and for pages. */
  heading: string | null;
  text: string;
}

/** The snippets of one part: its text in chunks, each indexed with the document's title and the heading. */
function partSnippets(part: Part, k: number, title: string, options: ParseOptions): SnippetDraft[] {
  const text = part.text.replace(/(\p{Ll})-\n(\p{Ll})/gu, "$1$2");
  const body = cleanText(text);
  if (!body) {
    throw new RecordSkip(
      part.page
        ? `page ${part.page} has no text (a scanned page? Rounds does not read text in images)`
        : "section has no text",
    );
  }
  const heading = part.heading ? cleanText(part.heading).slice(0, 120) : null;
  const sourceId = part.page ? `p. ${part.page}` : heading ?? `part ${k + 1}`;
  return chunkText(body, { maxChars: MAX_ANSWER_CHARS }).map((answer, i) => ({
    source: sourceNameFor(options, DOCUMENTS_SOURCE),
    sourceId: i === 0 ? sourceId : `${sourceId}#${i + 1}`,
    url: null,
    specialty: options.specialty ?? null,
    title,
    question: null,
    answer,
    text: [title, heading, answer].filter(Boolean).join("\n"),
    page: part.page,
  }));
}

function* partEvents(parts: Part[], title: string, options: ParseOptions): Generator<ParseEvent> {
  for (const [k, part] of parts.entries()) {
    const where = part.page
      ? `p. ${part.page}`
      : part.heading
      ? `"${part.heading.slice(0, 60)}"`
      : `part ${k + 1}`;
    yield recordEvent(k, `${options.fileName} ${where}`, () => partSnippets(part, k, title, options));
  }
}

/** PDF: one record per page; a page without a text layer (a scan) is skipped with a reason. */
export async function* parsePdf(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const bytes = await readAll(stream, options.fileName, "PDF");
  const { getDocumentProxy, extractText, getMeta } = await import("unpdf");
  let pages: string[];
  let metaTitle: string | null = null;
  try {
    const pdf = await getDocumentProxy(bytes, { verbosity: 0 });
    const meta = await getMeta(pdf).catch(() => null);
    const info = meta?.info as Record<string, unknown> | undefined;
    metaTitle = typeof info?.Title === "string" ? cleanText(info.Title) || null : null;
    pages = (await extractText(pdf, { mergePages: false })).text;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UnreadableFileError(
      /password/i.test(reason)
        ? `${options.fileName} is protected by a password; save an unprotected copy and upload that.`
        : `${options.fileName} could not be read as a PDF (${reason.slice(0, 200)}). Is the file whole?`,
    );
  }
  const title = options.title?.trim() || metaTitle || titleFromFileName(options.fileName);
  yield* partEvents(pages.map((text, i) => ({ page: i + 1, heading: null, text })), title, options);
}

/**
 * Word (.docx): the paragraphs of word/document.xml, a paragraph in a heading style (by the style's name in
 * styles.xml, so "Überschrift 1" documents work as well as "Heading 1") or with an outline level starting a
 * section; table cells separated by " | ".
 */
export async function* parseDocx(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const bytes = await readAll(stream, options.fileName, "Word");
  const JSZip = (await import("jszip")).default;
  let documentXml: string;
  let stylesXml = "";
  let coreXml = "";
  try {
    const zip = await JSZip.loadAsync(bytes);
    const main = zip.file("word/document.xml");
    if (!main) throw new Error("it has no word/document.xml");
    documentXml = await unzipText(main, options.fileName);
    const styles = zip.file("word/styles.xml");
    stylesXml = styles ? await unzipText(styles, options.fileName) : "";
    const core = zip.file("docProps/core.xml");
    coreXml = core ? await unzipText(core, options.fileName) : "";
  } catch (error) {
    if (error instanceof UnreadableFileError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new UnreadableFileError(
      `${options.fileName} could not be read as a Word document (${reason.slice(0, 200)}). ` +
        `Rounds reads .docx files; save older .doc files as .docx first.`,
    );
  }
  const { title, parts } = docxParts(
    documentXml,
    headingStyles(stylesXml, options.fileName),
    options.fileName,
  );
  const coreTitle = /<dc:title>([^<]*)<\/dc:title>/.exec(coreXml)?.[1];
  yield* partEvents(
    parts,
    options.title?.trim() || cleanText(decodeXml(coreTitle ?? "")) || title ||
      titleFromFileName(options.fileName),
    options,
  );
}

/** Largest part of a Word file unzipped: a real document.xml is a few MB; a zip bomb is refused at this size. */
const MAX_DOCX_PART_BYTES = 64 * 1024 * 1024;

/** One part of a zip as text, unzipped piece by piece and refused past MAX_DOCX_PART_BYTES. */
function unzipText(file: unknown, fileName: string): Promise<string> {
  // JSZip's objects have internalStream; its type declarations leave it out.
  const entry = file as { internalStream(type: "uint8array"): ZipStream };
  return new Promise((resolve, reject) => {
    const decoder = new TextDecoder();
    let text = "";
    let size = 0;
    const stream = entry.internalStream("uint8array");
    stream.on("data", (chunk: Uint8Array) => {
      size += chunk.byteLength;
      if (size > MAX_DOCX_PART_BYTES) {
        stream.pause();
        reject(
          new UnreadableFileError(
            `${fileName} unzips to more than ${
              MAX_DOCX_PART_BYTES / (1024 * 1024)
            } MB of text: that is not a ` +
              `Word document Rounds can read. Nothing from it was added.`,
          ),
        );
        return;
      }
      text += decoder.decode(chunk, { stream: true });
    }).on("error", reject).on("end", () => resolve(text + decoder.decode())).resume();
  });
}

/** The piece of JSZip's stream helper used here. */
interface ZipStream {
  on(event: "data", listener: (chunk: Uint8Array) => void): ZipStream;
  on(event: "error", listener: (error: Error) => void): ZipStream;
  on(event: "end", listener: () => void): ZipStream;
  pause(): ZipStream;
  resume(): ZipStream;
}

function decodeXml(text: string): string {
  return text.replace(
    /&(lt|gt|amp|quot|apos);/g,
    (_, e: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e] ?? "",
  );
}

/** Style ids whose names say heading or title: id → level (0 for a title). */
function headingStyles(stylesXml: string, fileName: string): Map<string, number> {
  const levels = new Map<string, number>();
  let styleId: string | null = null;
  // A parser, not a pattern: a regex over a hostile styles.xml can take hours.
  const parser = depthLimitedParser(
    {
      onopentag(name, attributes) {
        if (name === "w:style") styleId = attributes["w:styleid"] ?? null;
        else if (name === "w:name" && styleId) {
          const styleName = (attributes["w:val"] ?? "").trim().slice(0, 60);
          const heading = /^(?:heading|überschrift|titre|título|titolo|kop) ?(\d)$/i.exec(styleName);
          if (heading) levels.set(styleId, Number(heading[1]));
          else if (/^title$/i.test(styleName)) levels.set(styleId, 0);
        }
      },
      onclosetag(name) {
        if (name === "w:style") styleId = null;
      },
    },
    { xmlMode: true, lowerCaseAttributeNames: true },
    fileName,
  );
  parser.write(stylesXml);
  parser.end();
  // Documents written by tools without a styles part still name the usual ids.
  if (levels.size === 0) { for (let n = 1; n <= 6; n++) levels.set(`Heading${n}`, n); }
  if (!levels.has("Title")) levels.set("Title", 0);
  return levels;
}

/** The title (a Title-style paragraph) and sections of word/document.xml. */
function docxParts(
  xml: string,
  headings: Map<string, number>,
  fileName: string,
): { title: string | null; parts: Part[] } {
  const parts: Part[] = [];
  let title: string | null = null;
  let current: Part = { page: null, heading: null, text: "" };
  let paragraph = "";
  let level: number | null = null;
  let inText = false;
  let cellInRow = 0;
  let firstTopHeading: string | null = null;
  const parser = depthLimitedParser(
    {
      onopentag(name, attributes) {
        if (name === "w:p") {
          paragraph = "";
          level = null;
        } else if (name === "w:pstyle") {
          const id = attributes["w:val"];
          if (id && headings.has(id)) level = headings.get(id)!;
        } else if (name === "w:outlinelvl" && level === null) {
          level = Number(attributes["w:val"] ?? 9) + 1;
          if (!(level >= 1 && level <= 6)) level = null;
        } else if (name === "w:t") inText = true;
        else if (name === "w:tab") paragraph += " ";
        else if (name === "w:br" || name === "w:cr") paragraph += "\n";
        else if (name === "w:tr") cellInRow = 0;
        else if (name === "w:tc" && cellInRow++ > 0) current.text += " | ";
      },
      ontext(text) {
        if (inText) paragraph += text;
      },
      onclosetag(name) {
        if (name === "w:t") inText = false;
        else if (name === "w:p") {
          const text = cleanText(paragraph);
          if (level !== null && text) {
            if (level === 0 && !title) {
              title = text;
              return;
            }
            if (current.text.trim()) parts.push(current);
            if (level === 1 && firstTopHeading === null && parts.length === 0) firstTopHeading = text;
            current = { page: null, heading: text, text: "" };
          } else if (text) current.text += text + (cellInRow > 0 ? " " : "\n");
        } else if (name === "w:tr") {
          current.text += "\n";
          cellInRow = 0;
        }
      },
    },
    { xmlMode: true, decodeEntities: true, lowerCaseTags: true },
    fileName,
  );
  parser.write(xml);
  parser.end();
  if (current.text.trim()) parts.push(current);
  // Without a Title paragraph, a document that opens with a top-level heading is titled by it.
  if (!title && firstTopHeading) {
    title = firstTopHeading;
    for (const part of parts) if (part.heading === title) part.heading = null;
  }
  return { title, parts };
}

/** HTML: the text of the page, one record per section under a heading; scripts, styles and navigation left out. */
export async function* parseHtml(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const html = new TextDecoder().decode(await readAll(stream, options.fileName, "HTML"));
  const { title, parts } = htmlParts(html, options.fileName);
  yield* partEvents(parts, options.title?.trim() || title || titleFromFileName(options.fileName), options);
}

/** Markdown: one record per section under an ATX (`#`) or Setext heading; markup reduced to its text. */
export async function* parseMarkdown(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const text = new TextDecoder().decode(await readAll(stream, options.fileName, "Markdown"));
  const parts: Part[] = [];
  let title: string | null = null;
  let current: Part = { page: null, heading: null, text: "" };
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      continue;
    }
    // Headings are short: longer lines are text, and no pattern runs over a hostile megabyte-long line.
    const short = line.length <= MAX_HEADING_LINE && (lines[i + 1] ?? "").length <= MAX_HEADING_LINE;
    const atx = fenced || !short ? null : atxHeading(line);
    const setext = !fenced && short && line.trim() && /^ {0,3}(?:=+|-+)[ \t]*$/.test(lines[i + 1] ?? "") &&
        !/^\s*[-*+]\s/.test(line)
      ? line.trim()
      : null;
    const heading = atx ? markdownInline(atx.text) : setext ? markdownInline(setext) : null;
    if (heading !== null) {
      if (current.text.trim()) parts.push(current);
      if (!title && (atx ? atx.level === 1 : /^\s*=/.test(lines[i + 1]))) title = heading;
      current = { page: null, heading, text: "" };
      if (setext) i++;
      continue;
    }
    current.text += markdownLine(line) + "\n";
  }
  if (current.text.trim()) parts.push(current);
  for (const part of parts) if (part.heading && part.heading === title) part.heading = null;
  yield* partEvents(parts, options.title?.trim() || title || titleFromFileName(options.fileName), options);
}

/** Plain text: paragraphs, cut into snippets; a line in capitals or ending in ":" on its own starts a section. */
export async function* parsePlainText(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const text = new TextDecoder().decode(await readAll(stream, options.fileName, "text"));
  const parts: Part[] = [];
  let current: Part = { page: null, heading: null, text: "" };
  for (const paragraph of text.replace(/\r\n?/g, "\n").split(/\n\s*\n/)) {
    const lines = paragraph.trim().split("\n");
    const first = lines[0]?.trim() ?? "";
    const isHeading = lines.length >= 1 && first.length > 0 && first.length <= 80 &&
      (/^[^a-z]*[A-Z][^a-z]*$/.test(first) || /^[^.!?]{3,}:$/.test(first));
    if (isHeading) {
      if (current.text.trim()) parts.push(current);
      current = { page: null, heading: first.replace(/:$/, ""), text: lines.slice(1).join("\n") + "\n\n" };
    } else current.text += paragraph + "\n\n";
  }
  if (current.text.trim()) parts.push(current);
  yield* partEvents(parts, options.title?.trim() || titleFromFileName(options.fileName), options);
}

const SKIPPED_ELEMENTS = new Set(["script", "style", "noscript", "template", "nav", "svg", "button"]);
const BLOCK_ELEMENTS = new Set([
  "p",
  "div",
  "section",
  "article",
  "li",
  "ul",
  "ol",
  "br",
  "tr",
  "table",
  "blockquote",
  "pre",
  "dd",
  "dt",
  "figcaption",
  "header",
  "footer",
  "main",
  "aside",
  "hr",
]);

/** The title and the sections of an HTML page (tables kept as rows of cells separated by " | "). */
export function htmlParts(html: string, fileName: string): { title: string | null; parts: Part[] } {
  const parts: Part[] = [];
  let title: string | null = null;
  let current: Part = { page: null, heading: null, text: "" };
  let skipping = 0;
  let inTitle = false;
  let titleText = "";
  let heading: string | null = null;
  let firstH1: string | null = null;
  let cellsInRow = 0;
  const parser = depthLimitedParser(
    {
      onopentag(name) {
        if (SKIPPED_ELEMENTS.has(name)) skipping++;
        if (name === "title") inTitle = true;
        if (skipping) return;
        if (/^h[1-6]$/.test(name)) heading = "";
        else if (name === "tr") cellsInRow = 0;
        else if (name === "td" || name === "th") {
          if (cellsInRow++ > 0) current.text += " | ";
        } else if (BLOCK_ELEMENTS.has(name)) current.text += "\n";
      },
      ontext(text) {
        if (inTitle) titleText += text;
        if (skipping || inTitle) return;
        if (heading !== null) heading += text;
        else current.text += text;
      },
      onclosetag(name) {
        if (name === "title") inTitle = false;
        if (SKIPPED_ELEMENTS.has(name)) {
          skipping = Math.max(0, skipping - 1);
          return;
        }
        if (skipping) return;
        if (/^h[1-6]$/.test(name) && heading !== null) {
          const text = cleanText(heading);
          heading = null;
          if (!text) return;
          if (name === "h1" && !firstH1) firstH1 = text;
          if (current.text.trim()) parts.push(current);
          current = { page: null, heading: text, text: "" };
        } else if (BLOCK_ELEMENTS.has(name)) current.text += "\n";
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
    fileName,
  );
  parser.write(html);
  parser.end();
  if (current.text.trim()) parts.push(current);
  title = cleanText(titleText) || firstH1;
  // A heading that is the title itself adds nothing to its section's citation.
  for (const part of parts) if (part.heading && part.heading === title) part.heading = null;
  return { title, parts };
}

/** Longest line looked at as a heading or a table rule (text past it is kept as text). */
const MAX_HEADING_LINE = 1000;

/** An ATX heading ("## Dosing ##"): its level and text, or null. Linear in the line's length. */
function atxHeading(line: string): { level: number; text: string } | null {
  const match = /^ {0,3}(#{1,6})(?:[ \t]+(.*))?$/.exec(line);
  if (!match) return null;
  let text = (match[2] ?? "").trimEnd();
  const closing = text.replace(/#+$/, "");
  if (closing !== text && (closing === "" || /[ \t]$/.test(closing))) text = closing.trimEnd();
  return { level: match[1].length, text };
}

/** A Markdown line's text: list markers, quote markers, table pipes and rules reduced. */
function markdownLine(line: string): string {
  if (line.length > MAX_HEADING_LINE) return line;
  if (/^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$/.test(line)) return ""; // a table's rule
  if (/^[ \t]*(?:[-*_][ \t]*){3,}$/.test(line)) return "";
  const text = line.replace(/^\s*>\s?/, "").replace(/^\s*(?:[-*+]|\d+[.)])\s+/, "").replace(
    /^\s*\|(.*)\|\s*$/,
    (_, cells: string) => cells.split("|").map((c) => c.trim()).join(" | "),
  );
  return markdownInline(text);
}

/** Inline Markdown reduced to its text: links and images keep their words, emphasis and code marks go. */
function markdownInline(text: string): string {
  return text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]+)\]\([^)]*\)/g, "$1")
    .replace(/<((?:https?|mailto):[^>]+)>/g, "$1")
    .replace(/(\*\*|__)(.+?)\1/g, "$2")
    .replace(/(^|[^\w*])[*_]([^*_\s][^*_]*?)[*_](?=[^\w*]|$)/g, "$1$2")
    .replace(/`([^`]+)`/g, "$1");
}
