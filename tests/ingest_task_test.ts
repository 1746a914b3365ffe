/**
 * `deno task ingest` as an operator runs it: a real process, on a PGlite directory or the test Postgres.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { join } from "node:path";
import { type Database, openPglite } from "../db/client.ts";
import { rows } from "../db/migrate.ts";
import { countSnippets, snippetStorage } from "../db/snippets.ts";
import { runTask } from "./support/server_process.ts";
import { createTestDatabase, DRIVER } from "./support/test_app.ts";

function ingest(env: Record<string, string>, args: string[]) {
  return runTask("ingest", args, env);
}

Deno.test({
  name:
    `ingest task [${DRIVER}]: a bulk load rebuilds the index, lists skips, adds nothing twice, names formats`,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "rounds-ingest-task-" });
    const postgres = DRIVER === "postgres" ? await createTestDatabase() : null;
    const env: Record<string, string> = postgres?.driver === "postgres"
      ? { DATABASE_URL: postgres.url }
      : { DATA_DIR: dir };
    let database: Database | null = postgres;
    try {
      const records: unknown[] = Array.from({ length: 40 }, (_, i) => ({
        instruction: "If you are a doctor, please answer the medical questions.",
        input: `Hypothetical patient ${i}: a cough for ${i + 2} days with a mild fever.`,
        output: `Hypothetical reply ${i}: rest, fluids, and review if it lasts beyond ${i + 14} days.`,
      }));
      records.splice(7, 0, { instruction: "If you are a doctor, please answer.", input: "No answer here" });
      const file = join(dir, "healthcaremagic.json");
      await Deno.writeTextFile(file, JSON.stringify(records));

      const first = await ingest(env, ["--bulk", file]);
      assert.equal(first.code, 0, first.text);
      assert.match(first.text, /bulk load: the vector index is dropped now and built once at the end/);
      assert.match(
        first.text,
        /skipped healthcaremagic.json record 8: missing "output"/,
        "the bad record is named, with why",
      );
      assert.match(first.text, /\[chatdoctor\]: read 41, added 40, duplicates 0, skipped 1/);
      assert.match(first.text, /knowledge base now 40 snippets/);
      assert.match(first.text, /vector index built in \d+:\d\d/);

      const second = await ingest(env, ["--bulk", file]);
      assert.equal(second.code, 0, second.text);
      assert.match(second.text, /Nothing new: every snippet was already in the knowledge base/);
      assert.doesNotMatch(second.text, /vector index/, "nothing new to store: the index is left alone");

      const unknown = join(dir, "notes.dat");
      await Deno.writeTextFile(unknown, "Just some notes, in no dataset's format.\n");
      const refused = await ingest(env, [unknown]);
      assert.equal(refused.code, 1, refused.text);
      assert.match(
        refused.text,
        /Cannot tell the format of notes\.dat: it is not meddialog-raw, meddialog-json, hf-medical-dialog, chatdoctor, mashqa, pubmed, medquad, pubmedqa, csv, parquet, pdf, docx, html, markdown or text \(use --format\)/,
      );

      database ??= await openPglite({ dataDir: join(dir, "pglite") });
      assert.equal(await countSnippets(database.db), 40);
      const [index] = rows<{ present: boolean }>(
        await database.db.execute(sql`select to_regclass('snippets_embedding_idx') is not null as present`),
      );
      assert.equal(index.present, true, "the bulk load ends with the vector index built");
    } finally {
      await database?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `ingest task [${DRIVER}]: snippets keep their vectors in the row, and --compact moves older ones there`,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "rounds-ingest-compact-" });
    const postgres = DRIVER === "postgres" ? await createTestDatabase() : null;
    const env: Record<string, string> = postgres?.driver === "postgres"
      ? { DATABASE_URL: postgres.url }
      : { DATA_DIR: dir };
    // PGlite allows one process per directory: the test opens it only while no task runs.
    const open = async () => postgres ?? await openPglite({ dataDir: join(dir, "pglite") });
    const release = async (database: Database) => {
      if (database !== postgres) await database.close();
    };
    try {
      const records = Array.from({ length: 30 }, (_, i) => ({
        instruction: "If you are a doctor, please answer the medical questions.",
        input: `Hypothetical patient ${i}: ankle swelling for ${
          i + 3
        } days after a long flight, no chest pain.`,
        output:
          `Hypothetical reply ${i}: a calf that is swollen and tender needs a same-day assessment for a clot.`,
      }));
      const file = join(dir, "healthcaremagic.json");
      await Deno.writeTextFile(file, JSON.stringify(records));
      const loaded = await ingest(env, [file]);
      assert.equal(loaded.code, 0, loaded.text);

      let database = await open();
      let storage = await snippetStorage(database.db);
      assert.equal(storage.rows, 30);
      assert.equal(
        storage.outOfLineBytes,
        0,
        "a search reads each candidate's vector without a TOAST lookup",
      );
      // A knowledge base stored before migration 0011: pgvector's own layout puts every vector out of line.
      await database.db.execute(sql`alter table snippets alter column embedding set storage external`);
      await database.db.execute(sql`alter table snippets reset (toast_tuple_target)`);
      await database.db.execute(sql`update snippets set embedding = embedding`);
      await database.db.execute(sql`alter table snippets alter column embedding set storage main`);
      await database.db.execute(sql`alter table snippets set (toast_tuple_target = 8160)`);
      assert.ok((await snippetStorage(database.db)).outOfLineBytes > 0, "the older layout, reproduced");
      await release(database);

      const compacted = await ingest(env, ["--compact"]);
      assert.equal(compacted.code, 0, compacted.text);
      assert.match(compacted.text, /compacting 30 snippets \(.* MB in the table, .* MB stored out of line\)/);
      assert.match(
        compacted.text,
        /Compacted 30 snippets in \d+:\d\d: .* MB in the table, 0\.0 MB out of line\./,
      );
      assert.match(compacted.text, /vector index built in \d+:\d\d/, "rebuilt with a bulk load's memory");
      database = await open();
      storage = await snippetStorage(database.db);
      assert.equal(storage.rows, 30, "nothing lost");
      assert.equal(storage.outOfLineBytes, 0);
      const [index] = rows<{ present: boolean }>(
        await database.db.execute(sql`select to_regclass('snippets_embedding_idx') is not null as present`),
      );
      assert.equal(index.present, true, "the vector index is there again");
      await release(database);

      const misuse = await ingest(env, ["--compact", file]);
      assert.equal(misuse.code, 2);
      assert.match(misuse.text, /--compact runs on its own: give it no files and no --reembed/);
    } finally {
      await postgres?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "ingest task: a 1 MB gzip file of 1 GB blank space is refused early, in bounded memory (issue 19, item 22)",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "rounds-ingest-bomb-" });
    try {
      // 1 GiB of spaces inside a JSON array, gzipped to about 1 MB, written without holding it in memory.
      const path = join(dir, "healthcaremagic.json.gz");
      const spaces = new Uint8Array(1 << 20).fill(0x20);
      const source = ReadableStream.from((function* () {
        yield new TextEncoder().encode("[");
        for (let i = 0; i < 1024; i++) yield spaces;
        yield new TextEncoder().encode("]");
      })());
      await source.pipeThrough(new CompressionStream("gzip")).pipeTo((await Deno.create(path)).writable);
      assert.ok((await Deno.stat(path)).size < 2 * 1024 * 1024);

      const started = performance.now();
      // GNU time gives the peak memory where it is installed; without it the messages are still checked.
      const timed = await Deno.stat("/usr/bin/time").then(() => true, () => false);
      const command = [Deno.execPath(), "run", "-A", "tasks/ingest.ts", path];
      const result = await new Deno.Command(timed ? "/usr/bin/time" : command[0], {
        args: timed ? ["-f", "max-rss-kb %M", ...command] : command.slice(1),
        cwd: new URL("../", import.meta.url).pathname,
        env: { NO_COLOR: "1", DATA_DIR: join(dir, "data"), PATH: Deno.env.get("PATH") ?? "" },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
      assert.equal(result.code, 1, text);
      assert.match(text, /grows more than 200 times when unzipped .*: that is not a dataset/);
      assert.match(text, /1 file\(s\) not read \(said above\)/);
      assert.doesNotMatch(text, /Uncaught|at file:/, "a plain message, no stack trace");
      if (timed) {
        const rssMb = Number(/max-rss-kb (\d+)/.exec(text)?.[1]) / 1024;
        // Before: 1.75 GB. An empty file's ingest takes about 800 MB here (PGlite and the index).
        assert.ok(rssMb < 1000, `max RSS ${rssMb.toFixed(0)} MB`);
      }
      assert.ok(performance.now() - started < 60_000);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
