/**
 * deno task bench:ingest [--rows N] [--driver pglite|postgres|both] [--database-url URL] [--file-mb M]
 *
 * 1. The lexical embedder's rate (snippets/s) on N synthetic ChatDoctor-style rows.
 * 2. Ingest into the database with embedding excluded: the real ingestFile path (stream parse, hash, dedupe
 *    check, batched insert with the GIN index live and the HNSW index built once at the end, as a bulk
 *    `deno task ingest` does; run progress) fed by an embedder that returns vectors computed beforehand. On
 *    PGlite in memory, PGlite on disk on its own thread (what `deno task ingest` uses without DATABASE_URL) and
 *    Postgres (a scratch database), in the same run. The CPU time of the load and of the HNSW build,
 *    machine-wide, gives the most rows/s any ingest that ends with the index built could reach on these cores.
 * 3. With --file-mb M: writes an M MB file and runs the real `deno task ingest` on it in a child process (PGlite
 *    in a temp DATA_DIR, or Postgres), reporting the child's peak RSS (VmHWM) to show memory stays bounded.
 */
import { parseArgs } from "node:util";
import { type Database, openPglite, openPostgres } from "../db/client.ts";
import { dropVectorIndex, ensureVectorIndex } from "../db/snippets.ts";
import { migrate } from "../db/migrate.ts";
import type { Embedder } from "../knowledge/embedder.ts";
import { ingestFile } from "../knowledge/ingest.ts";
import { createLexicalEmbedder, lexicalVector } from "../knowledge/lexical_embedder.ts";
import { parseFile } from "../knowledge/parsers.ts";
import { busySeconds, cpuTimes } from "./host_cpu.ts";
import { syntheticRow, syntheticText } from "./synthetic.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rows: { type: "string", default: "20000" },
    driver: { type: "string", default: "both" },
    "database-url": { type: "string" },
    "file-mb": { type: "string" },
  },
});
const ROWS = Number(values.rows);
const DATABASE_URL = values["database-url"] ?? Deno.env.get("TEST_DATABASE_URL") ??
  Deno.env.get("DATABASE_URL");
if (!Number.isInteger(ROWS) || ROWS < 100) {
  throw new Error(`--rows must be an integer ≥ 100, got ${values.rows}`);
}

const text = syntheticText(42);
const row = (i: number) => syntheticRow(i, text);

async function writeRows(path: string, count: number): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let bytes = 0;
  const write = async (text: string) => {
    const data = encoder.encode(text);
    bytes += data.byteLength;
    await file.write(data);
  };
  await write("[\n");
  let chunk = "";
  for (let i = 0; i < count; i++) {
    chunk += (i ? ",\n" : "") + JSON.stringify(row(i));
    if (chunk.length > 1 << 20) {
      await write(chunk);
      chunk = "";
    }
  }
  await write(chunk + "\n]\n");
  file.close();
  return bytes;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en");
const dir = await Deno.makeTempDir({ prefix: "rounds-bench-ingest-" });
const path = `${dir}/healthcaremagic.json`;
const bytes = await writeRows(path, ROWS);
console.log(`Synthetic ChatDoctor-format file: ${fmt(ROWS)} rows, ${(bytes / 1e6).toFixed(1)} MB`);
console.log(
  `Machine: ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, load ${loadAverage()}`,
);

// Parse alone.
let parseStarted = performance.now();
const texts: string[] = [];
for await (const event of (await parseFile(path)).events) {
  if (event.kind === "record") { for (const s of event.snippets) texts.push(s.text); }
}
let seconds = (performance.now() - parseStarted) / 1000;
console.log(
  `parse only:        ${fmt(texts.length / seconds)} snippets/s (${texts.length} snippets, ${
    seconds.toFixed(2)
  } s)`,
);

// The lexical embedder alone.
parseStarted = performance.now();
const vectors = new Map<string, Float32Array>();
for (const text of texts) vectors.set(text, lexicalVector(text));
seconds = (performance.now() - parseStarted) / 1000;
console.log(`lexical embedder:  ${fmt(texts.length / seconds)} snippets/s (goal ≥ 5,000)`);

// Ingest with embedding excluded: vectors come from the map filled above.
const lexical = createLexicalEmbedder();
const precomputed: Embedder = {
  id: lexical.id,
  description: "precomputed lexical vectors",
  dimensions: lexical.dimensions,
  batchSize: 500,
  embed: (batch) => Promise.resolve(batch.map((t) => vectors.get(t) ?? lexicalVector(t))),
};

async function benchDatabase(label: string, database: Database): Promise<void> {
  await migrate(database);
  // Bulk load, as `deno task ingest` does for a large input: index dropped, rows loaded, index built once.
  await dropVectorIndex(database.db);
  const loadCpuBefore = cpuTimes();
  const summary = await ingestFile(database.db, precomputed, path, { batchSize: 500 });
  const loadCpu = busySeconds(loadCpuBefore, cpuTimes());
  const buildStarted = performance.now();
  const cpuBefore = cpuTimes();
  await ensureVectorIndex(database.db, { maintenanceWorkMem: label === "Postgres" ? "1GB" : "256MB" });
  const build = (performance.now() - buildStarted) / 1000;
  const buildCpu = busySeconds(cpuBefore, cpuTimes());
  // The precomputed embedder costs next to nothing, and stores overlap it anyway: the run's time is the load.
  const loadSeconds = summary.seconds - summary.embedSeconds;
  const dbSeconds = loadSeconds + build;
  console.log(
    `ingest, ${label.padEnd(14)} ${fmt(summary.added / loadSeconds)} snippets/s stored, embedding excluded ` +
      `(${fmt(summary.added)} in ${loadSeconds.toFixed(2)} s; goal ≥ 2,000)`,
  );
  console.log(
    `ingest, ${label.padEnd(14)} ${fmt(summary.added / dbSeconds)} snippets/s with the HNSW build ` +
      `(${loadSeconds.toFixed(2)} s + ${build.toFixed(2)} s build)`,
  );
  // CPU time machine-wide, whichever processes spent it (Postgres's parallel workers are not this one): the load's
  // and the build's together bound what any ingest that ends with the index built could reach on these cores,
  // however well it overlapped its work.
  const cores = navigator.hardwareConcurrency;
  const perRow = (cpu: number) => `${(cpu / summary.added * 1000).toFixed(2)} CPU-ms a row`;
  console.log(
    `CPU, ${label.padEnd(16)} load ${loadCpu.toFixed(1)} s (${perRow(loadCpu)}), HNSW build ${
      buildCpu.toFixed(1)
    } s (${perRow(buildCpu)}): at most ${fmt(summary.added / ((loadCpu + buildCpu) / cores))} rows/s ` +
      `with the build on ${cores} cores`,
  );
  // Incremental: a small file into the now indexed table (the HNSW graph is updated row by row).
  const smallPath = `${dir}/small-${label}.json`;
  await Deno.writeTextFile(
    smallPath,
    JSON.stringify(Array.from({ length: 1000 }, (_, i) => row(ROWS + 1_000_000 + i))),
  );
  const small = await ingestFile(database.db, precomputed, smallPath, { batchSize: 500 });
  const smallSeconds = small.seconds - small.embedSeconds;
  console.log(
    `ingest, ${label.padEnd(14)} ${
      fmt(small.added / smallSeconds)
    } snippets/s excluding embedding, incremental ` +
      `(${fmt(small.added)} into an indexed table of ${fmt(summary.added)})`,
  );
  const again = await ingestFile(database.db, precomputed, path, { batchSize: 500 });
  console.log(
    `re-ingest, ${label.padEnd(10)} ${fmt(again.read / again.seconds)} records/s, added ${again.added}, ` +
      `duplicates ${fmt(again.duplicates)}`,
  );
}

if (values.driver !== "postgres") {
  const database = await openPglite();
  try {
    await benchDatabase("PGlite", database);
  } finally {
    await database.close();
  }
  // What `deno task ingest` opens on a laptop: PGlite in DATA_DIR, on its own thread.
  const disk = await openPglite({ dataDir: `${dir}/pglite` });
  try {
    await benchDatabase("PGlite on disk", disk);
  } finally {
    await disk.close();
  }
}
if (values.driver !== "pglite") {
  if (!DATABASE_URL) {
    console.log("Postgres: skipped (give --database-url or TEST_DATABASE_URL)");
  } else {
    const admin = openPostgres(DATABASE_URL, { poolSize: 1 });
    await admin.client.unsafe("drop database if exists rounds_bench_ingest");
    await admin.client.unsafe("create database rounds_bench_ingest");
    const url = new URL(DATABASE_URL);
    url.pathname = "/rounds_bench_ingest";
    const database = openPostgres(url.toString(), { poolSize: 4 });
    try {
      await benchDatabase("Postgres", database);
    } finally {
      await database.close();
      await admin.client.unsafe("drop database if exists rounds_bench_ingest");
      await admin.close();
    }
  }
}

if (values["file-mb"]) {
  const mb = Number(values["file-mb"]);
  const bigPath = `${dir}/big-healthcaremagic.json`;
  const perRow = bytes / ROWS;
  const bigBytes = await writeRows(bigPath, Math.ceil((mb * 1e6) / perRow));
  console.log(`\nMemory: the real \`deno task ingest\` on a ${(bigBytes / 1e6).toFixed(0)} MB file …`);
  const env: Record<string, string> = DATABASE_URL && values.driver === "postgres"
    ? { DATABASE_URL }
    : { DATA_DIR: `${dir}/data` };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "ingest", bigPath],
    env,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let peak = 0;
  const sampler = setInterval(async () => {
    // The task runs deno inside `deno task`: sample every deno process under the child.
    for (const pid of await descendants(child.pid)) {
      const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
      const hwm = Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? 0) * 1024;
      peak = Math.max(peak, hwm);
    }
  }, 500);
  const output = await child.output();
  clearInterval(sampler);
  console.log(new TextDecoder().decode(output.stdout).trim());
  console.log(
    `peak RSS of the ingest process: ${(peak / 1e6).toFixed(0)} MB (file ${(bigBytes / 1e6).toFixed(0)} MB)`,
  );
}
await Deno.remove(dir, { recursive: true });

async function descendants(pid: number): Promise<number[]> {
  const found = [pid];
  const children = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => "");
  for (const child of children.trim().split(/\s+/).filter(Boolean)) {
    found.push(...await descendants(Number(child)));
  }
  return found;
}

function loadAverage(): string {
  try {
    return Deno.loadavg().map((n) => n.toFixed(2)).join(" ");
  } catch {
    return "?";
  }
}
