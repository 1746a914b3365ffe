/**
 * deno task bench:known-items: whether search still finds a snippet by its own words at the size of a real
 * knowledge base, where full text ranks at most a few hundred of the snippets a question matches.
 *
 * Runs over bench:request's knowledge base (100,000 synthetic snippets by default; run `deno task bench:request`
 * once to make it). Each query is nine words from a third of the way into one snippet's question, searched as chat
 * searches a new subject (`retrieve()`: lexical embedder, clinical vocabulary, k 5, no threshold); the figures
 * are how often that snippet comes first and in the top 5, and how long each search took. The snippets are a
 * fixed sample of the knowledge base (by the hash of their ids); the first --warm-up queries are not counted.
 *
 *   deno task bench:known-items [--queries 350] [--warm-up 50] [--snippets 100000]
 *                               [--database-url postgres://…] [--data-dir D]
 */
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { retrieve } from "../knowledge/retrieve.ts";
import { loadVocabulary } from "../knowledge/vocabulary.ts";
import { openTaskDatabase } from "../tasks/cli.ts";
import { countSnippets, sampleSnippets } from "../db/snippets.ts";
import { benchArgs, percentile } from "./common.ts";

const args = benchArgs();
const QUERIES = Number(args.get("queries") ?? 350);
const WARM_UP = Number(args.get("warm-up") ?? 50);
const SNIPPETS = Number(args.get("snippets") ?? 100_000);
const DATABASE_URL = args.get("database-url") || null;
const DATA_DIR = args.get("data-dir") ?? `.data/bench-request-${SNIPPETS}-project`;
/** Words of a snippet's question a query takes, and the shortest question that gives them. */
const WORDS = 9;

/** Nine words from a third of the way into a text, or null when it is too short to leave more around them. */
export function excerpt(text: string): string | null {
  const words = text.split(/\s+/).filter(Boolean);
  if (words.length < WORDS + 3) return null;
  const start = Math.floor(words.length / 3);
  return words.slice(start, start + WORDS).join(" ");
}

async function main(): Promise<void> {
  const database = await openTaskDatabase({
    databaseUrl: DATABASE_URL,
    databasePoolSize: 1,
    dataDir: DATA_DIR,
  });
  try {
    const stored = await countSnippets(database.db);
    if (stored < SNIPPETS) {
      console.error(
        `The knowledge base holds ${stored.toLocaleString("en")} snippets, not ${
          SNIPPETS.toLocaleString("en")
        }: ` +
          "run `deno task bench:request` with the same --snippets (and --database-url) once to make it.",
      );
      Deno.exitCode = 1;
      return;
    }
    const sample = (await sampleSnippets(database.db, Math.ceil((QUERIES + WARM_UP) * 1.5))).flatMap(
      (row) => {
        const query = excerpt(row.question);
        return query ? [{ id: row.id, query }] : [];
      },
    ).slice(0, QUERIES + WARM_UP);

    const embedder = createLexicalEmbedder();
    const vocabulary = await loadVocabulary(null);
    let first = 0, top5 = 0;
    const times: number[] = [];
    for (const [i, { id, query }] of sample.entries()) {
      const started = performance.now();
      const { results } = await retrieve(database.db, embedder, query, { k: 5, minScore: 0, vocabulary });
      const elapsed = performance.now() - started;
      if (i < WARM_UP) continue;
      times.push(elapsed);
      const ids = results.map((r) => r.snippet.id);
      if (ids[0] === id) first++;
      if (ids.includes(id)) top5++;
    }
    const n = times.length;
    const driver = DATABASE_URL ? "Postgres" : "PGlite";
    console.log(
      `Known items, ${stored.toLocaleString("en")} snippets, ${driver}, ${n} queries of ${WORDS} words`,
    );
    console.log(`| found first | in the top 5 | search p50 | search p95 |`);
    console.log(`| ---: | ---: | ---: | ---: |`);
    console.log(
      `| ${(first / n).toFixed(3)} | ${(top5 / n).toFixed(3)} | ${percentile(times, 50).toFixed(2)} ms | ${
        percentile(times, 95).toFixed(2)
      } ms |`,
    );
  } finally {
    await database.close();
  }
}

if (import.meta.main) await main();
