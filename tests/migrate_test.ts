import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import { openPglite, openPostgres } from "../db/client.ts";
import { refreshSearchTerms, textCandidates } from "../db/snippets.ts";
import { migrate, rows } from "../db/migrate.ts";
import { createTestDatabase, DRIVER, TEST_DATABASE_URL } from "./support/test_app.ts";

const JOURNAL = JSON.parse(
  await Deno.readTextFile(new URL("../migrations/meta/_journal.json", import.meta.url)),
) as { entries: { tag: string }[] };

Deno.test(`migrations [${DRIVER}]: apply every migration, create the tables and the vector extension`, async () => {
  const database = await createTestDatabase();
  try {
    const tables = rows<{ table_name: string }>(
      await database.db.execute(
        sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`,
      ),
    ).map((r) => r.table_name);
    assert.ok(tables.includes("chat_sessions"), `tables: ${tables}`);
    assert.ok(tables.includes("messages"), `tables: ${tables}`);
    const extension = rows<{ extname: string }>(
      await database.db.execute(sql`select extname from pg_extension where extname = 'vector'`),
    );
    assert.equal(extension.length, 1, "the vector extension must exist");
    const vectorWorks = rows<{ d: number }>(
      await database.db.execute(sql`select ('[1,0,0]'::vector <=> '[0,1,0]'::vector)::float8 as d`),
    );
    assert.equal(vectorWorks[0].d, 1);
  } finally {
    await database.close();
  }
});

Deno.test(`migrations [${DRIVER}]: running them again applies nothing and changes nothing`, async () => {
  const database = await createTestDatabase();
  try {
    const again = await migrate(database);
    assert.deepEqual(again, { applied: 0, total: JOURNAL.entries.length });
    const third = await migrate(database);
    assert.deepEqual(third, { applied: 0, total: JOURNAL.entries.length });
  } finally {
    await database.close();
  }
});

Deno.test(`migrations [${DRIVER}]: a fresh database reports every migration applied`, async () => {
  const database = await createTestDatabase();
  try {
    const recorded = rows<{ n: number }>(
      await database.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`),
    );
    assert.equal(recorded[0].n, JOURNAL.entries.length);
  } finally {
    await database.close();
  }
});

Deno.test({
  name: "migrations [postgres]: instances starting together take turns instead of racing",
  ignore: !TEST_DATABASE_URL,
  fn: async () => {
    const url = new URL(TEST_DATABASE_URL!);
    const name = `rounds_test_race_${Deno.pid}_${crypto.randomUUID().slice(0, 8)}`;
    const admin = openPostgres(url.toString(), { poolSize: 1 });
    await admin.client.unsafe(`create database "${name}"`);
    url.pathname = `/${name}`;
    const instances = [1, 2, 3].map(() => openPostgres(url.toString(), { poolSize: 3 }));
    try {
      const results = await Promise.all(instances.map((instance) => migrate(instance)));
      assert.equal(results.reduce((sum, r) => sum + r.applied, 0), JOURNAL.entries.length);
      assert.ok(results.every((r) => r.total === JOURNAL.entries.length));
    } finally {
      await Promise.all(instances.map((instance) => instance.close()));
      await admin.client.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.close();
    }
  },
});

Deno.test("migrations: deno task migrate applies them alone, then finds nothing to do", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        // The task's own permissions (deno.json): no --allow-run, no --allow-ffi.
        args: [
          "run",
          "--allow-net",
          "--allow-env",
          "--allow-read",
          "--allow-write",
          "--allow-sys",
          "tasks/migrate.ts",
          ...args,
        ],
        env: { DATA_DIR: dir, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = (b: Uint8Array) => new TextDecoder().decode(b);
      return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
    };
    const first = await run();
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      new RegExp(`applied ${JOURNAL.entries.length} migration\\(s\\), ${JOURNAL.entries.length} in all`),
    );
    const again = await run();
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      new RegExp(`up to date \\(${JOURNAL.entries.length} migrations applied before\\)`),
    );
    const wrong = await run("now");
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /takes no arguments/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(`migrations [${DRIVER}]: no index build inside them; migrate builds the vector index after, or leaves it to the caller`, async () => {
  const database = await createTestDatabase(); // migrated, index built
  const present = async () =>
    rows<{ present: boolean }>(
      await database.db.execute(sql`select to_regclass('snippets_embedding_idx') is not null as present`),
    )[0].present;
  try {
    assert.equal(await present(), true);
    // As migration 0007 (or an interrupted bulk load) leaves it.
    await database.db.execute(sql`drop index snippets_embedding_idx`);
    await migrate(database, { vectorIndex: "leave" });
    assert.equal(await present(), false, "a starting server on Postgres builds it in the background instead");
    await migrate(database);
    assert.equal(await present(), true, "deno task migrate (and every other caller) builds it");
    const sqlText = await Deno.readTextFile(
      new URL("../migrations/0007_denser_vector_index.sql", import.meta.url),
    );
    assert.doesNotMatch(sqlText, /create index/i, "0007 only drops the old index");
  } finally {
    await database.close();
  }
});

Deno.test({
  name: "migrations [postgres]: one instance builds a missing vector index; the others do not wait for it",
  ignore: !TEST_DATABASE_URL,
  fn: async () => {
    const database = await createTestDatabase();
    if (database.driver !== "postgres") throw new Error("Postgres only");
    const other = openPostgres(database.url, { poolSize: 1 });
    try {
      await database.db.execute(sql`drop index snippets_embedding_idx`);
      const { ensureVectorIndex } = await import("../db/snippets.ts");
      // Another instance is building it: this one goes on at once.
      let release!: () => void;
      const held = new Promise<void>((resolve) => release = resolve);
      const building = other.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(7406281134)`);
        await held;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = performance.now();
      assert.equal(await ensureVectorIndex(database.db), false);
      assert.ok(performance.now() - started < 2000);
      release();
      await building;
      assert.equal(await ensureVectorIndex(database.db), true);
    } finally {
      await other.close();
      await database.close();
    }
  },
});

Deno.test(`migrations [${DRIVER}]: snippets stored before their full text moved to snippet_search are still found`, async () => {
  // A knowledge base at migration 0017, whose snippets carry a generated `search` column, then today's migrations.
  const folder = await Deno.makeTempDir({ prefix: "rounds-migrations-0017-" });
  const url = TEST_DATABASE_URL ? new URL(TEST_DATABASE_URL) : null;
  const name = `rounds_test_0018_${Deno.pid}_${crypto.randomUUID().slice(0, 8)}`;
  if (url) {
    const admin = openPostgres(url.toString(), { poolSize: 1 });
    await admin.client.unsafe(`create database "${name}"`);
    await admin.close();
    url.pathname = `/${name}`;
  }
  const database = url ? openPostgres(url.toString(), { poolSize: 2 }) : await openPglite();
  try {
    const source = new URL("../migrations/", import.meta.url);
    for (const entry of Deno.readDirSync(source)) {
      if (entry.isFile) await Deno.copyFile(new URL(entry.name, source), `${folder}/${entry.name}`);
    }
    await Deno.mkdir(`${folder}/meta`);
    const before = { ...JOURNAL, entries: JOURNAL.entries.filter((e) => e.tag < "0018") };
    assert.equal(before.entries.at(-1)?.tag, "0017_dialogue_index");
    await Deno.writeTextFile(`${folder}/meta/_journal.json`, JSON.stringify(before));
    if (database.driver === "pglite") await migratePglite(database.db as never, { migrationsFolder: folder });
    else await migratePostgres(database.db as never, { migrationsFolder: folder });
    const vector = `[${Array.from({ length: 384 }, (_, i) => (i === 0 ? 1 : 0)).join(",")}]`;
    for (
      const [id, text] of [["1#1", "Pain in the big toe, hot and swollen overnight"], [
        "2#1",
        "Dry cough after a cold",
      ]]
    ) {
      await database.db.execute(
        sql`insert into snippets (source, source_id, answer, text, content_hash, embedder,
        embedding) values ('Sample dialogues', ${id}, ${text}, ${text}, ${id}, 'lexical-hash-v1', ${vector}::vector)`,
      );
    }

    const result = await migrate(database);
    assert.equal(result.total, JOURNAL.entries.length);
    const columns = rows<{ column_name: string }>(
      await database.db.execute(
        sql`select column_name from information_schema.columns where table_name = 'snippets' and column_name = 'search'`,
      ),
    );
    assert.equal(columns.length, 0, "the column the vectors were generated in is gone");
    await refreshSearchTerms(database.db);
    const found = await textCandidates(database.db, "swollen toe", { limit: 5 });
    const [toe] = rows<{ id: string }>(
      await database.db.execute(sql`select id from snippets where source_id = '1#1'`),
    );
    assert.deepEqual(found.map((c) => c.id), [toe.id]);
    // Deleting a snippet takes its full-text vector with it.
    await database.db.execute(sql`delete from snippets where source_id = '1#1'`);
    const left = rows<{ n: number }>(
      await database.db.execute(sql`select count(*)::int as n from snippet_search`),
    );
    assert.equal(left[0].n, 1);
  } finally {
    await database.close();
    await Deno.remove(folder, { recursive: true });
    if (url) {
      const admin = openPostgres(TEST_DATABASE_URL!, { poolSize: 1 });
      await admin.client.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.close();
    }
  }
});
