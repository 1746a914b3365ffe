/**
 * The knowledge base in the browser: the sources page with a corpus search, and one page per snippet.
 */
import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Db } from "../db/client.ts";
import { getSnippet, sourceCounts } from "../db/snippets.ts";
import { retrieve } from "../knowledge/retrieve.ts";
import type { KnowledgeSettings } from "../knowledge/retrieve.ts";
import { stripControlCharacters } from "../safety/limits.ts";
import {
  knowledgePage,
  type KnowledgeView,
  searchResultsFragment,
  snippetPage,
  type SourceSummary,
} from "../views/knowledge.tsx";
import type { PageContext } from "../views/page.ts";

/** What the knowledge routes need. */
export interface KnowledgeDeps {
  db: Db;
  knowledge: KnowledgeSettings;
  pageContext: (c: Context, path?: string) => PageContext;
}

const MAX_QUERY_CHARS = 2000;
const RESULTS = 10;

/** The knowledge routes. */
export function knowledgeRoutes(deps: KnowledgeDeps): Hono {
  const app = new Hono();
  const { db, knowledge } = deps;

  async function view(c: Context): Promise<KnowledgeView> {
    const q = stripControlCharacters(c.req.query("q") ?? "").trim();
    const source = c.req.query("source")?.trim() ?? "";
    const specialty = c.req.query("specialty")?.trim() ?? "";
    const counts = await sourceCounts(db);
    const bySource = new Map<string, SourceSummary>();
    for (const row of counts) {
      const summary = bySource.get(row.source) ?? { source: row.source, total: 0, specialties: [] };
      summary.total += row.count;
      summary.specialties.push({ specialty: row.specialty, count: row.count });
      bySource.set(row.source, summary);
    }
    const specialties = [...new Set(counts.flatMap((r) => r.specialty ? [r.specialty] : []))].sort();
    const base = {
      sources: [...bySource.values()],
      specialties,
      embedder: knowledge.embedder.description,
      minScore: knowledge.minScore,
      query: { q, source, specialty, k: RESULTS },
      result: null,
      error: null,
    };
    if (!q) return base;
    if (q.length > MAX_QUERY_CHARS) {
      return {
        ...base,
        error: `A search can be at most ${MAX_QUERY_CHARS} characters; this one has ${q.length}`,
      };
    }
    const result = await retrieve(db, knowledge.embedder, q, {
      k: RESULTS,
      minScore: knowledge.minScore,
      filters: { sources: source ? [source] : [], specialties: specialty ? [specialty] : [] },
      vocabulary: knowledge.vocabulary,
      reranker: knowledge.reranker,
      rerankTop: knowledge.rerankTop,
    });
    return { ...base, result };
  }

  app.get("/knowledge", async (c) => c.html(knowledgePage(deps.pageContext(c), await view(c))));

  app.get("/knowledge/search", async (c) => {
    const data = await view(c);
    if (!c.req.header("hx-request")) {
      const query = new URL(c.req.url).search;
      return c.redirect(`/knowledge${query}`, 303);
    }
    return c.html(searchResultsFragment(data));
  });

  app.get("/snippets/:id", async (c) => {
    const snippet = await getSnippet(db, c.req.param("id") ?? "");
    if (!snippet) {
      throw new HTTPException(404, {
        message: "This snippet is not in the knowledge base. It may have been removed or re-ingested.",
      });
    }
    return c.html(snippetPage(deps.pageContext(c), snippet));
  });

  return app;
}
