/**
 * Streaming JSON for the dataset parsers: records of a JSON array (or JSON Lines) read one at a time.
 *
 * The incremental splitter handles documents that are one big array, or an object holding one: it tracks
 * strings, escapes and nesting across chunk boundaries and hands back the text of each element of the target
 * array, so a 1 GB file is parsed one element at a time with `JSON.parse`. It only finds element boundaries; it
 * does not validate. Anything between two commas at the array's level is an element, so garbage between
 * elements comes back as an element that fails `JSON.parse`, and splitting carries on after it. When the
 * overall structure is broken (not an array, the file ends early) it reports an error and stops.
 */
import type { ParseEvent, ParseOptions, SnippetDraft } from "./records.ts";
import { recordEvent } from "./snippets.ts";
import { decodeText, MAX_RECORD_CHARS, prepend, readLines } from "./text_stream.ts";

/** What the splitter found: an element's text, an element too large to keep, or why it stopped. */
export type SplitItem =
  | { kind: "element"; text: string }
  | { kind: "oversized"; chars: number }
  | { kind: "error"; reason: string };

/** A record read from a JSON array element or a JSON line, or why it could not be read. */
export type JsonRecord =
  | { ok: true; value: unknown; location: string }
  | { ok: false; reason: string; location: string; fatal: boolean };

/** Options for {@link JsonArraySplitter}. */
export interface SplitterOptions {
  /** Split the array under this key of the root object (`"data"` for MASHQA); default: the root is the array. */
  key?: string;
  /** Elements longer than this are reported as `oversized` instead of being buffered. */
  maxElementChars?: number;
}

const BEFORE_ROOT = 0;
const IN_ROOT_OBJECT = 1;
const IN_ARRAY = 2;
const DONE = 3;

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MAX_KEY_CHARS = 1024;

/** Splits a JSON array, fed as text chunks, into the text of its elements. */
export class JsonArraySplitter {
  readonly #key: string | null;
  readonly #maxElementChars: number;
  readonly #arrayDepth: number;
  #state = BEFORE_ROOT;
  #depth = 0;
  #inString = false;
  #escaped = false;
  // The element being captured: its text so far, unless it grew past the limit.
  #capturing = false;
  #parts: string[] = [];
  #partsChars = 0;
  #oversized = false;
  // Root-object key tracking, used only with `key`.
  #expectKey = false;
  #inKey = false;
  #keyText = "";
  #currentKey: string | null = null;
  #expectValue = false;
  #keyStartIndex = -1;

  constructor(options: SplitterOptions = {}) {
    this.#key = options.key ?? null;
    this.#maxElementChars = options.maxElementChars ?? MAX_RECORD_CHARS;
    this.#arrayDepth = this.#key === null ? 1 : 2;
  }

  /** Whether the target array has closed or the splitter gave up: later input is ignored. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** Feeds the next chunk of text; returns the elements (and at most one error) it completed. */
  push(chunk: string): SplitItem[] {
    const out: SplitItem[] = [];
    const n = chunk.length;
    let i = 0;
    let captureStart = this.#capturing ? 0 : -1;
    // Position of the next backslash at or after i: -2 until looked up, -1 when there is none.
    let backslashAt = -2;
    if (this.#escaped && n > 0) {
      // The previous chunk ended on a backslash inside a string: this chunk's first character is escaped.
      this.#escaped = false;
      i = 1;
    }

    while (i < n && this.#state !== DONE) {
      if (this.#inString) {
        // Most of a dataset is string content: jump to the closing quote instead of stepping through it.
        let close = -1;
        while (true) {
          const quote = chunk.indexOf('"', i);
          if (backslashAt !== -1 && backslashAt < i) backslashAt = chunk.indexOf("\\", i);
          if (backslashAt !== -1 && (quote === -1 || backslashAt < quote)) {
            if (backslashAt + 1 >= n) this.#escaped = true;
            i = backslashAt + 2;
            if (i >= n) break;
            continue;
          }
          close = quote;
          break;
        }
        if (close < 0) {
          i = n;
          break;
        }
        this.#inString = false;
        if (this.#inKey) this.#endKey(chunk, close);
        i = close + 1;
        continue;
      }

      const c = chunk.charCodeAt(i);
      if (this.#state === IN_ARRAY && this.#depth === this.#arrayDepth && !this.#capturing) {
        if (isWhitespace(c) || c === COMMA) {
          i++;
          continue;
        }
        if (c === CLOSE_BRACKET) {
          this.#state = DONE;
          break;
        }
        this.#startElement();
        captureStart = i;
      }

      if (this.#state === IN_ARRAY) {
        if (c === QUOTE) this.#inString = true;
        else if (c === OPEN_BRACE || c === OPEN_BRACKET) this.#depth++;
        else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
          if (this.#depth > this.#arrayDepth) {
            this.#depth--;
            if (this.#depth === this.#arrayDepth) {
              out.push(this.#endElement(chunk, captureStart, i + 1));
              captureStart = -1;
            }
          } else if (c === CLOSE_BRACKET) {
            // A scalar element ("42", or garbage) runs up to the array's closing bracket.
            out.push(this.#endElement(chunk, captureStart, i));
            captureStart = -1;
            this.#state = DONE;
            break;
          }
        } else if (c === COMMA && this.#depth === this.#arrayDepth) {
          out.push(this.#endElement(chunk, captureStart, i));
          captureStart = -1;
        }
        i++;
        continue;
      }

      if (this.#state === BEFORE_ROOT) {
        if (!isWhitespace(c) && c !== 0xfeff) {
          const error = this.#openRoot(c);
          if (error) {
            out.push(error);
            this.#state = DONE;
            break;
          }
        }
        i++;
        continue;
      }

      // IN_ROOT_OBJECT: look for the key whose value is the target array, skipping every other value.
      const error = this.#rootObjectChar(i, c);
      if (error) {
        out.push(error);
        this.#state = DONE;
        break;
      }
      i++;
    }

    if (this.#capturing && captureStart >= 0) this.#keepPart(chunk.slice(captureStart, i));
    if (this.#inKey) {
      if (this.#keyText.length <= MAX_KEY_CHARS) this.#keyText += chunk.slice(this.#keyStart(i), i);
      this.#keyStartIndex = 0;
    }
    return out;
  }

  /** Signals the end of input; returns an error when the document ended before the target array closed. */
  end(): SplitItem[] {
    const state = this.#state;
    this.#state = DONE;
    if (state === DONE) return [];
    if (state === BEFORE_ROOT) return [{ kind: "error", reason: "the file is empty" }];
    if (this.#capturing) {
      return [{ kind: "error", reason: "the file ends inside this record (truncated JSON)" }];
    }
    return [{
      kind: "error",
      reason: state === IN_ARRAY
        ? `the file ends before the array's closing "]" (truncated JSON)`
        : `the file ends before a "${this.#key}" array (truncated JSON)`,
    }];
  }

  #openRoot(c: number): SplitItem | null {
    if (this.#key === null) {
      if (c !== OPEN_BRACKET) {
        return { kind: "error", reason: `expected a JSON array, found ${describeChar(c)}` };
      }
      this.#state = IN_ARRAY;
      this.#depth = 1;
      return null;
    }
    if (c !== OPEN_BRACE) {
      return {
        kind: "error",
        reason: `expected a JSON object with a "${this.#key}" array, found ${describeChar(c)}`,
      };
    }
    this.#state = IN_ROOT_OBJECT;
    this.#depth = 1;
    this.#expectKey = true;
    return null;
  }

  #rootObjectChar(i: number, c: number): SplitItem | null {
    if (this.#depth === 1 && !isWhitespace(c)) {
      if (this.#expectValue) {
        this.#expectValue = false;
        if (this.#currentKey === this.#key) {
          if (c !== OPEN_BRACKET) {
            return { kind: "error", reason: `"${this.#key}" is not an array (found ${describeChar(c)})` };
          }
          this.#state = IN_ARRAY;
          this.#depth = 2;
          return null;
        }
      } else if (c === QUOTE && this.#expectKey) {
        this.#inString = true;
        this.#inKey = true;
        this.#keyText = "";
        this.#keyStartIndex = i + 1;
        return null;
      } else if (c === COLON) {
        this.#expectKey = false;
        this.#expectValue = true;
        return null;
      } else if (c === COMMA) {
        this.#expectKey = true;
        this.#currentKey = null;
        return null;
      }
    }
    if (c === QUOTE) this.#inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) this.#depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      this.#depth--;
      if (this.#depth === 0) return { kind: "error", reason: `no "${this.#key}" array in the JSON object` };
    }
    return null;
  }

  #keyStart(chunkEnd: number): number {
    return Math.min(Math.max(this.#keyStartIndex, 0), chunkEnd);
  }

  #endKey(chunk: string, quoteAt: number): void {
    const text = this.#keyText + chunk.slice(this.#keyStart(quoteAt), quoteAt);
    this.#inKey = false;
    this.#keyStartIndex = -1;
    this.#keyText = "";
    this.#currentKey = text.length > MAX_KEY_CHARS ? null : parseKey(text);
  }

  #startElement(): void {
    this.#capturing = true;
    this.#parts = [];
    this.#partsChars = 0;
    this.#oversized = false;
  }

  #keepPart(part: string): void {
    if (this.#oversized) {
      this.#partsChars += part.length;
      return;
    }
    this.#parts.push(part);
    this.#partsChars += part.length;
    if (this.#partsChars > this.#maxElementChars) {
      this.#parts = [];
      this.#oversized = true;
    }
  }

  #endElement(chunk: string, start: number, end: number): SplitItem {
    this.#keepPart(chunk.slice(Math.max(start, 0), end));
    this.#capturing = false;
    const item: SplitItem = this.#oversized
      ? { kind: "oversized", chars: this.#partsChars }
      : { kind: "element", text: this.#parts.length === 1 ? this.#parts[0] : this.#parts.join("") };
    this.#parts = [];
    this.#partsChars = 0;
    this.#oversized = false;
    return item;
  }
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function describeChar(c: number): string {
  return JSON.stringify(String.fromCharCode(c));
}

function parseKey(raw: string): string | null {
  try {
    return JSON.parse(`"${raw}"`);
  } catch {
    return null;
  }
}

/**
 * Reads the records of a JSON array (or of the array under `key` in the root object), or of a JSON Lines file
 * when the content does not start with "[" and no key is given. Batched per input chunk.
 * Locations: "<fileName> record <n>" for array elements, "<fileName>:<line>" for JSON lines.
 */
export async function* readJsonRecords(
  stream: ReadableStream<Uint8Array>,
  fileName: string,
  options: { key?: string } = {},
): AsyncGenerator<JsonRecord[]> {
  const chunks = decodeText(stream)[Symbol.asyncIterator]();
  let first = "";
  while (!/\S/.test(first)) {
    const next = await chunks.next();
    if (next.done) break;
    // Leading blank space only matters for line numbers: keep its newlines, not the rest.
    first = first.length > 65_536 ? first.replace(/[^\n]/g, "") + next.value : first + next.value;
  }
  const text = prepend(first, chunks);
  if (options.key !== undefined || first.trimStart().startsWith("[")) {
    yield* readArrayRecords(text, fileName, options.key);
  } else {
    yield* readLineRecords(text, fileName);
  }
}

/** Parse events for a JSON array or JSON Lines file whose records each become snippets through `build`. */
export async function* jsonRecordEvents(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
  build: (value: unknown, recordNumber: number) => SnippetDraft[],
): AsyncGenerator<ParseEvent> {
  let index = 0;
  for await (const batch of readJsonRecords(stream, options.fileName)) {
    for (const record of batch) {
      const current = index++;
      if (!record.ok) {
        yield { kind: "skip", index: current, location: record.location, reason: record.reason };
        if (record.fatal) return;
        continue;
      }
      yield recordEvent(current, record.location, () => build(record.value, current + 1));
    }
  }
}

/** A short, sentence-case reason for a `JSON.parse` failure. */
export function malformedJsonReason(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/, ".*" is not valid JSON$/s, "")
    .replace(/ \(line \d+ column \d+\)$/, "");
  return `malformed JSON: ${message.charAt(0).toLowerCase()}${message.slice(1)}`;
}

async function* readArrayRecords(
  text: AsyncIterable<string>,
  fileName: string,
  key: string | undefined,
): AsyncGenerator<JsonRecord[]> {
  const splitter = new JsonArraySplitter({ key });
  let count = 0;
  const toRecord = (item: SplitItem): JsonRecord => {
    const location = `${fileName} record ${++count}`;
    switch (item.kind) {
      case "element":
        try {
          return { ok: true, value: JSON.parse(item.text), location };
        } catch (error) {
          return { ok: false, reason: malformedJsonReason(error), location, fatal: false };
        }
      case "oversized":
        return { ok: false, reason: tooLongReason(item.chars), location, fatal: false };
      case "error":
        return { ok: false, reason: item.reason, location, fatal: true };
    }
  };
  for await (const chunk of text) {
    const items = splitter.push(chunk);
    if (items.length) yield items.map(toRecord);
    if (splitter.done) return;
  }
  const items = splitter.end();
  if (items.length) yield items.map(toRecord);
}

const TOO_LONG_LINE = `line is longer than ${MAX_RECORD_CHARS / (1024 * 1024)} MB of text`;

async function* readLineRecords(text: AsyncIterable<string>, fileName: string): AsyncGenerator<JsonRecord[]> {
  for await (const { firstLine, lines } of readLines(text)) {
    const records: JsonRecord[] = [];
    for (let k = 0; k < lines.length; k++) {
      const line = lines[k];
      const location = `${fileName}:${firstLine + k}`;
      if (line === null) {
        records.push({ ok: false, reason: TOO_LONG_LINE, location, fatal: false });
        continue;
      }
      if (!line.trim()) continue;
      try {
        records.push({ ok: true, value: JSON.parse(line), location });
      } catch (error) {
        records.push({ ok: false, reason: malformedJsonReason(error), location, fatal: false });
      }
    }
    if (records.length) yield records;
  }
}

function tooLongReason(chars: number): string {
  const megabytes = (size: number) => `${(size / (1024 * 1024)).toFixed(0)} MB`;
  return `record is larger than ${megabytes(MAX_RECORD_CHARS)} (${megabytes(chars)} of text)`;
}
