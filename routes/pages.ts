/**
 * Plain pages: the home page.
 */
import { Hono } from "hono";
import { homePage, type SystemSummary } from "../views/home.tsx";
import type { PageContext } from "../views/page.ts";

/** What the page routes need. */
export interface PagesDeps {
  system: SystemSummary;
  pageContext: (path: string) => PageContext;
}

/** GET / */
export function pageRoutes(deps: PagesDeps): Hono {
  const app = new Hono();
  app.get("/", (c) => c.html(homePage(deps.pageContext(c.req.path), deps.system)));
  return app;
}
