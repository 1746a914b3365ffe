/**
 * Server-sent events as a Response: one message per `send`, gzip-compressed when the client accepts it,
 * flushed after every message so nothing waits in a buffer.
 */
// @ts-types="@types/pako"
import pako from "pako";
import { loggable } from "../db/client.ts";

/** One SSE message. */
export interface SseMessage {
  id: string;
  data: string;
  event?: string;
  /**
   * Appends to the previous message if that one has not been sent yet (its data continues in this one, and
   * this id replaces its id): how a reader who falls behind gets one catch-up message instead of a backlog.
   */
  appends?: boolean;
}

/** What else may end a stream, and who to tell when it ends. */
export interface SseOptions {
  /** Ends the stream when aborted (the client's session was revoked). */
  signal?: AbortSignal;
  /** Called once when the stream ends, however it ends. */
  onClose?: () => void;
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

/**
 * Under load, pieces of text wait a little to go out together. With more than COALESCE_ABOVE streams open in this
 * process, an `appends` message waits up to COALESCE_MS for the next ones (any other message sends it at once):
 * each event costs a format, a gzip flush and a write, and at 500 streams of 50 tokens/s those were most of the
 * server's work. A reader sees several words at a time, at most COALESCE_MS late; with few streams open, every
 * piece still goes out the moment it arrives (the per-token latency goal is measured that way).
 */
const COALESCE_ABOVE = 50;
const COALESCE_MS = 100;
let openStreams = 0;

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
 * A gzip stream that can be flushed after every message. pako (zlib ported to JavaScript) honours small
 * settings where Deno's native zlib (~250 KB per stream) does not. Measured on a 2,000-token reply, body bytes
 * ÷ text: a 2 KB window with the smallest hash (memLevel 1) gives 2.57×, as a 4 KB window with memLevel 4 did
 * (2.57×), in 14 KB of state per stream instead of 29 KB; a 1 KB window gives 3.26×, because the final render
 * can no longer refer back to the streamed text. Level 9 costs nothing on events this small.
 */
function gzipStream(): { compress(bytes: Uint8Array, flush: number): Uint8Array } {
  const deflate = new pako.Deflate({ gzip: true, level: 9, windowBits: 11, memLevel: 1, chunkSize: 512 });
  let pieces: Uint8Array[] = [];
  deflate.onData = (chunk) => pieces.push(chunk as Uint8Array);
  return {
    /** One message in, one exact-size chunk out: pako's pieces are views into fresh buffers, dropped at once. */
    compress(bytes, flush) {
      deflate.push(bytes, flush);
      const out = pieces.length === 1 ? pieces[0].slice() : concat(pieces);
      pieces = [];
      return out;
    },
  };
}

function concat(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

/**
 * Builds a streaming response and hands its writer to `run`. `run` owns the stream: it must close it, and it
 * must handle its own errors (nothing thrown here reaches the app's error handler).
 *
 * Messages go out as soon as the connection takes them. While it does not (a slow reader), they wait here as
 * text, and `appends` messages merge, so a reader who falls behind costs a few bytes of text, not a queue of
 * buffers, and catches up with one message.
 */
export function sseResponse(
  request: Request,
  run: (writer: SseWriter) => void | Promise<void>,
  options: SseOptions = {},
): Response {
  const abort = new AbortController();
  let closed = false;
  /** Once, however the stream ends: tells the owner (a revocation watch) it can let go. */
  openStreams++;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const ended = () => {
    if (closed) return;
    closed = true;
    openStreams--;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    options.onClose?.();
  };
  abort.signal.addEventListener("abort", ended, { once: true });
  const gzip = acceptsGzip(request);
  const waiting: SseMessage[] = [];
  let closing = false;
  let finished = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const compressor = gzip ? gzipStream() : null;

  const enqueue = (chunk: Uint8Array) => {
    try {
      controller.enqueue(chunk);
    } catch { /* the client is gone */ }
  };
  /** Hands waiting messages to the connection while it has room; ends the stream once asked to and empty. */
  const drain = () => {
    while (waiting.length > 0 && (controller.desiredSize ?? 0) > 0) {
      const bytes = encoder.encode(formatSse(waiting.shift()!));
      // A partial flush makes everything so far decodable, for ~2 bytes instead of a sync flush's 5.
      enqueue(compressor ? compressor.compress(bytes, pako.constants.Z_PARTIAL_FLUSH) : bytes);
    }
    if (closing && waiting.length === 0 && !finished) {
      finished = true;
      if (compressor) enqueue(compressor.compress(new Uint8Array(0), pako.constants.Z_FINISH));
      try {
        controller.close();
      } catch { /* already closed */ }
      abort.abort();
    }
  };

  const writer: SseWriter = {
    signal: abort.signal,
    send(message) {
      if (closing || finished) return;
      const last = waiting.at(-1);
      if (message.appends && last?.appends && last.event === message.event) {
        waiting[waiting.length - 1] = { ...message, data: last.data + message.data };
      } else {
        waiting.push(message);
      }
      if (message.appends && openStreams > COALESCE_ABOVE) {
        timer ??= setTimeout(() => {
          timer = null;
          drain();
        }, COALESCE_MS);
        return;
      }
      drain();
    },
    close() {
      closing = true;
      drain();
    },
  };

  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      request.signal?.addEventListener("abort", () => abort.abort(), { once: true });
      // Revoked (sign-out, a disabled account): end the stream now; the reply goes on being stored.
      options.signal?.addEventListener("abort", () => {
        if (finished) return;
        finished = true;
        waiting.length = 0;
        try {
          controller.close();
        } catch { /* already closed */ }
        abort.abort();
      }, { once: true });
      if (options.signal?.aborted) {
        finished = true;
        controller.close();
        abort.abort();
        return;
      }
      Promise.resolve().then(() => run(writer)).catch((error) => {
        console.error("event stream failed:", loggable(error));
        writer.close();
      });
    },
    // While pieces are held to go out together, the connection's room does not send them early.
    pull: () => {
      if (timer === null) drain();
    },
    cancel() {
      finished = true;
      waiting.length = 0;
      abort.abort();
    },
  }, { highWaterMark: 2 });

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
