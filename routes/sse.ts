/**
 * Server-sent events as a Response: one message per `send`, gzip-compressed when the client accepts it,
 * flushed after every message so nothing waits in a buffer.
 */
import zlib from "node:zlib";

/** One SSE message. */
export interface SseMessage {
  id: string;
  data: string;
  event?: string;
}

/** Writes messages to one client. */
export interface SseWriter {
  send(message: SseMessage): void;
  /** Ends the stream after what was sent. */
  close(): void;
  /** Aborted when the client goes away (or the stream closes). */
  readonly signal: AbortSignal;
}

const encoder = new TextEncoder();

/** Formats one message. A data line that starts with a space gets a second one: parsers drop the first. */
export function formatSse(message: SseMessage): string {
  let out = `id:${message.id}\n`;
  if (message.event) out += `event:${message.event}\n`;
  for (const line of message.data.split("\n")) {
    out += line.startsWith(" ") ? `data: ${line}\n` : `data:${line}\n`;
  }
  return out + "\n";
}

/** True when the request's Accept-Encoding allows gzip. */
function acceptsGzip(request: Request): boolean {
  return /\bgzip\b/i.test(request.headers.get("accept-encoding") ?? "");
}

/**
 * Builds a streaming response and hands its writer to `run`. `run` owns the stream: it must close it, and it
 * must handle its own errors (nothing thrown here reaches the app's error handler).
 */
export function sseResponse(request: Request, run: (writer: SseWriter) => void | Promise<void>): Response {
  const abort = new AbortController();
  const gzip = acceptsGzip(request);
  let closed = false;
  let compressor: zlib.Gzip | null = null;

  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const enqueue = (chunk: Uint8Array) => {
        try {
          controller.enqueue(chunk);
        } catch { /* the client is gone */ }
      };
      if (gzip) {
        compressor = zlib.createGzip({ level: 6 });
        compressor.on("data", (chunk: Uint8Array) => enqueue(new Uint8Array(chunk)));
        compressor.on("end", () => {
          try {
            controller.close();
          } catch { /* already closed */ }
        });
        compressor.on("error", () => abort.abort());
      }
      const writer: SseWriter = {
        signal: abort.signal,
        send(message) {
          if (closed) return;
          const bytes = encoder.encode(formatSse(message));
          if (compressor) {
            compressor.write(bytes);
            // A partial flush makes everything so far decodable, for ~2 bytes instead of a sync flush's 5.
            compressor.flush(zlib.constants.Z_PARTIAL_FLUSH);
          } else enqueue(bytes);
        },
        close() {
          if (closed) return;
          closed = true;
          if (compressor) compressor.end();
          else {
            try {
              controller.close();
            } catch { /* already closed */ }
          }
          abort.abort();
        },
      };
      request.signal?.addEventListener("abort", () => abort.abort(), { once: true });
      Promise.resolve().then(() => run(writer)).catch((error) => {
        console.error("event stream failed:", error);
        writer.close();
      });
    },
    cancel() {
      closed = true;
      compressor?.destroy();
      abort.abort();
    },
  });

  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
      vary: "accept-encoding",
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    },
  });
}
