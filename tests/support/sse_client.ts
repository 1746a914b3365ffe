/**
 * Reading server-sent events in tests, as a browser would: id, event name and data of each message.
 */

/** One parsed SSE message. */
export interface SseEvent {
  id: string | null;
  event: string | null;
  data: string;
}

/**
 * Reads messages one at a time from a response body. A body still gzip-encoded (app.request() hands back the
 * raw stream; fetch has already decoded it but keeps the header) is recognised by its magic bytes.
 */
export function sseReader(response: Response) {
  const reader = response.body!.pipeThrough(gunzipIfNeeded()).pipeThrough(new TextDecoderStream())
    .getReader();
  const parser = sseParser();
  const queue: SseEvent[] = [];
  let done = false;

  return {
    /** The next message, or null at the end of the stream. */
    async next(): Promise<SseEvent | null> {
      while (queue.length === 0 && !done) {
        const { value, done: end } = await reader.read();
        if (end) {
          done = true;
          break;
        }
        queue.push(...parser.push(value));
      }
      return queue.shift() ?? null;
    },
    /** Disconnects, as a closed tab would. */
    cancel: () => reader.cancel().catch(() => {}),
  };
}

/** Parses SSE text as it arrives, in pieces cut anywhere: each push returns the messages it completed. */
export function sseParser(): { push(text: string): SseEvent[] } {
  let buffer = "";

  function parse(block: string): SseEvent | null {
    const event: SseEvent = { id: null, event: null, data: "" };
    const data: string[] = [];
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      if (colon === 0) continue;
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") event.id = value;
      else if (field === "event") event.event = value;
      else if (field === "data") data.push(value);
    }
    event.data = data.join("\n");
    return data.length || event.id !== null || event.event ? event : null;
  }

  return {
    push(text) {
      buffer += text.replace(/\r\n?/g, "\n");
      const events: SseEvent[] = [];
      let cut;
      while ((cut = buffer.indexOf("\n\n")) !== -1) {
        const parsed = parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (parsed) events.push(parsed);
      }
      return events;
    },
  };
}

/** Reads a whole stream. */
export async function readAll(response: Response): Promise<SseEvent[]> {
  const reader = sseReader(response);
  const events: SseEvent[] = [];
  for (let e = await reader.next(); e; e = await reader.next()) events.push(e);
  return events;
}

/** The reply text the deltas of a stream add up to (as the browser shows it while streaming). */
export function streamedText(events: SseEvent[]): string {
  return events
    .filter((e) => e.id !== null && e.id !== "end" && !e.data.startsWith("<hx-partial"))
    .map((e) => unescapeText(e.data))
    .join("");
}

/** Undoes the text escaping of deltas. */
export function unescapeText(text: string): string {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function gunzipIfNeeded(): TransformStream<Uint8Array, Uint8Array> {
  let inflate: { writer: WritableStreamDefaultWriter<Uint8Array>; pump: Promise<void> } | null = null;
  let decided = false;
  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      if (!decided) {
        decided = true;
        if (chunk[0] === 0x1f && chunk[1] === 0x8b) {
          const gunzip = new DecompressionStream("gzip") as unknown as TransformStream<
            Uint8Array,
            Uint8Array
          >;
          const reader = gunzip.readable.getReader();
          const pump = (async () => {
            for (let r = await reader.read(); !r.done; r = await reader.read()) controller.enqueue(r.value);
          })();
          inflate = { writer: gunzip.writable.getWriter(), pump };
        }
      }
      if (inflate) await inflate.writer.write(chunk);
      else controller.enqueue(chunk);
    },
    async flush() {
      if (inflate) {
        await inflate.writer.close();
        await inflate.pump;
      }
    },
  });
}
