import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { openPostgres } from "../db/client.ts";
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
