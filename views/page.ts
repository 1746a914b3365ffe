/**
 * What every page view needs besides its own data.
 */

/** URLs of static assets, with content hashes for caching. */
export interface Assets {
  /** `/static/<name>?v=<hash>`; throws for a file that is not in static/. */
  url(name: string): string;
}

/** The signed-in user, as the layout shows them. */
export interface PageUser {
  id: string;
  email: string;
  name: string | null;
  role: "clinician" | "educator" | "admin";
}

/** Request facts the layout shows. */
export interface PageContext {
  assets: Assets;
  /** The current path, to mark the active navigation item. */
  path: string;
  /** Null on the sign-in and set-up pages. */
  user?: PageUser | null;
  /** The session's anti-forgery token: forms carry it, htmx sends it as a header. */
  csrf?: string;
  /** This response's CSP nonce, for the page's script tags. */
  nonce?: string;
}
