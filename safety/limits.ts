/**
 * Input limits: what a single request may carry.
 */

/** Longest message a clinician may send, in characters. */
export const MAX_MESSAGE_CHARS = 8000;

/** Longest written correction of a reply. */
export const MAX_CORRECTION_CHARS = 8000;

/** Largest request body the app reads (forms); larger ones get 413 before parsing. */
export const MAX_BODY_BYTES = 256 * 1024;

/** What a browser-made idempotency key looks like. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;

/**
 * Text as Postgres can store it: NUL removed (text and jsonb reject it) and unpaired surrogates replaced with
 * U+FFFD (jsonb rejects them). For input that must otherwise be kept as sent.
 */
export function storableText(text: string): string {
  return (text.includes("\u0000") ? text.replaceAll("\u0000", "") : text).toWellFormed();
}

/** storableText applied to every string inside a parsed JSON value (keys included). */
export function storableJson(value: unknown): unknown {
  if (typeof value === "string") return storableText(value);
  if (Array.isArray(value)) return value.map(storableJson);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableText(k), storableJson(v)]));
  }
  return value;
}

/** Control characters other than tab, newline and carriage return. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

/** Removes control characters other than tab, newline and carriage return (NUL above all: Postgres rejects it). */
export function dropControlCharacters(text: string): string {
  return text.replace(CONTROL_CHARACTERS, "");
}

/** Removes control characters other than tab and newline (they have no place in clinical text). */
export function stripControlCharacters(text: string): string {
  return dropControlCharacters(text.replace(/\r\n?/g, "\n"));
}
