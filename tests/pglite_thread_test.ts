import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { join } from "node:path";
import { openPglite } from "../db/client.ts";
import { migrate, rows } from "../db/migrate.ts";
import { PgliteThread } from "../db/pglite_thread.ts";
import { EMBEDDING_DIMENSIONS } from "../db/schema.ts";
import { createChat, getChat } from "../db/chats.ts";
import { openIngestRun, storeBatch } from "../db/snippets.ts";

async function withThread(fn: (thread: PgliteThread) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "rounds-thread-" });
  const thread = await PgliteThread.open(join(dir, "pg"));
  try {
    await fn(thread);
  } finally {
    await thread.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("pglite thread: queries, parameters, row modes and pgvector", async () => {
  await withThread(async (thread) => {
    await thread.exec(
      "create extension if not exists vector; create table t (id int, v vector(3), at timestamptz)",
    );
    await thread.query("insert into t values ($1, $2, $3)", [1, "[1,2,3]", "2026-01-02T03:04:05Z"]);
    const objects = await thread.query("select id, v <-> '[1,2,4]' as d from t");
    assert.deepEqual(objects.rows, [{ id: 1, d: 1 }]);
    const arrays = await thread.query("select id from t", [], { rowMode: "array" });
    assert.deepEqual(arrays.rows, [[1]]);
    // drizzle asks for dates as Postgres writes them; the thread honours identity parsers.
    const raw = await thread.query("select at from t", [], { parsers: { 1184: (value: string) => value } });
    assert.equal(typeof (raw.rows[0] as { at: unknown }).at, "string");
  });
});

Deno.test("pglite thread: a transaction commits, rolls back on error, and nothing lands inside it", async () => {
  await withThread(async (thread) => {
    await thread.exec("create table t (n int)");
    await thread.transaction(async (tx) => {
      await tx.query("insert into t values (1)");
    });
    await assert.rejects(
      thread.transaction(async (tx) => {
        await tx.query("insert into t values (2)");
        throw new Error("changed my mind");
      }),
      /changed my mind/,
    );
    assert.deepEqual((await thread.query("select n from t order by n")).rows, [{ n: 1 }]);

    // While a transaction is open, other queries wait for it instead of joining it.
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tx = thread.transaction(async (t) => {
      await t.query("insert into t values (10)");
      await gate;
      await t.query("insert into t values (11)");
    });
    const outside = thread.query("insert into t values (20)");
    await new Promise((resolve) => setTimeout(resolve, 30));
    release();
    await Promise.all([tx, outside]);
    assert.deepEqual(
      (await thread.query("select n from t order by n")).rows.map((r) => (r as { n: number }).n),
      [
        1,
        10,
        11,
        20,
      ],
    );
  });
});

Deno.test("pglite thread: queries asked together run back to back, however busy this thread is meanwhile", async () => {
  await withThread(async (thread) => {
    await thread.exec("create table t (n int)");
    // Three queries asked at once, then this thread busy for 300 ms: the database thread runs all three meanwhile
    // (each used to be sent only once this thread had taken the answer before it, so after the busy spell).
    const asked = [1, 2, 3].map((n) =>
      thread.query("insert into t values ($1) returning extract(epoch from clock_timestamp()) * 1000 as at", [
        n,
      ])
    );
    await Promise.resolve();
    const busyUntil = performance.now() + 300;
    while (performance.now() < busyUntil) { /* busy */ }
    const times = (await Promise.all(asked)).map((r) => Number((r.rows[0] as { at: number }).at));
    assert.ok(times[2] - times[0] < 200, `ran ${Math.round(times[2] - times[0])} ms apart`);
    // Order holds: a transaction asked after queries sees what they wrote, and one asked after it waits for it.
    const counted = thread.transaction(async (tx) =>
      (await tx.query("select count(*)::int as n from t")).rows
    );
    const after = thread.query("insert into t values (4)");
    assert.deepEqual(await counted, [{ n: 3 }]);
    await after;
    assert.deepEqual((await thread.query("select count(*)::int as n from t")).rows, [{ n: 4 }]);
  });
});

Deno.test("pglite thread: statements with values are kept prepared, and stay right when things change", async () => {
  await withThread(async (thread) => {
    await thread.exec("create table t (id int primary key, name text)");
    const insert = "insert into t values ($1, $2) returning id";
    for (let i = 1; i <= 8; i++) {
      // The same text eight times: past the five custom plans, Postgres may run it generic.
      assert.deepEqual((await thread.query(insert, [i, `n${i}`])).rows, [{ id: i }]);
    }
    const byId = "select name from t where id = $1";
    assert.deepEqual((await thread.query(byId, [3])).rows, [{ name: "n3" }]);
    assert.deepEqual((await thread.query(byId, [99])).rows, []);
    assert.equal((await thread.query("update t set name = $1 where id > $2", ["x", 6])).affectedRows, 2);
    assert.deepEqual((await thread.query(byId, [null])).rows, []);

    // An error in a kept statement, and in one that fails to parse, leaves the next queries working.
    await assert.rejects(
      thread.query(insert, [1, "again"]),
      (e: Error & { code?: string }) => e.code === "23505",
    );
    await assert.rejects(thread.query("select nope from t where id = $1", [1]), /nope/);
    assert.deepEqual((await thread.query(byId, [1])).rows, [{ name: "n1" }]);

    // Inside a transaction that rolls back, and after it.
    await assert.rejects(
      thread.transaction(async (tx) => {
        await tx.query(insert, [20, "in"]);
        await tx.query(insert, [20, "twice"]);
      }),
      (e: Error & { code?: string }) => e.code === "23505",
    );
    assert.deepEqual((await thread.query(byId, [20])).rows, []);
    await thread.transaction(async (tx) => {
      await tx.query(insert, [21, "kept"]);
    });
    assert.deepEqual((await thread.query(byId, [21])).rows, [{ name: "kept" }]);

    // A column's type changed under a kept statement: that one query fails, the next is parsed afresh.
    const all = "select * from t where id = $1";
    assert.deepEqual((await thread.query(all, [2])).rows, [{ id: 2, name: "n2" }]);
    await thread.exec("alter table t alter column name type varchar(40)");
    const again = await thread.query(all, [2]).catch(() => thread.query(all, [2]));
    assert.deepEqual(again.rows, [{ id: 2, name: "n2" }]);

    // More statement texts than are kept: the oldest are closed, and every one still answers.
    for (let i = 0; i < 300; i++) {
      const r = await thread.query(`select $1::int + ${i} as n`, [1]);
      assert.deepEqual(r.rows, [{ n: 1 + i }]);
    }
    assert.deepEqual((await thread.query(byId, [4])).rows, [{ name: "n4" }]);
  });
});

Deno.test("pglite thread: database errors keep their code and detail", async () => {
  await withThread(async (thread) => {
    await thread.exec("create table t (id int primary key)");
    await thread.query("insert into t values (1)");
    await assert.rejects(thread.query("insert into t values (1)"), (error: unknown) => {
      const e = error as { code?: string; message: string; constraint?: string };
      assert.equal(e.code, "23505");
      assert.match(e.message, /duplicate key/);
      assert.equal(e.constraint, "t_pkey");
      return true;
    });
    await thread.close();
    await assert.rejects(thread.query("select 1"), /PGlite is closed/);
  });
});

Deno.test("pglite thread: a COPY's input crosses to the thread, inside a transaction too", async () => {
  await withThread(async (thread) => {
    await thread.exec("create table t (id int, name text)");
    const blob = new Blob(["1\tfirst\n2\tsecond — ü\n"]);
    await thread.query("copy t from '/dev/blob'", [], { blob });
    await thread.transaction(async (tx) => {
      await tx.query("copy t from '/dev/blob'", [], { blob: new Blob(["3\tthird\n"]) });
    });
    assert.deepEqual(
      (await thread.query("select id, name from t order by id", [], { rowMode: "array" })).rows,
      [
        [1, "first"],
        [2, "second — ü"],
        [3, "third"],
      ],
    );
    assert.equal(await blob.text(), "1\tfirst\n2\tsecond — ü\n", "the caller's blob is left as it was");
  });
});

Deno.test("pglite thread: checkpoints itself once enough WAL is written, never inside a transaction", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rounds-thread-" });
  // PGlite has no checkpointer process: without these, the WAL grows until close.
  const checkpoints = { walBytes: 2 ** 20, maxIntervalMs: 3_600_000, lookIntervalMs: 0 };
  const thread = await PgliteThread.open(join(dir, "pg"), { checkpoints });
  const lastCheckpoint = async () =>
    (await thread.query("select checkpoint_lsn::text as at from pg_control_checkpoint()")).rows[0];
  try {
    await thread.exec("create table t (id int, filler text)");
    const start = await lastCheckpoint();
    await thread.query("insert into t select g, repeat('x', 100) from generate_series(1, 10) g");
    assert.deepEqual(await lastCheckpoint(), start, "a little WAL calls for no checkpoint");
    await thread.transaction(async (tx) => {
      await tx.query("insert into t select g, repeat('x', 500) from generate_series(1, 20000) g");
      const inside = await tx.query("select checkpoint_lsn::text as at from pg_control_checkpoint()");
      assert.deepEqual(inside.rows[0], start, "none inside a transaction");
    });
    const after = await lastCheckpoint();
    assert.notDeepEqual(after, start, "10 MB of WAL, committed: the thread checkpointed");
    const rows = await thread.query("select count(*)::int as n from t");
    assert.deepEqual(rows.rows, [{ n: 20010 }]);
  } finally {
    await thread.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pglite thread: drizzle, migrations and the query modules run on it, and data survives reopening", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rounds-thread-" });
  try {
    const database = await openPglite({ dataDir: join(dir, "pglite") });
    const { total } = await migrate(database);
    const session = await createChat(database.db, { ownerId: null, title: "On the thread" });
    // A knowledge-base batch goes in as a binary COPY whose bytes cross to the thread.
    const { run } = await openIngestRun(database.db, {
      inputKey: "k",
      path: "k",
      format: "chatdoctor",
      source: null,
    });
    const embedding = Float32Array.from({ length: EMBEDDING_DIMENSIONS }, (_, i) => i / 1000);
    const snippet = {
      source: "Test",
      sourceId: "1",
      url: null,
      specialty: null,
      title: null,
      question: "Q?",
      answer: "A — ü",
      text: "Q? A — ü",
      contentHash: "h1",
      embedder: "lexical-hash-v1",
      embedding,
    };
    const progress = { runId: run.id, recordsDone: 1, duplicates: 0, skipped: 0 };
    assert.equal(await storeBatch(database.db, [snippet], progress), 1);
    await database.close();
    const again = await openPglite({ dataDir: join(dir, "pglite") });
    assert.equal((await getChat(again.db, session.id))?.title, "On the thread");
    assert.deepEqual(await migrate(again), { applied: 0, total });
    const n = rows<{ n: number }>(await again.db.execute(sql`select count(*)::int as n from chat_sessions`));
    assert.equal(n[0].n, 1);
    const [stored] = rows<{ text: string; v: string }>(
      await again.db.execute(sql`select text, embedding::text as v from snippets`),
    );
    assert.equal(stored.text, "Q? A — ü");
    assert.deepEqual(Float32Array.from(JSON.parse(stored.v) as number[]), embedding);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pglite thread: vacuums and analyzes the tables chat writes to, as autovacuum would", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rounds-thread-" });
  // PGlite has no autovacuum: replies that went from pending to completed stay in the partial index of replies
  // being written, and the check of a user's limits reads every one of them.
  const checkpoints = { walBytes: 2 ** 40, maxIntervalMs: 3_600_000, lookIntervalMs: 0 };
  const vacuum = { tables: ["replies", "not_created_yet"], walBytes: 2 ** 20, maxIntervalMs: 3_600_000 };
  const thread = await PgliteThread.open(join(dir, "pg"), { checkpoints, vacuum });
  /** Index entries the partial index hands over, live or dead (the heap then drops the dead ones). */
  const entriesRead = async () => {
    const plan = await thread.query(
      "explain (analyze, costs off) select count(*) from replies where status = 'pending'",
    );
    const line = (plan.rows as { "QUERY PLAN": string }[]).map((r) => r["QUERY PLAN"])
      .find((l) => /Bitmap Index Scan/.test(l))!;
    return Number(/actual time=\S+ rows=([\d.]+)/.exec(line)![1]);
  };
  try {
    await thread.exec(`create table replies (id int primary key, status text, body text);
      create index replies_pending on replies (status) where status = 'pending';
      set enable_seqscan = off; set enable_indexscan = off`);
    await thread.query("insert into replies select g, 'pending', '' from generate_series(1, 2000) g");
    await thread.query("update replies set status = 'completed', body = repeat('x', 1000)");
    const analyzed = async () =>
      Number(
        ((await thread.query("select reltuples as n from pg_class where relname = 'replies'")).rows[0] as {
          n: number;
        }).n,
      );
    // The round starts after a request once 1 MB of WAL is written, one table between two requests.
    for (let i = 0; i < 4; i++) await thread.query("select 1");
    assert.equal(await entriesRead(), 0, "the dead entries are gone from the index");
    assert.equal(await analyzed(), 2000, "and the planner knows the table's size");
    assert.deepEqual((await thread.query("select count(*)::int as n from replies")).rows, [{ n: 2000 }]);
  } finally {
    await thread.close();
    await Deno.remove(dir, { recursive: true });
  }
});
