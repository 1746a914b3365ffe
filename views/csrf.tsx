/**
 * The anti-forgery field every POST form carries. It reads the token from the request being rendered (Hono's
 * context storage), so forms deep inside fragments need no token threaded through their props.
 */
import { getContext } from "hono/context-storage";

/** Name of the form field (htmx requests also send it as the X-CSRF-Token header). */
export const CSRF_FIELD = "_csrf";

/** The current request's token, or "" outside a signed-in request. */
export function currentCsrfToken(): string {
  try {
    const c = getContext<{ Variables: { auth?: { csrfToken: string }; loginCsrf?: string } }>();
    return c.get("auth")?.csrfToken ?? c.get("loginCsrf") ?? "";
  } catch {
    return ""; // rendered outside a request (a unit test of a view)
  }
}

/** A hidden input with the token; nothing when there is no token. */
export function CsrfField() {
  const token = currentCsrfToken();
  return token ? <input type="hidden" name={CSRF_FIELD} value={token} /> : null;
}
