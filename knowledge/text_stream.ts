/**
 * Byte streams to text chunks and numbered lines, in bounded memory: nothing here holds more than one chunk
 * plus one record, and a record past {@link MAX_RECORD_CHARS} is dropped rather than buffered.
 */

/** Largest single record (JSON element, JSON line, MedDialog dialogue) a parser buffers, in characters. */
export const MAX_RECORD_CHARS = 8 * 1024 * 1024;

/** Lines read from a text stream; a line longer than the limit is `null` (dropped, not buffered). */
export interface LineBatch {
  /** 1-based number of the first line in `lines`. */
  firstLine: number;
  lines: (string | null)[];
}

/** Decodes a UTF-8 byte stream into text chunks, dropping a byte-order mark; characters split across chunks are kept whole. */
export async function* decodeText(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  for await (const bytes of stream) {
    const text = decoder.decode(bytes, { stream: true });
    if (text) yield text;
  }
  const rest = decoder.decode();
  if (rest) yield rest;
}

/** Yields text chunks: `first`, then the rest of `chunks` (to put back a chunk that was looked at). */
export async function* prepend(first: string, chunks: AsyncIterator<string>): AsyncGenerator<string> {
  if (first) yield first;
  try {
    while (true) {
      const next = await chunks.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await chunks.return?.();
  }
}

/** Splits text chunks into lines (LF or CRLF), one batch per chunk that completes a line. */
export async function* readLines(
  chunks: AsyncIterable<string>,
  maxLineChars = MAX_RECORD_CHARS,
): AsyncGenerator<LineBatch> {
  let pending: string[] = [];
  let pendingChars = 0;
  let overlong = false;
  let nextLine = 1;

  for await (const chunk of chunks) {
    const newline = chunk.indexOf("\n");
    if (newline < 0) {
      if (!overlong) {
        pending.push(chunk);
        pendingChars += chunk.length;
        if (pendingChars > maxLineChars) [pending, pendingChars, overlong] = [[], 0, true];
      }
      continue;
    }
    const parts = chunk.split("\n");
    const lines: (string | null)[] = new Array(parts.length - 1);
    const head = parts[0];
    lines[0] = overlong || pendingChars + head.length > maxLineChars
      ? null
      : stripCr(pending.length ? pending.join("") + head : head);
    for (let i = 1; i < parts.length - 1; i++) {
      lines[i] = parts[i].length > maxLineChars ? null : stripCr(parts[i]);
    }
    const tail = parts[parts.length - 1];
    [pending, pendingChars, overlong] = [[tail], tail.length, tail.length > maxLineChars];
    if (overlong) pending = [];
    yield { firstLine: nextLine, lines };
    nextLine += lines.length;
  }
  if (overlong) yield { firstLine: nextLine, lines: [null] };
  else if (pendingChars > 0) yield { firstLine: nextLine, lines: [stripCr(pending.join(""))] };
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
