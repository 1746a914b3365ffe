/**
 * Request bodies are read in time (issue 19, item 21): a client that sends a body slowly, or stops halfway,
 * gets 408 instead of holding the request open; a body that arrives in time reaches the handler whole.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { BODY_IDLE_MS, bodyDeadline } from "../routes/hygiene.ts";
import { signInOverHttp, startServer } from "./support/server_process.ts";
import { freePort } from "./support/test_app.ts";

function app(options: { idleMs: number; totalMs: number }) {
  const hono = new Hono();
  hono.use(bodyDeadline({
    maxBytes: 1000,
    tooLarge: () => {
      throw new HTTPException(413, { message: "too large" });
    },
    ...options,
  }));
  hono.post("/", async (c) => c.text(`got ${(await c.req.text()).length}`));
  hono.onError((error, c) => c.text(error.message, error instanceof HTTPException ? error.status : 500));
  return hono;
}

/** A body that sends `pieces` bytes, one every `everyMs`, then stalls (or ends, when `end`). */
function trickle(pieces: number, everyMs: number, end: boolean): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      if (sent === pieces) {
        if (end) controller.close();
        else await new Promise(() => {}); // stalls for good
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
      controller.enqueue(new Uint8Array([97]));
      sent++;
    },
  });
}

const post = (hono: Hono, body: BodyInit) =>
  hono.request("/", { method: "POST", body, headers: { "content-type": "text/plain" } });

Deno.test("hygiene: a stalled body gets 408 after the idle time; a slow one after the total; a prompt one arrives", async () => {
  const hono = app({ idleMs: 200, totalMs: 1000 });
  let started = performance.now();
  const stalled = await post(hono, trickle(3, 10, false));
  assert.equal(stalled.status, 408);
  assert.match(await stalled.text(), /took too long to arrive/);
  assert.ok(performance.now() - started < 800, "refused after the idle time, not later");

  started = performance.now();
  const slow = await post(hono, trickle(20, 100, true));
  assert.equal(slow.status, 408, "a byte every 100 ms never idles 200 ms, but 2 s is past the total");
  assert.ok(performance.now() - started < 1600);

  const prompt = await post(hono, trickle(5, 10, true));
  assert.equal(await prompt.text(), "got 5");
  const large = await post(hono, "x".repeat(1001));
  assert.equal(large.status, 413);
});

Deno.test("hygiene: the real server answers slow request bodies with 408 and keeps serving others", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "rounds-slow-body-" });
  const port = freePort();
  const server = startServer({ DATA_DIR: dataDir, PORT: String(port), PATH: Deno.env.get("PATH") ?? "" });
  try {
    await server.waitFor(/listening on/, 60_000);
    const http = await signInOverHttp(`http://127.0.0.1:${port}`);
    // Forty clients start a sign-in form post, send a few bytes and stop.
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 40 }, async () => {
      const conn = await Deno.connect({ port });
      const head = `POST /sessions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${http.cookie}\r\n` +
        `X-CSRF-Token: ${http.csrf}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
        `Content-Length: 1000\r\n\r\ntitle=a`;
      await conn.write(new TextEncoder().encode(head));
      const buffer = new Uint8Array(64);
      const n = await conn.read(buffer);
      conn.close();
      return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
    }));
    const waited = performance.now() - started;
    for (const answer of answers) assert.match(answer, /^HTTP\/1\.1 408/, answer);
    assert.ok(waited < BODY_IDLE_MS + 5000, `answered after ${Math.round(waited)} ms`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
