/**
 * What every page view needs besides its own data.
 */

/** URLs of static assets, with content hashes for caching. */
export interface Assets {
  /** `/static/<name>?v=<hash>`; throws for a file that is not in static/. */
  url(name: string): string;
}

/** Request-independent facts the layout shows. */
export interface PageContext {
  assets: Assets;
  /** The current path, to mark the active navigation item. */
  path: string;
}
