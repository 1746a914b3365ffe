/**
 * deno task search [--json] [--k N] [--source S] [--specialty X] [--min-score F] "<query>"
 *
 * Searches the knowledge base of the configured database exactly as chat answers do (hybrid vector + full text,
 * fused, held to the minimum similarity) and prints the top k.
 */
import { loadVocabulary } from "../knowledge/vocabulary.ts";
import { parseArgs } from "node:util";
import { loadConfig } from "../config.ts";
import { createEmbedder } from "../inference/embeddings.ts";
import { createConfiguredReranker } from "../inference/rerank.ts";
import { EndpointError } from "../inference/endpoint.ts";
import { prepareVectorStore } from "../knowledge/embedder.ts";
import { defaultMinScore, retrieve } from "../knowledge/retrieve.ts";
import { openTaskDatabase, parseTaskArgs, runTask, TaskExit } from "./cli.ts";

const USAGE = `Usage: deno task search [--json] [--k N] [--source S] [--specialty X] [--min-score F] "<query>"

  --k N            results to show (default 5, at most 100)
  --source S       only this source (repeatable)
  --specialty X    only this specialty (repeatable)
  --min-score F    minimum cosine similarity, 0-1 (default: RETRIEVAL_MIN_SCORE or the embedder's default)
  --json           print a JSON array of { id, score, source, sourceId, text }`;

async function main(): Promise<number> {
  const parsed = parseTaskArgs(() =>
    parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        json: { type: "boolean" },
        k: { type: "string" },
        source: { type: "string", multiple: true },
        specialty: { type: "string", multiple: true },
        "min-score": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }), USAGE);
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const query = positionals.join(" ").trim();
  if (!query) {
    console.error(`Give a query to search for.\n\n${USAGE}`);
    return 2;
  }
  const k = Number(values.k ?? 5);
  if (!Number.isInteger(k) || k < 1 || k > 100) {
    console.error(`--k must be an integer from 1 to 100, got ${JSON.stringify(values.k)}`);
    return 2;
  }
  const minScoreArg = values["min-score"] === undefined ? null : Number(values["min-score"]);
  if (minScoreArg !== null && !(minScoreArg >= 0 && minScoreArg <= 1)) {
    console.error(`--min-score must be a number from 0 to 1, got ${JSON.stringify(values["min-score"])}`);
    return 2;
  }
  const config = loadConfig(Deno.env.toObject());
  const database = await openTaskDatabase(config);
  // An embedding server's refusal is the server's reason on one line, not a stack trace.
  const asTaskExit = (error: unknown): never => {
    throw error instanceof EndpointError ? new TaskExit(1, error.message) : error;
  };
  try {
    const embedder = await createEmbedder(config).catch(asTaskExit);
    const switched = await prepareVectorStore(database.db, embedder);
    if (switched) console.error(switched);
    const minScore = minScoreArg ?? config.retrievalMinScore ?? defaultMinScore(embedder.id);
    const result = await retrieve(database.db, embedder, query, {
      k,
      minScore,
      filters: { sources: values.source ?? [], specialties: values.specialty ?? [] },
      vocabulary: await loadVocabulary(config.clinicalVocabulary),
      reranker: await createConfiguredReranker(config).catch(asTaskExit),
      rerankTop: config.rerankTop,
    }).catch(asTaskExit);
    if (values.json) {
      const out = result.results.map((r) => ({
        id: r.snippet.id,
        score: Number(r.score.toFixed(4)),
        source: r.snippet.source,
        sourceId: r.snippet.sourceId,
        text: r.snippet.text,
      }));
      console.log(JSON.stringify(out, null, 2));
      return 0;
    }
    if (result.evidence === "empty") {
      console.log("The knowledge base is empty. Load one with `deno task ingest data/corpus`.");
      return 0;
    }
    if (result.results.length === 0) {
      const best = result.bestScore === null
        ? "no candidate at all"
        : `the closest scored ${result.bestScore.toFixed(3)}`;
      console.log(
        `Nothing reaches the minimum similarity ${minScore} (${best}). Try --min-score 0 to see it.`,
      );
      return 0;
    }
    const width = Math.min(Deno.stdout.isTerminal() ? Deno.consoleSize().columns : 120, 160);
    for (const r of result.results) {
      const head =
        `${String(r.rank).padStart(2)}. ${r.score.toFixed(3)}  ${r.snippet.source}  ${r.snippet.sourceId}` +
        (r.snippet.specialty ? `  (${r.snippet.specialty})` : "") + `  ${r.snippet.id}`;
      const text = r.snippet.text.replace(/\s+/g, " ");
      const room = Math.max(40, width - 6) * 2;
      console.log(`${head}\n      ${text.length > room ? text.slice(0, room - 1) + "…" : text}`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

if (import.meta.main) Deno.exit(await runTask(main));
