/**
 * deno task ingest <file|dir>… [--format F] [--source-name S] [--specialty X] [--batch-size N]
 * deno task ingest --reembed
 * deno task ingest --compact
 *
 * Reads dataset files into the knowledge base of the configured database (DATABASE_URL, or PGlite in DATA_DIR),
 * embedding with the configured embedder. Safe to repeat (nothing is added twice) and to interrupt (the same
 * command resumes where it stopped). `--reembed` moves the knowledge base and the case library to the configured
 * embedder, changing the embedding columns' dimension when it differs. `--compact` rewrites the knowledge base's
 * table in its current layout (snippets stored before migration 0011 keep their vectors out of line until then).
 */
import { parseArgs } from "node:util";
import { relative, resolve } from "node:path";
import { loadConfig } from "../config.ts";
import type { Database } from "../db/client.ts";
import {
  closeVectorColumns,
  compactSnippets,
  countSnippets,
  dropVectorIndex,
  ensureVectorIndex,
  MAX_INDEXED_DIMENSIONS,
  openVectorColumns,
  refreshSearchTerms,
  searchTermsMissing,
  snippetStorage,
  vectorColumns,
  vectorIndexBuildProgress,
} from "../db/snippets.ts";
import { reembedCases } from "../cases/library.ts";
import { createEmbedder } from "../inference/embeddings.ts";
import { EndpointError } from "../inference/endpoint.ts";
import { type Embedder, prepareVectorStore } from "../knowledge/embedder.ts";
import { ingestFile, type IngestSummary, inputFiles, readManifest, reembedAll } from "../knowledge/ingest.ts";
import { GzipBombError, UnknownFormatError } from "../knowledge/parsers.ts";
import { UnreadableFileError } from "../knowledge/parse_document.ts";
import { type ColumnMapping, type FormatName, FORMATS } from "../knowledge/records.ts";
import { openTaskDatabase, parseTaskArgs, runTask, TaskExit } from "./cli.ts";
import { formatDuration, startProgress } from "./progress.ts";

const USAGE = `Usage:
  deno task ingest <file|dir>… [options]   add dataset files to the knowledge base
  deno task ingest --reembed               re-embed every snippet and case with the configured embedder
                                           (changing the stored dimension to the embedder's when it differs)
  deno task ingest --compact               rewrite the knowledge base's table so that every snippet is stored
                                           in the current layout (after upgrading past migration 0011, or after
                                           deleting many snippets); searches wait while it runs

Options:
  --format <name>        ${FORMATS.join(", ")} (default: detected from content)
  --source-name <name>   source name shown with each snippet (default: from the format / file name)
  --specialty <name>     specialty for records that carry none
  --answer-column <c>    CSV/Parquet: the column holding the answers (default: answer, output, response,
                         long_answer, text… whichever the header has)
  --question-column <c>  CSV/Parquet: the column holding the questions (default: question, input, patient…)
  --title-column <c>     CSV/Parquet: a title for each row (default: title, description, topic, focus…)
  --id-column <c>        CSV/Parquet: each row's id (default: id, qid, pmid…; else the row number)
  --title <text>         PDF, Word, HTML, Markdown, text: the title its passages are cited by (default: the
                         document's own title, else the file name)
  --batch-size <n>       snippets per stored batch (default 500)
  --show-skips <n>       skipped records to list per file (default 20; all are counted)
  --bulk / --no-bulk     drop the vector index during the load and build it once at the end (default: when
                         the input looks at least as large as what is stored, and over ~5,000 records)
  --help

A directory is read recursively; a manifest.json in it may give per-file format, source and specialty.
The database and embedder come from the environment (DATABASE_URL / DATA_DIR, EMBEDDING_URL / EMBEDDING_MODEL /
EMBEDDING_API / EMBEDDING_API_KEY).`;

const number = (n: number) => n.toLocaleString("en");

async function main(): Promise<number> {
  const args = parseTaskArgs(() =>
    parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        format: { type: "string" },
        "source-name": { type: "string" },
        specialty: { type: "string" },
        "answer-column": { type: "string" },
        "question-column": { type: "string" },
        "title-column": { type: "string" },
        "id-column": { type: "string" },
        title: { type: "string" },
        "batch-size": { type: "string" },
        "show-skips": { type: "string" },
        reembed: { type: "boolean" },
        compact: { type: "boolean" },
        bulk: { type: "boolean" },
        "no-bulk": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }), USAGE);
  const { values, positionals } = args;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const format = values.format as FormatName | undefined;
  if (format && !(FORMATS as readonly string[]).includes(format)) {
    console.error(`--format must be one of ${FORMATS.join(", ")}, got ${JSON.stringify(format)}`);
    return 2;
  }
  const batchSize = values["batch-size"] ? Number(values["batch-size"]) : undefined;
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 100_000)) {
    console.error(
      `--batch-size must be an integer from 1 to 100000, got ${JSON.stringify(values["batch-size"])}`,
    );
    return 2;
  }
  const showSkips = Number(values["show-skips"] ?? 20);
  if (values.compact && (values.reembed || positionals.length > 0)) {
    console.error(`--compact runs on its own: give it no files and no --reembed.\n\n${USAGE}`);
    return 2;
  }
  if (!values.reembed && !values.compact && positionals.length === 0) {
    console.error(`Name a file or directory to ingest.\n\n${USAGE}`);
    return 2;
  }
  for (const path of positionals) {
    try {
      await Deno.stat(path);
    } catch {
      console.error(`Cannot read ${path}: no such file or directory`);
      return 1;
    }
  }

  const config = loadConfig(Deno.env.toObject());
  const database = await openTaskDatabase(config);
  if (values.compact) {
    try {
      return await compact(database);
    } finally {
      await database.close();
    }
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort(new DOMException("Interrupted", "AbortError"));
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const embedder = await createEmbedder(config).catch(asTaskExit);
    console.error(`database: ${database.description}`);
    console.error(`embeddings: ${embedder.description}`);
    if (values.reembed) return await reembed(database, embedder).catch(asTaskExit);
    const switched = await prepareVectorStore(database.db, embedder);
    if (switched) console.error(switched);
    const inputBytes = await totalBytes(positionals);
    const stored = await countSnippets(database.db);
    // ~600 bytes a record in the real datasets: a rough guess is enough to choose the loading strategy.
    const bulk = values["no-bulk"] ? false : values.bulk ?? (inputBytes / 600 >= Math.max(5000, stored));
    let dropped = false;
    // Dropped only once there is something new to store: re-running a finished ingest costs no rebuild.
    const dropIndex = async () => {
      if (dropped) return;
      dropped = true;
      console.error("bulk load: the vector index is dropped now and built once at the end");
      await dropVectorIndex(database.db);
    };
    try {
      return await ingestAll(database, embedder, positionals, {
        format,
        sourceName: values["source-name"],
        specialty: values.specialty,
        columns: {
          answer: values["answer-column"],
          question: values["question-column"],
          title: values["title-column"],
          id: values["id-column"],
        },
        title: values.title,
        batchSize,
        showSkips,
        signal: controller.signal,
        beforeFirstInsert: bulk ? dropIndex : undefined,
      }).catch(asTaskExit);
    } finally {
      await rebuildIndex(database);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await database.close();
  }
}

async function ingestAll(
  database: Database,
  embedder: Embedder,
  paths: string[],
  options: {
    format?: FormatName;
    sourceName?: string;
    specialty?: string;
    columns?: ColumnMapping;
    title?: string;
    batchSize?: number;
    showSkips: number;
    signal: AbortSignal;
    beforeFirstInsert?: () => Promise<void>;
  },
): Promise<number> {
  const started = performance.now();
  const totals = { files: 0, read: 0, added: 0, duplicates: 0, skipped: 0, failed: 0 };
  for (const root of paths) {
    const isDir = (await Deno.stat(root)).isDirectory;
    const manifest = isDir ? await readManifest(root) : {};
    for (const file of await inputFiles(root)) {
      const entry = manifest[relative(resolve(root), resolve(file))] ?? {};
      const progress = startProgress(file, { unit: "records" });
      let shown = 0;
      let summary: IngestSummary;
      try {
        summary = await ingestFile(database.db, embedder, file, {
          format: options.format ?? entry.format,
          sourceName: options.sourceName ?? entry.source,
          specialty: options.specialty ?? entry.specialty,
          columns: options.columns,
          title: options.title,
          batchSize: options.batchSize,
          signal: options.signal,
          beforeFirstInsert: options.beforeFirstInsert,
          onProgress: (p) =>
            progress.update(
              p.records,
              `added ${number(p.added)}, duplicates ${number(p.duplicates)}, skipped ${number(p.skipped)}`,
              p.bytesTotal > 0 ? p.bytesRead / p.bytesTotal : undefined,
            ),
          onSkip: (skip) => {
            if (shown++ < options.showSkips) {
              progress.finish();
              console.error(`  skipped ${skip.location}: ${skip.reason}`);
            }
          },
        });
      } catch (error) {
        progress.finish();
        if (options.signal.aborted) {
          console.error(
            `\nInterrupted while reading ${file}. What was stored is kept; run the same command again to ` +
              `resume where it stopped.`,
          );
          return 130;
        }
        if (
          error instanceof UnknownFormatError || error instanceof GzipBombError ||
          error instanceof UnreadableFileError
        ) {
          console.error(error.message);
          totals.failed++;
          continue;
        }
        throw error;
      }
      progress.finish();
      if (shown > options.showSkips) {
        console.error(`  … and ${number(shown - options.showSkips)} more skipped records`);
      }
      totals.files++;
      totals.read += summary.read;
      totals.added += summary.added;
      totals.duplicates += summary.duplicates;
      totals.skipped += summary.skipped;
      const rate = summary.seconds > 0 ? Math.round(summary.read / summary.seconds) : summary.read;
      const resumed = summary.resumedFrom > 0
        ? ` (resumed after record ${number(summary.resumedFrom)} of an interrupted run)`
        : "";
      console.log(
        `${file} [${summary.format}]${resumed}: read ${number(summary.read)}, added ${
          number(summary.added)
        }, ` +
          `duplicates ${number(summary.duplicates)}, skipped ${number(summary.skipped)} · ` +
          `${summary.seconds.toFixed(1)} s, ${number(rate)} records/s (embedding ${
            summary.embedSeconds.toFixed(1)
          } s)`,
      );
    }
  }
  if (totals.added > 0 || await searchTermsMissing(database.db)) {
    // Full-text search ranks by the rarer terms of a question: their counts follow what was just added.
    const termsStarted = performance.now();
    const terms = await refreshSearchTerms(database.db);
    console.error(
      `search terms counted: ${number(terms)} in ${
        formatDuration((performance.now() - termsStarted) / 1000)
      }`,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `Done: ${number(totals.files)} file(s) · read ${number(totals.read)} · added ${number(totals.added)} · ` +
      `duplicates ${number(totals.duplicates)} · skipped ${number(totals.skipped)}` +
      (totals.failed ? ` · ${totals.failed} file(s) not read (said above)` : "") +
      ` · ${formatDuration(seconds)} · knowledge base now ${
        number(await countSnippets(database.db))
      } snippets`,
  );
  if (totals.added === 0 && totals.duplicates > 0 && totals.failed === 0) {
    console.log("Nothing new: every snippet was already in the knowledge base.");
  }
  return totals.failed > 0 ? 1 : 0;
}

async function totalBytes(paths: string[]): Promise<number> {
  let sum = 0;
  for (const root of paths) for (const file of await inputFiles(root)) sum += (await Deno.stat(file)).size;
  return sum;
}

/** Builds the vector index if a bulk load (this one, or an earlier interrupted one) left it missing. */
async function rebuildIndex(database: Database): Promise<void> {
  const started = performance.now();
  // Minutes for a large corpus. Postgres reports how far the build is to other sessions; PGlite has one session
  // (busy building, on its own thread), so there the display can only say how long it has been running.
  const progress = startProgress("building the vector index (HNSW)");
  let polling = false;
  let finished = false;
  const poll = setInterval(async () => {
    if (polling || finished) return;
    polling = true;
    try {
      const state = database.driver === "postgres" ? await vectorIndexBuildProgress(database.db) : null;
      if (finished) return; // the build ended while the progress view was read
      progress.update(
        0,
        state ? `${number(state.rows)} snippets linked` : "",
        state?.fraction ?? undefined,
      );
    } catch {
      // A failed look at the progress view must not end the build.
    } finally {
      polling = false;
    }
  }, 1000);
  let built;
  try {
    built = await ensureVectorIndex(database.db, {
      maintenanceWorkMem: database.driver === "postgres" ? "1GB" : "256MB",
    });
  } finally {
    finished = true;
    clearInterval(poll);
    progress.finish();
  }
  if (built) console.error(`vector index built in ${formatDuration((performance.now() - started) / 1000)}`);
}

/** An embedding server's refusal is the server's reason on one line, not a stack trace. */
function asTaskExit(error: unknown): never {
  throw error instanceof EndpointError ? new TaskExit(1, error.message) : error;
}

/**
 * Re-embeds every snippet and case another embedder made. When the embedder's dimension differs from the stored
 * one, the columns first accept any dimension (rows change one by one; an interrupted run resumes), then declare
 * the new one, and the vector index is built again.
 */
/** `--compact`: VACUUM FULL of the snippets table, with its size before and after. */
async function compact(database: Database): Promise<number> {
  console.error(`database: ${database.description}`);
  const before = await snippetStorage(database.db);
  console.error(
    `compacting ${number(before.rows)} snippets (${megabytes(before.tableBytes)} in the table, ` +
      `${megabytes(before.outOfLineBytes)} stored out of line); searches wait until it ends…`,
  );
  const started = performance.now();
  // The vector index is built afresh after the rewrite, with the memory a bulk load's build has: rebuilt inside
  // VACUUM FULL it gets the server's default (64 MB), and 100,000 snippets took 13 minutes on Postgres.
  await dropVectorIndex(database.db);
  try {
    await compactSnippets(database.db);
  } finally {
    await rebuildIndex(database);
  }
  const after = await snippetStorage(database.db);
  console.log(
    `Compacted ${number(after.rows)} snippets in ${formatDuration((performance.now() - started) / 1000)}: ` +
      `${megabytes(after.tableBytes)} in the table, ${megabytes(after.outOfLineBytes)} out of line.`,
  );
  return 0;
}

const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

async function reembed(database: Database, embedder: Embedder): Promise<number> {
  const db = database.db;
  if (embedder.dimensions > MAX_INDEXED_DIMENSIONS) {
    throw new TaskExit(
      1,
      `The configured embedder ${embedder.id} makes ${embedder.dimensions}-dimension vectors; pgvector's HNSW ` +
        `index holds at most ${MAX_INDEXED_DIMENSIONS}: choose an embedding model with fewer dimensions`,
    );
  }
  const before = await vectorColumns(db);
  const reshape = before.filter((c) => c.dimensions !== embedder.dimensions);
  const stale = (columns: typeof before, table: string) =>
    columns.find((c) => c.table === table)!.embedders.filter((e) => e.embedder !== embedder.id)
      .reduce((n, e) => n + e.count, 0);
  if (reshape.length === 0 && stale(before, "snippets") + stale(before, "cases") === 0) {
    console.log(`Every snippet and case is already embedded by ${embedder.id}: nothing to do.`);
    return 0;
  }
  const started = performance.now();
  await dropVectorIndex(db);
  if (reshape.length > 0) await openVectorColumns(db, embedder);
  const open = await vectorColumns(db);
  const snippetTotal = stale(open, "snippets");
  const caseTotal = stale(open, "cases");
  let progress = startProgress("re-embedding", { unit: "snippets", total: snippetTotal });
  let done;
  let cases;
  try {
    done = await reembedAll(db, embedder, {
      total: snippetTotal,
      onProgress: (p) => progress.update(p.done),
    });
    progress.finish();
    progress = startProgress("re-embedding the case library", { unit: "cases", total: caseTotal });
    cases = await reembedCases(db, embedder, { onProgress: (n) => progress.update(n) });
    if (reshape.length > 0) await closeVectorColumns(db, embedder.dimensions);
  } finally {
    progress.finish();
    await rebuildIndex(database);
  }
  const was = [...new Set(reshape.map((c) => c.dimensions ?? "mixed"))].join(" / ");
  console.log(
    `Re-embedded ${number(done)} snippets and ${number(cases)} cases with ${embedder.id} in ${
      formatDuration((performance.now() - started) / 1000)
    }` + (reshape.length > 0 ? `; vectors now have ${embedder.dimensions} dimensions (were ${was}).` : "."),
  );
  return 0;
}

if (import.meta.main) Deno.exit(await runTask(main));
