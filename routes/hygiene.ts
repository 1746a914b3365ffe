/**
 * Input hygiene for every request, before any route reads it: an address that is not valid URL-encoded UTF-8
 * or carries a NUL gets 400; a form body that cannot be parsed gets 400; form text is made storable (NUL
 * removed, unpaired surrogates replaced) so no handler can pass Postgres a value it rejects.
 */
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { storableText } from "../safety/limits.ts";

const FORM_TYPES = /^(multipart\/form-data|application\/x-www-form-urlencoded)/i;

/** Refuses addresses Rounds cannot read, and makes form fields storable. */
export function inputHygiene(): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    let address: string;
    try {
      address = decodeURIComponent(url.pathname) + decodeURIComponent(url.search.replace(/\+/g, " "));
    } catch {
      throw new HTTPException(400, {
        message: "This address is not valid: it has a broken %-escape or bytes that are not UTF-8 text.",
      });
    }
    if (address.includes("\u0000")) {
      throw new HTTPException(400, {
        message: "This address contains a NUL character, which Rounds does not accept.",
      });
    }
    if (
      c.req.method !== "GET" && c.req.method !== "HEAD" && FORM_TYPES.test(c.req.header("content-type") ?? "")
    ) {
      let form: FormData;
      try {
        form = await c.req.formData();
      } catch {
        throw new HTTPException(400, {
          message: "The form could not be read (a broken upload or an unsupported encoding). Try again.",
        });
      }
      // Hono caches this FormData and parses every later parseBody() from it: cleaning it here cleans the form
      // for every handler after.
      for (const key of new Set(form.keys())) {
        const values = form.getAll(key);
        const cleaned = values.map((v) => typeof v === "string" ? storableText(v) : v);
        if (cleaned.some((v, i) => v !== values[i])) {
          form.delete(key);
          for (const v of cleaned) form.append(key, v);
        }
      }
    }
    await next();
  };
}

/** How long a request body may take to arrive in all, and between two of its pieces. */
export const BODY_TOTAL_MS = 30_000;
export const BODY_IDLE_MS = 10_000;

/**
 * Reads the request body before any handler, within `maxBytes` and in time: a client that sends a body slowly
 * (or stops halfway) gets 408 after `idleMs` without a byte or `totalMs` in all, instead of holding the
 * request open. Bodies are small here (256 KB at most), so holding one in memory costs little.
 */
export function bodyDeadline(options: {
  maxBytes: number;
  tooLarge: () => never;
  idleMs?: number;
  totalMs?: number;
  /** Requests whose body was read already (an upload, by its own deadline). */
  skip?: (c: Context) => boolean;
}): MiddlewareHandler {
  const idleMs = options.idleMs ?? BODY_IDLE_MS;
  const totalMs = options.totalMs ?? BODY_TOTAL_MS;
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body || options.skip?.(c)) return await next();
    const declared = Number(c.req.header("content-length") ?? NaN);
    if (declared > options.maxBytes) options.tooLarge();
    const reader = body.getReader();
    const pieces: Uint8Array[] = [];
    let size = 0;
    const started = performance.now();
    for (;;) {
      const wait = Math.max(0, Math.min(idleMs, totalMs - (performance.now() - started)));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), wait));
      const piece = await Promise.race([reader.read(), late]).finally(() => clearTimeout(timer));
      if (piece === "late") {
        reader.cancel().catch(() => {});
        throw new HTTPException(408, {
          message:
            "The request took too long to arrive, so it was not read. Nothing was saved; send it again.",
        });
      }
      if (piece.done) break;
      size += piece.value.length;
      if (size > options.maxBytes) {
        reader.cancel().catch(() => {});
        options.tooLarge();
      }
      pieces.push(piece.value);
    }
    const whole = new Uint8Array(size);
    let at = 0;
    for (const piece of pieces) {
      whole.set(piece, at);
      at += piece.length;
    }
    c.req.raw = new Request(c.req.raw, { body: whole });
    await next();
  };
}
