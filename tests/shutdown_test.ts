import assert from "node:assert/strict";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { openPglite } from "../db/client.ts";
import { rows } from "../db/migrate.ts";
import { createLifecycle } from "../lifecycle.ts";
import { startServer } from "./support/server_process.ts";
import { freePort } from "./support/test_app.ts";

const MIGRATIONS = (JSON.parse(
  await Deno.readTextFile(new URL("../migrations/meta/_journal.json", import.meta.url)),
) as { entries: unknown[] }).entries.length;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("lifecycle: work that finishes before the deadline is waited for, not aborted", async () => {
  const lifecycle = createLifecycle();
  let finished = false;
  const work = lifecycle.run(async (signal) => {
    await delay(50);
    finished = !signal.aborted;
    return "done";
  });
  const result = await lifecycle.drain(2000);
  assert.equal(await work, "done");
  assert.ok(finished);
  assert.deepEqual(result, { finished: 1, aborted: 0, abandoned: 0 });
  assert.ok(lifecycle.draining);
});

Deno.test("lifecycle: work still running at the deadline is aborted and records its state before drain ends", async () => {
  const lifecycle = createLifecycle();
  const recorded: string[] = [];
  lifecycle.run(async (signal) => {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    await delay(20); // e.g. writing the partial reply to the database
    recorded.push(`interrupted: ${(signal.reason as Error).message}`);
  });
  const result = await lifecycle.drain(30);
  assert.deepEqual(result, { finished: 0, aborted: 1, abandoned: 0 });
  assert.deepEqual(recorded, ["interrupted: The server is shutting down"]);
  assert.equal(lifecycle.inFlight, 0);
});

Deno.test("lifecycle: work that ignores the abort is abandoned after the grace period", async () => {
  const lifecycle = createLifecycle();
  let release = () => {};
  const stuck = lifecycle.run(() => new Promise<void>((resolve) => (release = resolve)));
  const result = await lifecycle.drain(10, { abortGraceMs: 20 });
  assert.deepEqual(result, { finished: 0, aborted: 1, abandoned: 1 });
  release();
  await stuck;
});

Deno.test("lifecycle: a failing work item does not break the drain", async () => {
  const lifecycle = createLifecycle();
  const failing = lifecycle.run(() => Promise.reject(new Error("endpoint down")));
  await assert.rejects(failing, /endpoint down/);
  assert.deepEqual(await lifecycle.drain(100), { finished: 0, aborted: 0, abandoned: 0 });
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`shutdown: ${signal} stops the server, closes PGlite cleanly and releases the directory`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "rounds-shutdown-" });
    try {
      const port = freePort();
      const server = startServer({ DATA_DIR: dir, PORT: String(port) });
      await server.waitFor(/^listening on http:\/\/127\.0\.0\.1:\d+/);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();

      server.kill(signal);
      const status = await server.status;
      assert.equal(status.code, 0, server.output());
      assert.match(server.output(), new RegExp(`${signal}: shutting down`));
      assert.match(server.output(), /shutdown complete/);
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), "the port must be closed");

      // The directory is unlocked and intact: open it here, write, and start the server again on it.
      const database = await openPglite({ dataDir: join(dir, "pglite") });
      await database.db.execute(sql`insert into chat_sessions (title) values ('kept across restarts')`);
      await database.close();
      const again = startServer({ DATA_DIR: dir, PORT: String(freePort()) });
      await again.waitFor(/^listening on/);
      assert.match(
        again.output(),
        new RegExp(`database: PGlite at .* \\(${MIGRATIONS} migrations, 0 applied now\\)`),
      );
      again.kill("SIGTERM");
      assert.equal((await again.status).code, 0);
      const reopened = await openPglite({ dataDir: join(dir, "pglite") });
      const titles = rows<{ title: string }>(await reopened.db.execute(sql`select title from chat_sessions`));
      assert.deepEqual(titles.map((r) => r.title), ["kept across restarts"]);
      await reopened.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("start-up: a bad environment exits 1 with one line per problem and starts nothing", async () => {
  const server = startServer({ PORT: "abc", DATABASE_POOL_SIZE: "none", DATA_DIR: "/nonexistent" });
  const status = await server.status;
  assert.equal(status.code, 1);
  assert.match(server.output(), /PORT must be an integer between 1 and 65535, got "abc"/);
  assert.match(server.output(), /DATABASE_POOL_SIZE must be an integer between 1 and 1000, got "none"/);
});
