import assert from "node:assert/strict";
import { join } from "node:path";
import { openPglite } from "../db/client.ts";
import { listMessages, type Message } from "../db/messages.ts";
import { listChats } from "../db/chats.ts";
import { startStub, type StubScript } from "./support/endpoint_stub.ts";
import { signInOverHttp, startServer, startTaskArgs, taskV8Flags } from "./support/server_process.ts";
import denoJson from "../deno.json" with { type: "json" };
import { findUserByEmail } from "../db/users.ts";
import { sseReader, streamedText } from "./support/sse_client.ts";
import { freePort } from "./support/test_app.ts";

Deno.test("deno task start and dev set V8's heap sizing, and process tests start the server the same way", () => {
  const start = taskV8Flags(denoJson.tasks.start);
  // docs/performance.md: what keeps 500 streams within the memory goal and GC pauses off most tokens.
  assert.match(start ?? "", /--heap-growing-percent=\d+/);
  assert.match(start ?? "", /--min-semi-space-size=\d+/);
  assert.equal(taskV8Flags(denoJson.tasks.dev), start);
  assert.ok(startTaskArgs().includes(start!));
  assert.equal(startTaskArgs().at(-1), "main.ts");
});

/** A real server process on a temp DATA_DIR, talking to a stub in this process. */
async function withServer(
  script: StubScript,
  env: Record<string, string>,
  fn: (
    ctx: {
      base: string;
      dir: string;
      server: ReturnType<typeof startServer>;
      stub: ReturnType<typeof startStub>;
    },
  ) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "rounds-proc-" });
  const stub = startStub({ defaultScript: script });
  const port = freePort();
  const server = startServer({ DATA_DIR: dir, PORT: String(port), INFERENCE_URL: stub.url, ...env });
  try {
    await server.waitFor(/^listening on/);
    await fn({ base: `http://127.0.0.1:${port}`, dir, server, stub });
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* already gone */ }
    await server.status;
    await stub.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function startReply(base: string, content: string) {
  const http = await signInOverHttp(base);
  const created = await http.fetch(`/sessions`, { method: "POST", redirect: "manual" });
  await created.body?.cancel();
  const location = created.headers.get("location")!;
  const response = await http.fetch(`${location}/messages`, {
    method: "POST",
    headers: { "hx-request": "true", "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ content }),
  });
  return sseReader(response);
}

async function storedReplies(dir: string): Promise<Message[]> {
  const database = await openPglite({ dataDir: join(dir, "pglite") });
  try {
    const admin = await findUserByEmail(database.db, "admin@example.test");
    const [session] = await listChats(database.db, { ownerId: admin!.id });
    return (await listMessages(database.db, session.id)).filter((m) => m.role === "assistant");
  } finally {
    await database.close();
  }
}

Deno.test("shutdown: SIGTERM lets a reply that finishes within the deadline complete", async () => {
  const tokens = Array.from({ length: 20 }, (_, i) => ` f${i}`);
  await withServer(
    { tokens, delayMs: 40 },
    { SHUTDOWN_TIMEOUT_SECONDS: "10" },
    async ({ base, dir, server }) => {
      const reader = await startReply(base, "Finish me");
      await reader.next();
      await reader.next();
      server.kill("SIGTERM");
      const events = [];
      for (let e = await reader.next(); e; e = await reader.next()) events.push(e);
      assert.equal(events.at(-1)?.event, "done");
      assert.equal((await server.status).code, 0);
      const [reply] = await storedReplies(dir);
      assert.equal(reply.status, "completed");
      assert.equal(reply.content, tokens.join(""));
    },
  );
});

Deno.test("shutdown: SIGTERM stops a reply still running at the deadline and stores it as interrupted", async () => {
  const tokens = Array.from({ length: 500 }, (_, i) => ` s${i}`);
  await withServer(
    { tokens, delayMs: 30 },
    // Deno Deploy's default: Deploy kills an instance 5 s after SIGINT.
    { SHUTDOWN_TIMEOUT_SECONDS: "4" },
    async ({ base, dir, server, stub }) => {
      const reader = await startReply(base, "Too long to finish");
      const events = [(await reader.next())!, (await reader.next())!];
      const killed = performance.now();
      server.kill("SIGTERM");
      for (let e = await reader.next(); e; e = await reader.next()) events.push(e);
      assert.equal(events.at(-1)?.event, "done", "the browser is told how the reply ended");
      assert.match(events.at(-2)!.data, /The server was restarting/);
      assert.equal((await server.status).code, 0);
      const took = performance.now() - killed;
      assert.ok(
        took >= 2000 && took < 4500,
        `the reply ran until the budget's end and the process stopped inside it: ${took.toFixed(0)} ms`,
      );
      assert.ok(stub.requests[0].abortedAt !== null, "the endpoint request was closed");
      assert.match(server.output(), /stopped 1 generation\(s\) at the deadline/);
      const [reply] = await storedReplies(dir);
      assert.deepEqual([reply.status, reply.finishReason], ["interrupted", "shutdown"]);
      assert.equal(reply.content, streamedText(events), "what the reader saw is what was stored");
      assert.ok(reply.content.length > 0);
    },
  );
});

Deno.test("crash: a reply left streaming by a killed process is marked interrupted at the next start", async () => {
  const tokens = Array.from({ length: 500 }, (_, i) => ` k${i}`);
  const dir = await Deno.makeTempDir({ prefix: "rounds-crash-" });
  const stub = startStub({ defaultScript: { tokens, delayMs: 20 } });
  try {
    const port = freePort();
    const first = startServer({ DATA_DIR: dir, PORT: String(port), INFERENCE_URL: stub.url });
    await first.waitFor(/^listening on/);
    const reader = await startReply(`http://127.0.0.1:${port}`, "Crash during this");
    for (let i = 0; i < 80; i++) await reader.next(); // well past the first checkpoint
    first.kill("SIGKILL");
    await first.status;
    await reader.cancel();
    const second = startServer({ DATA_DIR: dir, PORT: String(freePort()), INFERENCE_URL: stub.url });
    await second.waitFor(/^listening on/);
    assert.match(
      second.output(),
      /marked 1 reply\(ies\) left unfinished by an earlier process as interrupted/,
    );
    second.kill("SIGTERM");
    await second.status;
    const [reply] = await storedReplies(dir);
    assert.deepEqual([reply.status, reply.finishReason], ["interrupted", "server_restart"]);
    assert.ok(reply.content.startsWith(" k0 k1"), "the checkpointed text survived the crash");
  } finally {
    await stub.close();
    await Deno.remove(dir, { recursive: true });
  }
});
