/**
 * The anti-forgery field every POST form carries. Views render a placeholder; the app fills in the request's
 * token when it sends the page (see fillCsrfToken), so forms deep inside fragments need no token threaded
 * through their props, and nothing request-scoped has to outlive the render.
 */

/** Name of the form field (htmx requests also send it as the X-CSRF-Token header). */
export const CSRF_FIELD = "_csrf";

/** What views put where the token goes; replaced in every HTML response before it is sent. */
export const CSRF_PLACEHOLDER = "__ROUNDS_CSRF_TOKEN__";

/** A hidden input for the token. */
export function CsrfField() {
  return <input type="hidden" name={CSRF_FIELD} value={CSRF_PLACEHOLDER} />;
}

/** The field exactly as CsrfField renders it: the only place the token goes. */
const FIELD_MARKUP = String(<CsrfField />);

/**
 * Puts the token (or nothing, outside a session) into the app's own anti-forgery fields, and nowhere else: the
 * placeholder written inside a model's reply, a case field, a title or a snippet stays as written (there the
 * quotes around it would have been escaped, so it can never match the field's markup).
 */
export function fillCsrfToken(html: string, token: string | undefined): string {
  // Tokens are base64url or UUIDs: nothing in them needs escaping in an attribute.
  const value = token && /^[\w-]+$/.test(token) ? token : "";
  return html.replaceAll(FIELD_MARKUP, FIELD_MARKUP.replace(CSRF_PLACEHOLDER, value));
}
