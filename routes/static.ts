/**
 * Static files from static/: loaded once at start-up, served from memory with content-hash URLs so they can
 * be cached for a year and still change on deploy.
 */
import { Hono } from "hono";
import { extname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { Assets } from "../views/page.ts";

/** The static/ folder next to this file. */
export const STATIC_DIR = fileURLToPath(new URL("../static", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  hash: string;
}

/** Static assets held in memory, with their URLs. */
export interface AssetStore extends Assets {
  get(name: string): Asset | undefined;
}

/** Reads every file under dir (recursively) into memory and hashes it. */
export async function loadAssets(dir: string = STATIC_DIR): Promise<AssetStore> {
  const assets = new Map<string, Asset>();
  async function walk(folder: string): Promise<void> {
    for await (const entry of Deno.readDir(folder)) {
      const path = join(folder, entry.name);
      if (entry.isDirectory) {
        await walk(path);
        continue;
      }
      const type = CONTENT_TYPES[extname(entry.name)];
      if (!entry.isFile || !type) continue;
      const body = await Deno.readFile(path);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
      const hash = Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
      assets.set(relative(dir, path).split("\\").join("/"), { body, contentType: type, hash });
    }
  }
  await walk(dir);
  return {
    get: (name) => assets.get(name),
    url(name) {
      const asset = assets.get(name);
      if (!asset) throw new Error(`Unknown static asset ${JSON.stringify(name)}: is it in static/?`);
      return `/static/${name}?v=${asset.hash}`;
    },
  };
}

/** GET /static/<name>: immutable for a year when the URL carries the current hash, revalidated otherwise. */
export function staticRoutes(assets: AssetStore): Hono {
  const app = new Hono();
  app.get("/static/*", (c) => {
    const name = decodeURIComponent(c.req.path.slice("/static/".length));
    const asset = assets.get(name);
    if (!asset) return c.text("Not found", 404);
    const etag = `"${asset.hash}"`;
    const versioned = c.req.query("v") === asset.hash;
    const headers: Record<string, string> = {
      "content-type": asset.contentType,
      "cache-control": versioned ? "public, max-age=31536000, immutable" : "no-cache",
      etag,
      "x-content-type-options": "nosniff",
    };
    if (c.req.header("if-none-match") === etag) return c.body(null, 304, headers);
    return c.body(asset.body, 200, headers);
  });
  return app;
}
