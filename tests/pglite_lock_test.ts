import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseLockedError, openPglite } from "../db/client.ts";
import { startServer } from "./support/server_process.ts";
import { freePort } from "./support/test_app.ts";

Deno.test("PGlite lock: a second open of the same directory fails at once, naming the holder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rounds-lock-" });
  const first = await openPglite({ dataDir: join(dir, "pglite") });
  try {
    const started = performance.now();
    await assert.rejects(
      () => openPglite({ dataDir: join(dir, "pglite") }),
      (error: unknown) => {
        assert.ok(error instanceof DatabaseLockedError);
        assert.match(
          error.message,
          /PGlite data directory .*pglite is already in use by another Rounds process/,
        );
        assert.match(error.message, new RegExp(`\\(pid ${Deno.pid}\\)`));
        assert.match(error.message, /DATABASE_URL/);
        return true;
      },
    );
    assert.ok(performance.now() - started < 1000, "the refusal must not wait for the lock");
  } finally {
    await first.close();
  }
  // Released on close: the directory opens again, with its data.
  const again = await openPglite({ dataDir: join(dir, "pglite") });
  await again.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("PGlite lock: a second server process on the same DATA_DIR exits with a clear message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rounds-lock-" });
  const first = startServer({ DATA_DIR: dir, PORT: String(freePort()) });
  try {
    await first.waitFor(/^listening on/);
    const second = startServer({ DATA_DIR: dir, PORT: String(freePort()) });
    const status = await second.status;
    assert.equal(status.code, 1);
    assert.match(second.output(), /is already in use by another Rounds process \(pid \d+\)/);
  } finally {
    first.kill("SIGTERM");
    await first.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PGlite lock: a lock left by a killed process does not block the next start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rounds-lock-" });
  try {
    const crashed = startServer({ DATA_DIR: dir, PORT: String(freePort()) });
    await crashed.waitFor(/^listening on/);
    crashed.kill("SIGKILL");
    await crashed.status;
    const next = startServer({ DATA_DIR: dir, PORT: String(freePort()) });
    await next.waitFor(/^listening on/);
    next.kill("SIGTERM");
    assert.equal((await next.status).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
