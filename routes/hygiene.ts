/**
 * Input hygiene for every request, before any route reads it: an address that is not valid URL-encoded UTF-8
 * or carries a NUL gets 400; a form body that cannot be parsed gets 400; form text is made storable (NUL
 * removed, unpaired surrogates replaced) so no handler can pass Postgres a value it rejects.
 */
import type { MiddlewareHandler } from "hono";
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
