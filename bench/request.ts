/**
 * deno task bench:request: the time Rounds adds before the model sees a clinician's question.
 *
 * Rounds runs as its own process (`deno task start`'s command) on PGlite, or on Postgres with --database-url,
 * over a knowledge base of --snippets synthetic snippets (100,000 by default; made once with `deno task ingest`
 * and kept for the next run), talking to the endpoint stub. The snippets and questions come from a word-pair
 * chain learned from the project's sample corpus and example cases (`--corpus project`, about 4,000 words), or
 * from the old 70-word vocabulary (`--corpus uniform`, pessimistic: its texts are all alike). This process signs in through the real forms and
 * posts messages as the composer does; the figure is the stub's receive time of the generation request minus
 * the moment the POST was sent (one clock: the stub runs here). Beside it, the floor measured in the same run:
 * the round trip of `GET /healthz` (HTTP plus one database query), and on Postgres a bare `select 1` from here.
 *
 *   deno task bench:request [--snippets 100000] [--messages 200] [--corpus project|uniform]
 *                           [--database-url postgres://…] [--prepared on|off] [--data-dir D] [--pause S]
 *
 * --pause S waits S seconds before each measured message, as questions in a quiet clinic come: over a minute
 * apart, what a server keeps warm between questions (its database connections) shows.
 *
 * A Postgres database holds one corpus: give each its own database.
 */
import { join } from "node:path";
import postgres from "postgres";
import { countSnippets } from "../db/snippets.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { defaultMinScore, retrieve } from "../knowledge/retrieve.ts";
import { loadVocabulary } from "../knowledge/vocabulary.ts";
import { startStub } from "../tests/support/endpoint_stub.ts";
import { signInOverHttp, startServer } from "../tests/support/server_process.ts";
import { readAll } from "../tests/support/sse_client.ts";
import { freePort } from "../tests/support/test_app.ts";
import { openTaskDatabase } from "../tasks/cli.ts";
import { cpuTimes, postgresCpuMs, processCpu, stealPercent } from "./host_cpu.ts";
import { corpusText, syntheticRow, syntheticText } from "./synthetic.ts";
import { benchArgs, percentile } from "./common.ts";

const args = benchArgs();
const SNIPPETS = Number(args.get("snippets") ?? 100_000);
const MESSAGES = Number(args.get("messages") ?? 200);
const WARMUP = 10;
/**
 * Other questions of the same kind the search alone answers first, as a server that has been answering has: a
 * process that has just opened PGlite runs its WebAssembly unoptimised until V8 has recompiled the hot
 * functions, and with 10 questions of warm-up the search alone measured p95 15.7–26.9 ms where the same code
 * took 7.2–8.0 in a process that had answered 150 (2026-12-07).
 */
const SEARCH_WARMUP = 150;
/** Seconds of silence before each measured message (a quiet clinic: the server's idle connections may close). */
const PAUSE_S = Number(args.get("pause") ?? 0);
const DATABASE_URL = args.get("database-url") || null;
const CORPUS = args.get("corpus") ?? "project";
if (CORPUS !== "project" && CORPUS !== "uniform") throw new Error("--corpus must be project or uniform");
const DATA_DIR = args.get("data-dir") ??
  `.data/bench-request-${SNIPPETS}${CORPUS === "project" ? "-project" : ""}`;

const clock = () => performance.timeOrigin + performance.now();
const ms = (n: number) => n.toFixed(1);

const text = CORPUS === "project" ? await corpusText(7) : syntheticText(7);
const sentence = text.sentence;

/** Questions as clinicians type them: a plain question, one with a pasted lab line, a short follow-up. */
function question(i: number): string {
  switch (i % 3) {
    case 0:
      return `Adult with ${sentence(12)} for two weeks: what should I check first?`;
    case 1:
      return `Labs today: Hb 98 g/L, CRP 187 mg/L, eGFR 31\u00a0mL/min. ${sentence(10)} — next steps?`;
    default:
      return `And the dose for a ${sentence(3)}?`;
  }
}

/** Fills the knowledge base with synthetic snippets through `deno task ingest`, unless it already holds them. */
async function prepareKnowledge(env: Record<string, string>): Promise<number> {
  const database = await openTaskDatabase({
    databaseUrl: DATABASE_URL,
    databasePoolSize: 1,
    dataDir: DATA_DIR,
  });
  let stored: number;
  try {
    stored = await countSnippets(database.db);
  } finally {
    await database.close();
  }
  if (stored >= SNIPPETS) return stored;
  const dir = await Deno.makeTempDir({ prefix: "rounds-bench-request-" });
  const path = join(dir, "healthcaremagic.json");
  const rows = Array.from(
    { length: SNIPPETS - stored },
    (_, i) => JSON.stringify(syntheticRow(stored + i, text)),
  );
  await Deno.writeTextFile(path, `[\n${rows.join(",\n")}\n]\n`);
  console.log(
    `Loading ${(SNIPPETS - stored).toLocaleString("en")} synthetic snippets with deno task ingest…`,
  );
  const ingest = await new Deno.Command(Deno.execPath(), {
    args: ["task", "ingest", path, "--source-name", "Synthetic"],
    env: { ...env, NO_COLOR: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  await Deno.remove(dir, { recursive: true });
  if (!ingest.success) throw new Error("deno task ingest failed");
  return SNIPPETS;
}

async function main(): Promise<void> {
  const port = freePort();
  const env: Record<string, string> = DATABASE_URL ? { DATABASE_URL } : { DATA_DIR };
  const stored = await prepareKnowledge(env);
  const stub = startStub({ defaultScript: { tokens: ["Consider", " a", " viral", " cause."] } });
  const server = startServer({
    ...env,
    PORT: String(port),
    INFERENCE_URL: stub.url,
    RATE_LIMIT_MESSAGES_PER_MINUTE: "10000",
    DAILY_TOKEN_BUDGET: "0",
    PATH: Deno.env.get("PATH") ?? "",
    ...(args.has("prepared") ? { DATABASE_PREPARED_STATEMENTS: args.get("prepared")! } : {}),
  });
  try {
    await server.waitFor(/listening on http/, 120_000);
    const base = `http://127.0.0.1:${port}`;
    const http = await signInOverHttp(base);
    const added: number[] = [];
    // By kind of message: a chat's first, a later new subject, a follow-up (searched with what it continues).
    const byKind = new Map<string, number[]>();
    const floor: number[] = [];
    const asked: string[] = [];
    const cpuBefore = cpuTimes();
    // Rounds' and Postgres's CPU over the measured messages (and their /healthz), read as the warm-up ends.
    let serverCpu: { cpuMs: number } | null = null;
    let postgresCpu: number | null = null;
    let session = "";
    for (let i = 0; i < MESSAGES + WARMUP; i++) {
      // Ten messages per chat: later ones carry history, as real conversations do.
      if (i % 10 === 0) {
        const created = await http.fetch("/sessions", {
          method: "POST",
          redirect: "manual",
          body: new URLSearchParams(),
        });
        await created.body?.cancel();
        session = created.headers.get("location")!.split("/").pop()!;
      }
      if (i === WARMUP) {
        serverCpu = processCpu(server.child.pid);
        postgresCpu = DATABASE_URL ? postgresCpuMs() : null;
      }
      if (i >= WARMUP && PAUSE_S > 0) await new Promise((resolve) => setTimeout(resolve, PAUSE_S * 1000));
      const before = stub.requests.length;
      const sent = clock();
      const response = await http.fetch(`/sessions/${session}/messages`, {
        method: "POST",
        headers: { "hx-request": "true", "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ content: question(i), client_id: crypto.randomUUID() }),
      });
      asked.push(question(i));
      await readAll(response);
      const request = stub.requests[before];
      if (!request) {
        throw new Error(`Message ${i} never reached the endpoint:\n${server.output().slice(-2000)}`);
      }
      if (i >= WARMUP) {
        added.push(request.receivedAt - sent);
        const kind = i % 10 === 0
          ? "a chat's first message"
          : i % 3 === 2
          ? "a follow-up"
          : "a later new subject";
        byKind.set(kind, byKind.get(kind) ?? []).get(kind)!.push(request.receivedAt - sent);
      }
      const pinged = clock();
      await (await http.fetch("/healthz")).body?.cancel();
      if (i >= WARMUP) floor.push(clock() - pinged);
    }
    const stealOver = stealPercent(cpuBefore, cpuTimes());
    const serverCpuAfter = processCpu(server.child.pid);
    const postgresCpuAfter = DATABASE_URL ? postgresCpuMs() : null;
    const bare: number[] = [];
    if (DATABASE_URL) {
      const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
      for (let i = 0; i < MESSAGES; i++) {
        const t = clock();
        await sql`select 1`;
        bare.push(clock() - t);
      }
      await sql.end();
    }
    // The search alone, for the same questions, once the server is gone (PGlite allows one process): where the
    // rest of the figure goes is the other statements, HTTP and the engine.
    server.kill("SIGTERM");
    await server.status;
    const searched = await searchAlone(asked, Array.from({ length: SEARCH_WARMUP }, (_, i) => question(i)));
    const driver = DATABASE_URL ? "Postgres" : "PGlite";
    const target = DATABASE_URL ? 10 : 15;
    console.log(
      `\nTime Rounds adds before the model sees the request: ${driver}, ${
        stored.toLocaleString("en")
      } snippets (${CORPUS} corpus), ` +
        `${MESSAGES} messages (after ${WARMUP} warm-up${
          PAUSE_S > 0 ? `; each after ${PAUSE_S} s of silence` : ""
        }), ` +
        `host steal ${stealOver?.toFixed(1) ?? "?"}%\n`,
    );
    console.log("| Measure | p50 | p95 | p99 | max |");
    console.log("| --- | ---: | ---: | ---: | ---: |");
    const row = (label: string, values: number[]) =>
      console.log(
        `| ${label} | ${ms(percentile(values, 50))} ms | ${ms(percentile(values, 95))} ms | ` +
          `${ms(percentile(values, 99))} ms | ${ms(Math.max(...values))} ms |`,
      );
    row(`**POST sent → endpoint received** (target p95 ≤ ${target} ms)`, added);
    for (const [kind, values] of [...byKind].sort()) row(`of which ${kind} (${values.length})`, values);
    row("floor: GET /healthz (HTTP + one query)", floor);
    if (bare.length) row("floor: bare `select 1` from here", bare);
    row(
      `of which: the search alone (retrieve(), same questions, after the run and ${SEARCH_WARMUP} others)`,
      searched,
    );
    const perMessage = (before: number | null | undefined, after: number | null | undefined) =>
      before == null || after == null ? "–" : ms((after - before) / MESSAGES);
    console.log(
      `\nCPU per message (10 ms clock ticks; with its reply's streaming and saving, and a /healthz): Rounds ${
        perMessage(serverCpu?.cpuMs, serverCpuAfter?.cpuMs)
      } ms${
        DATABASE_URL ? `, Postgres ${perMessage(postgresCpu, postgresCpuAfter)} ms` : " (PGlite's included)"
      }`,
    );
    if (PAUSE_S > 0) console.log(`\nEach message after the pause, in order: ${added.map(ms).join(", ")} ms`);
    const p95 = percentile(added, 95);
    console.log(`\np95 ${ms(p95)} ms: ${p95 <= target ? "meets" : "misses"} the target of ${target} ms`);
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* it exited already: its output is in the error */ }
    await server.status;
    if (args.has("server-log")) await Deno.writeTextFile(args.get("server-log")!, server.output());
    await stub.close();
  }
}

/**
 * retrieve() for each question as chat searches it (lexical embedder, clinical vocabulary, k 5, the default
 * threshold; every question alone, as a new subject is), after the warm-up questions and WARMUP of them:
 * milliseconds each.
 */
async function searchAlone(questions: string[], warmUp: string[]): Promise<number[]> {
  const database = await openTaskDatabase({
    databaseUrl: DATABASE_URL,
    databasePoolSize: 1,
    dataDir: DATA_DIR,
  });
  try {
    const embedder = createLexicalEmbedder();
    const vocabulary = await loadVocabulary(null);
    const times: number[] = [];
    for (const [i, text] of [...warmUp, ...questions].entries()) {
      const started = clock();
      await retrieve(database.db, embedder, text, {
        k: 5,
        minScore: defaultMinScore(embedder.id),
        vocabulary,
      });
      if (i >= warmUp.length + WARMUP) times.push(clock() - started);
    }
    return times;
  } finally {
    await database.close();
  }
}

if (import.meta.main) await main();
