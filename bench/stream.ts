/**
 * deno task bench:stream: streaming through Rounds against the endpoint stub at 50 tokens/s.
 *
 * 1. Latency: a client reading the stub directly and clients reading through Rounds, in the same run, on the
 *    same 2,000-token reply. Added latency per token = (receive − stub send) through Rounds minus the same for
 *    the direct client, token by token. `--latency-runs N` repeats this pair N times, each with the host's steal
 *    time over it: on a shared VM the tail follows the CPU the hypervisor takes. Then, for scale,
 *    the same reply is read directly and through a pass-through relay process: on a shared VM both say how much
 *    of the tail is the host rather than Rounds. Rounds' CPU per token, paced and back to back, and how often the
 *    kernel preempted its main thread, say the same from the server's side.
 *    This process is the measuring instrument, so its own pauses must stay out of the figures: its clients read
 *    into reused buffers, and the task runs it with a large young generation and no memory reducer (deno.json).
 * 2. Bytes on the wire ÷ final text bytes for that reply, counted on a raw TCP socket (headers, chunking and
 *    compression included), with and without gzip.
 * 3. 500 concurrent streams: first read straight from the stub all at once (the floor), then through Rounds;
 *    every streamed and stored reply compared with what the stub sent; the server's
 *    RSS growth, and what it still holds after 30 s idle.
 *
 * Rounds runs as its own process (main.ts on PGlite, or on Postgres with --database-url); the stub and the
 * clients run here, so stub send times and client receive times share one clock.
 */
import { join } from "node:path";
import process from "node:process";
import { openPglite, openPostgres } from "../db/client.ts";
import { listMessages } from "../db/messages.ts";
import { listChats } from "../db/chats.ts";
import { startStub, syntheticTokens } from "../tests/support/endpoint_stub.ts";
import {
  benchUserId,
  type HttpSession,
  signInOverHttp,
  startServer,
  taskV8Flags,
} from "../tests/support/server_process.ts";

/** The bench's signed-in user (set once the server is up). */
let http: HttpSession;
import { sseParser, sseReader, streamedText, unescapeText } from "../tests/support/sse_client.ts";
import { freePort } from "../tests/support/test_app.ts";
import { cpuTimes, postgresCpuMs, processCpu, stealPercent } from "./host_cpu.ts";
import { benchArgs, percentile } from "./common.ts";

const args = benchArgs();
const RATE = Number(args.get("rate") ?? 50);
const LONG_TOKENS = Number(args.get("tokens") ?? 2000);
const CONCURRENT = Number(args.get("concurrent") ?? 500);
const CONCURRENT_TOKENS = Number(args.get("concurrent-tokens") ?? 200);
const DATABASE_URL = args.get("database-url") || null;
/** Diagnostics: ask for uncompressed streams in the latency or concurrency phases. */
const LATENCY_GZIP = args.get("latency-gzip") !== "false";
const CONCURRENT_GZIP = args.get("concurrent-gzip") !== "false";
/** How many times the paired latency reading runs (each 2,000 tokens at 50 tokens/s takes 40 s). */
const LATENCY_RUNS = Math.max(1, Math.floor(Number(args.get("latency-runs") ?? 1)) || 1);
/** V8 flags for the Rounds process (DENO_V8_FLAGS), added to `deno task start`'s own, to compare settings. */
const SERVER_V8_FLAGS = args.get("server-v8-flags") || null;

const clock = () => performance.timeOrigin + performance.now();
const fmt = (n: number, digits = 2) => n.toFixed(digits);

function progress(label: string, done: number, total: number) {
  if (!Deno.stdout.isTerminal()) return;
  const width = 30;
  const filled = Math.round((done / total) * width);
  Deno.stdout.writeSync(
    new TextEncoder().encode(
      `\r${label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total}`,
    ),
  );
  if (done === total) Deno.stdout.writeSync(new TextEncoder().encode("\n"));
}

function rssKb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
}

/** The lowest RSS (KB) sampled every 200 ms over `seconds` of idling. */
async function lowestRss(pid: number, seconds: number): Promise<number> {
  let lowest = rssKb(pid);
  for (let i = 0; i < seconds * 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    lowest = Math.min(lowest, rssKb(pid));
  }
  return lowest;
}

/**
 * A response body as text, with the time each read returned. Both latency clients read this way, so the clock is
 * read as the bytes arrive, before any parsing, and the two pay the same. Reads go into one reusable buffer:
 * fetch's default reader hands out a fresh 64 KB buffer per read, and with a read per token that garbage made
 * this process (the measuring one) stop for full collections of up to 21 ms, which showed up as Rounds' latency.
 */
async function* timedText(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader({ mode: "byob" });
  const decoder = new TextDecoder();
  let buffer = new ArrayBuffer(64 * 1024);
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    const at = clock();
    if (done || !value) break;
    yield { text: decoder.decode(value, { stream: true }), bytes: value.length, at };
    buffer = value.buffer as ArrayBuffer;
  }
}

/** When each token (by cumulative text length) reached a reader of SSE deltas with offset ids. */
function tokenArrivals(tokens: string[], deltas: { offset: number; at: number }[]): number[] {
  const arrivals: number[] = [];
  let end = 0;
  let d = 0;
  for (const token of tokens) {
    end += token.length;
    while (d < deltas.length && deltas[d].offset < end) d++;
    arrivals.push(deltas[d]?.at ?? NaN);
  }
  return arrivals;
}

/** POSTs over a raw socket and counts every byte that comes back; decodes the body for checking. */
async function rawPost(port: number, path: string, form: Record<string, string>, gzip: boolean) {
  const body = new URLSearchParams(form).toString();
  const head = [
    `POST ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    "Content-Type: application/x-www-form-urlencoded",
    `Content-Length: ${new TextEncoder().encode(body).length}`,
    "HX-Request: true",
    `Cookie: ${http.cookie}`,
    `X-CSRF-Token: ${http.csrf}`,
    ...(gzip ? ["Accept-Encoding: gzip, deflate, br"] : []),
    "Connection: close",
    "",
    "",
  ].join("\r\n");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(head + body));
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of conn.readable) {
    chunks.push(chunk);
    total += chunk.length;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) all.set(c, (at += c.length) - c.length);
  const split = new TextDecoder("latin1").decode(all).indexOf("\r\n\r\n");
  const headers = new TextDecoder().decode(all.slice(0, split)).toLowerCase();
  let payload = all.slice(split + 4);
  if (headers.includes("transfer-encoding: chunked")) {
    const parts: number[] = [];
    let i = 0;
    while (i < payload.length) {
      const lineEnd = new TextDecoder("latin1").decode(payload.slice(i, i + 20)).indexOf("\r\n");
      const size = parseInt(new TextDecoder().decode(payload.slice(i, i + lineEnd)), 16);
      if (!size) break;
      parts.push(...payload.slice(i + lineEnd + 2, i + lineEnd + 2 + size));
      i += lineEnd + 2 + size + 2;
    }
    payload = new Uint8Array(parts);
  }
  const events = await readEvents(new Response(payload));
  return {
    wireBytes: total,
    bodyBytes: payload.length,
    text: streamedText(events),
    compressed: headers.includes("content-encoding: gzip"),
  };
}

async function readEvents(response: Response) {
  const reader = sseReader(response);
  const events = [];
  for (let e = await reader.next(); e; e = await reader.next()) events.push(e);
  return events;
}

async function newSession(): Promise<string> {
  const response = await http.fetch(`/sessions`, { method: "POST", redirect: "manual" });
  await response.body?.cancel();
  return response.headers.get("location")!;
}

/** Sends a question to a session, as the composer does; the reply streams back as the response. */
function postMessage(session: string, content: string, gzip = true): Promise<Response> {
  return http.fetch(`${session}/messages`, {
    method: "POST",
    headers: {
      "hx-request": "true",
      "content-type": "application/x-www-form-urlencoded",
      ...(gzip ? {} : { "accept-encoding": "identity" }),
    },
    body: new URLSearchParams({ content }),
  });
}

/**
 * A pass-through relay in its own process: it forwards the stub's stream untouched. Read alongside the others, it
 * shows what one more process between the stub and the client costs on this host at that moment, before Rounds
 * does any work: the floor under Rounds' added latency.
 */
async function startRelay(upstream: string) {
  const port = freePort();
  const code = `Deno.serve({ hostname: "127.0.0.1", port: ${port}, onListen: () => console.log("ready") },
    async (request) => {
      const response = await fetch(${JSON.stringify(upstream)} + "/v1/completions",
        { method: "POST", headers: { "content-type": "application/json" }, body: await request.text() });
      return new Response(response.body, { headers: { "content-type": "text/event-stream" } });
    });`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--unstable-no-legacy-abort", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // "ready"
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** Seconds between two CPU readings in ms, or "–" where one is missing. */
function cpuSeconds(before: number | null | undefined, after: number | null | undefined): string {
  return before == null || after == null ? "–" : fmt((after - before) / 1000, 1);
}

/** Reads the stub's OpenAI-format stream at `url`: when each token's event arrived, and the body's size. */
async function readStubStream(url: string, prompt: string, total: number) {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, stream: true, max_tokens: total }),
  });
  const parser = sseParser();
  const arrivals: number[] = [];
  let bodyBytes = 0;
  for await (const { text, bytes, at } of timedText(response.body!)) {
    bodyBytes += bytes;
    for (const e of parser.push(text)) {
      if (e.data.startsWith("{") && !e.data.includes('"finish_reason":"')) arrivals.push(at);
    }
  }
  return { arrivals, bodyBytes };
}

/** When each token was sent, for the request whose prompt contains `marker`. */
function sentTimes(stub: ReturnType<typeof startStub>, marker: string): number[] {
  return stub.requests.find((q) => JSON.stringify(q.body).includes(marker))!.sentAt;
}

/** The same reply read directly and through the relay at once: per-token latency the relay adds. */
async function measureRelay(stub: ReturnType<typeof startStub>, relayUrl: string, total: number) {
  const marker = crypto.randomUUID().slice(0, 8);
  const [direct, relayed] = await Promise.all([
    readStubStream(stub.url, `relay-direct-${marker}`, total),
    readStubStream(relayUrl, `relay-relayed-${marker}`, total),
  ]);
  const directSent = sentTimes(stub, `relay-direct-${marker}`);
  const relayedSent = sentTimes(stub, `relay-relayed-${marker}`);
  return relayed.arrivals
    .map((at, i) => at - relayedSent[i] - (direct.arrivals[i] - directSent[i]))
    .filter((x) => Number.isFinite(x));
}

/** Reads the long reply from the stub directly and through Rounds at the same time; per-token latencies. */
async function measureLatency(
  stub: ReturnType<typeof startStub>,
  tokens: string[],
  total: number,
  alsoRunning: Promise<unknown>[] = [],
) {
  const marker = crypto.randomUUID().slice(0, 8);
  const before = stub.requests.length;
  const session = await newSession();
  const direct = readStubStream(stub.url, `bench-direct-${marker}`, total);
  const throughRounds = (async () => {
    const response = await postMessage(session, `bench-latency-${marker}`, LATENCY_GZIP);
    const parser = sseParser();
    const deltas: { offset: number; at: number }[] = [];
    let streamed = "";
    for await (const { text, at } of timedText(response.body!)) {
      for (const e of parser.push(text)) {
        if (e.id && e.id !== "end" && !e.data.startsWith("<hx-partial")) {
          deltas.push({ offset: parseInt(e.id, 36), at });
          streamed += unescapeText(e.data);
        }
      }
    }
    return { deltas, streamed };
  })();
  const ticker = setInterval(() => {
    const sent = Math.max(0, ...stub.requests.slice(before).map((r) => r.sentAt.length));
    progress("  tokens", Math.min(sent, total), total);
  }, 500);
  const [d, r] = await Promise.all([direct, throughRounds, ...alsoRunning]);
  clearInterval(ticker);
  progress("  tokens", total, total);
  const directSent = sentTimes(stub, `bench-direct-${marker}`);
  const roundsSent = sentTimes(stub, `bench-latency-${marker}`);
  const directLatency = d.arrivals.map((at, i) => at - directSent[i]);
  const roundsLatency = tokenArrivals(tokens, r.deltas).map((at, i) => at - roundsSent[i]);
  const added = roundsLatency.map((l, i) => l - directLatency[i]).filter((x) => Number.isFinite(x));
  return {
    directLatency,
    roundsLatency,
    added,
    intact: r.streamed === tokens.join(""),
    directBodyBytes: d.bodyBytes,
  };
}

/** Each latency run's added p99, in order of the host's steal time over it. */
function perRunRow(runs: { added: number[]; steal: number | null }[]): [string, string] {
  const bySteal = [...runs].sort((a, b) => (a.steal ?? Infinity) - (b.steal ?? Infinity));
  return [
    "Added latency p99 per run, by the host's steal time over it",
    bySteal.map((r) => `${r.steal === null ? "?" : fmt(r.steal, 1)}% → ${fmt(percentile(r.added, 99))}`).join(
      ", ",
    ) + " ms",
  ];
}

/** How many latency runs met the goal on their own. */
function runsMeetingRow(runs: { added: number[]; steal: number | null }[]): [string, string] {
  const met = runs.filter((r) => percentile(r.added, 99) <= 2).length;
  return ["Latency runs whose added p99 was ≤ 2 ms", `${met} of ${runs.length}`];
}

async function main() {
  const stub = startStub();
  const dir = await Deno.makeTempDir({ prefix: "rounds-bench-" });
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  let testDatabase: string | null = null;
  let serverEnv: Record<string, string> = { DATA_DIR: dir };
  if (DATABASE_URL) {
    testDatabase = `rounds_bench_${Date.now()}`;
    const admin = openPostgres(DATABASE_URL, { poolSize: 1 });
    await admin.client.unsafe(`create database "${testDatabase}"`);
    await admin.close();
    const url = new URL(DATABASE_URL);
    url.pathname = `/${testDatabase}`;
    serverEnv = { DATABASE_URL: url.toString(), DATABASE_POOL_SIZE: "20" };
  }
  const server = startServer({
    ...serverEnv,
    PORT: String(port),
    INFERENCE_URL: stub.url,
    STREAM_GRACE_SECONDS: "60",
    // One bench user runs every stream: per-user limits would refuse most of them.
    MAX_CONCURRENT_STREAMS: String(Math.max(CONCURRENT, 1)),
    RATE_LIMIT_MESSAGES_PER_MINUTE: "10000",
    DAILY_TOKEN_BUDGET: "0",
    ...(SERVER_V8_FLAGS ? { DENO_V8_FLAGS: SERVER_V8_FLAGS } : {}),
  });
  await server.waitFor(/^listening on/, 60_000);
  http = await signInOverHttp(base);
  const database = DATABASE_URL ? "Postgres 15 + pgvector (local)" : "PGlite (embedded)";
  console.log(`Rounds pid ${server.child.pid} on ${database}; stub at ${stub.url}, ${RATE} tokens/s`);
  const v8Flags = taskV8Flags();
  console.log(
    `started as \`deno task start\` does (${v8Flags ?? "no V8 flags"})` +
      (SERVER_V8_FLAGS ? `, plus DENO_V8_FLAGS=${SERVER_V8_FLAGS}` : ""),
  );

  // Warm up the JIT and the database.
  stub.defaultScript = { tokens: syntheticTokens(50), delayMs: 1 };
  for (let i = 0; i < 5; i++) {
    const session = await newSession();
    await readEvents(
      await postMessage(session, `warm up ${i}`),
    );
  }

  // 1: latency. The long reply, read from the stub directly and through Rounds, at the same time.
  const tokens = syntheticTokens(LONG_TOKENS);
  const text = tokens.join("");
  const textBytes = new TextEncoder().encode(text).length;
  stub.defaultScript = { tokens, delayMs: 1000 / RATE };
  const seconds = fmt(LONG_TOKENS / RATE, 0);
  console.log(
    `1/3 latency: a ${LONG_TOKENS}-token reply (${seconds} s), read directly and through Rounds at once` +
      (LATENCY_RUNS > 1 ? `, ${LATENCY_RUNS} times…` : "…"),
  );
  const cpuBefore = cpuTimes();
  const serverBefore = processCpu(server.child.pid);
  const runs: { added: number[]; steal: number | null }[] = [];
  const pooled = { directLatency: [] as number[], roundsLatency: [] as number[], added: [] as number[] };
  let allIntact = true;
  let directBodyBytes = 0;
  for (let run = 1; run <= LATENCY_RUNS; run++) {
    const runCpu = cpuTimes();
    const one = await measureLatency(stub, tokens, LONG_TOKENS);
    const runSteal = stealPercent(runCpu, cpuTimes());
    runs.push({ added: one.added, steal: runSteal });
    pooled.directLatency.push(...one.directLatency);
    pooled.roundsLatency.push(...one.roundsLatency);
    pooled.added.push(...one.added);
    allIntact &&= one.intact;
    directBodyBytes = one.directBodyBytes;
    if (LATENCY_RUNS > 1) {
      console.log(
        `   run ${run}/${LATENCY_RUNS}: steal ${runSteal === null ? "unknown" : `${fmt(runSteal, 1)}%`}, ` +
          `added p50 / p99 ${fmt(percentile(one.added, 50))} / ${fmt(percentile(one.added, 99))} ms`,
      );
    }
  }
  const latency = { ...pooled, intact: allIntact, directBodyBytes };
  const serverAfter = processCpu(server.child.pid);
  const steal = stealPercent(cpuBefore, cpuTimes());
  const pacedTokens = LONG_TOKENS * LATENCY_RUNS;
  // The same reply again, sent as fast as the stub can: what the work per token costs when it is not paced.
  stub.defaultScript = { tokens, delayMs: 0 };
  const burstBefore = processCpu(server.child.pid);
  await readEvents(
    await postMessage(await newSession(), "bench-burst"),
  );
  const burstAfter = processCpu(server.child.pid);
  stub.defaultScript = { tokens, delayMs: 1000 / RATE };
  console.log(`   and for scale, the same reply directly and through a pass-through relay process…`);
  const relay = await startRelay(stub.url);
  const relayAdded = await measureRelay(stub, relay.url, LONG_TOKENS);
  await relay.close();

  // 2: bytes on the wire, gzip and not, counted on raw sockets; latency again with these two running too.
  console.log(`2/3 wire bytes: the same reply with and without gzip (and latency while three streams run)…`);
  const [gzipSession, plainSession] = [await newSession(), await newSession()];
  const wire = [
    rawPost(port, `${gzipSession}/messages`, { content: "bench-wire-gzip" }, true),
    rawPost(port, `${plainSession}/messages`, { content: "bench-wire-plain" }, false),
  ];
  const loaded = await measureLatency(stub, tokens, LONG_TOKENS, wire);
  const [gz, plain] = await Promise.all(wire);

  // 3: many streams at once.
  console.log(
    `3/3 ${CONCURRENT} concurrent streams of ${CONCURRENT_TOKENS} tokens at ${RATE} tokens/s each…`,
  );
  const sessions: string[] = [];
  for (let i = 0; i < CONCURRENT; i++) {
    sessions.push(await newSession());
    if (i % 25 === 24 || i === CONCURRENT - 1) progress("  sessions", i + 1, CONCURRENT);
  }
  const shortTokens = syntheticTokens(CONCURRENT_TOKENS);
  stub.defaultScript = { tokens: shortTokens, delayMs: 1000 / RATE };
  // The floor: the same streams read straight from the stub, all at once, in this run.
  const directStarted = performance.now();
  const direct = await Promise.all(
    sessions.map((_, i) => readStubStream(stub.url, `direct-concurrent-${i}`, CONCURRENT_TOKENS)),
  );
  const directWall = (performance.now() - directStarted) / 1000;
  const directShort = direct.filter((d) => d.arrivals.length !== CONCURRENT_TOKENS).length;
  // RSS moves on its own (V8 and PGlite's WebAssembly memory grow and give back lazily): the baseline is the
  // lowest reading over a 10 s idle pause, so what follows is growth under this load, not leftover churn.
  const rssBefore = await lowestRss(server.child.pid, 10);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssKb(server.child.pid))), 100);
  let finished = 0;
  // Where the phase's CPU went: Rounds, Postgres's backends (a local server), and this process (stub and clients).
  const phaseCpu = {
    server: processCpu(server.child.pid),
    postgres: DATABASE_URL ? postgresCpuMs() : null,
    bench: process.cpuUsage(),
  };
  const started = performance.now();
  const firstRequest = stub.requests.length;
  const results = await Promise.all(sessions.map(async (session, i) => {
    try {
      const response = await postMessage(session, `concurrent ${i}`, CONCURRENT_GZIP);
      if (response.status !== 200) return `HTTP ${response.status}`;
      const events = await readEvents(response);
      const ok = streamedText(events) === shortTokens.join("") && events.at(-1)?.event === "done";
      return ok ? null : "streamed text differs";
    } catch (error) {
      return String(error);
    } finally {
      progress("  streams", ++finished, CONCURRENT);
    }
  }));
  const wall = (performance.now() - started) / 1000;
  const phaseCpuAfter = {
    server: processCpu(server.child.pid),
    postgres: DATABASE_URL ? postgresCpuMs() : null,
  };
  const benchCpu = process.cpuUsage(phaseCpu.bench);
  // When each message's request reached the endpoint, from the first POST: how long taking in 500 messages took
  // while the earlier ones' replies streamed.
  const reached = stub.requests.slice(firstRequest).map((r) =>
    r.receivedAt - (performance.timeOrigin + started)
  );
  clearInterval(sampler);
  // What the server holds once the load is over and it sits idle.
  const rssAfter = await lowestRss(server.child.pid, 30);
  const streamFailures = results.filter((r) => r !== null);

  server.kill("SIGTERM");
  await server.status;
  // What was stored, read back after the server has gone.
  const store = DATABASE_URL
    ? openPostgres(serverEnv.DATABASE_URL, { poolSize: 2 })
    : await openPglite({ dataDir: join(dir, "pglite") });
  let storedBad = 0;
  let storedChecked = 0;
  for (
    const session of await listChats(store.db, { ownerId: await benchUserId(store.db), limit: 10_000 })
  ) {
    const messages = await listMessages(store.db, session.id);
    const question = messages.find((m) => m.role === "user")?.content ?? "";
    const reply = messages.find((m) => m.role === "assistant");
    const expected = question.startsWith("concurrent")
      ? shortTokens.join("")
      : question.startsWith("bench-")
      ? text
      : null;
    if (expected === null) continue;
    storedChecked++;
    if (!reply || reply.status !== "completed" || reply.content !== expected) storedBad++;
  }
  await store.close();
  if (testDatabase) {
    const admin = openPostgres(DATABASE_URL!, { poolSize: 1 });
    await admin.client.unsafe(`drop database if exists "${testDatabase}" with (force)`);
    await admin.close();
  }
  await stub.close();
  await Deno.remove(dir, { recursive: true });

  const ratio = (bytes: number) => fmt(bytes / textBytes);
  const ms = (values: number[], p: number) => fmt(percentile(values, p));
  const rows = [
    [
      "Machine",
      `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
    ],
    ["Database", database],
    [
      "Direct from the stub: latency per token p50 / p99",
      `${ms(latency.directLatency, 50)} / ${ms(latency.directLatency, 99)} ms`,
    ],
    [
      "Through Rounds: latency per token p50 / p99",
      `${ms(latency.roundsLatency, 50)} / ${ms(latency.roundsLatency, 99)} ms`,
    ],
    [
      "**Added latency per token p50 / p99** (goal p99 ≤ 2 ms)",
      `**${ms(latency.added, 50)} / ${ms(latency.added, 99)} ms** (p99.9 ${ms(latency.added, 99.9)} ms)`,
    ],
    [
      "For scale: a pass-through relay process (no work), added p50 / p99",
      `${ms(relayAdded, 50)} / ${ms(relayAdded, 99)} ms`,
    ],
    [
      `Host steal time during the Rounds latency run${
        LATENCY_RUNS > 1 ? "s" : ""
      } (CPU taken by other guests)`,
      steal === null ? "unknown (no /proc/stat)" : `${fmt(steal, 1)}%`,
    ],
    ...(LATENCY_RUNS > 1 ? [perRunRow(runs), runsMeetingRow(runs)] : []),
    [
      "Rounds' CPU per token: paced at the stub's rate / the same reply sent back to back",
      serverBefore && serverAfter && burstBefore && burstAfter
        ? `${fmt((serverAfter.cpuMs - serverBefore.cpuMs) / pacedTokens)} / ${
          fmt((burstAfter.cpuMs - burstBefore.cpuMs) / LONG_TOKENS)
        } ms (10 ms clock ticks)`
        : "unknown (no /proc)",
    ],
    [
      "Rounds' main thread: times the kernel took its core away, per paced token",
      serverBefore && serverAfter
        ? fmt((serverAfter.preempted - serverBefore.preempted) / pacedTokens)
        : "unknown",
    ],
    [
      "Added latency p50 / p99 with two more long streams running",
      `${ms(loaded.added, 50)} / ${ms(loaded.added, 99)} ms`,
    ],
    [`Final text of the ${LONG_TOKENS}-token reply`, `${textBytes.toLocaleString("en")} bytes`],
    [
      "**Bytes ÷ text bytes, gzip** (what browsers get; goal ≤ 3)",
      `**${ratio(gz.bodyBytes)} HTTP body**, ${
        ratio(gz.wireBytes)
      } counting every socket byte (headers and chunk framing)`,
    ],
    [
      "Bytes ÷ text bytes, uncompressed",
      `${ratio(plain.bodyBytes)} HTTP body, ${ratio(plain.wireBytes)} every socket byte`,
    ],
    [
      "For comparison: the endpoint's own stream (OpenAI format)",
      `${ratio(latency.directBodyBytes)} HTTP body`,
    ],
    [
      "Long replies intact (streamed = sent)",
      `${[latency.intact, loaded.intact, gz.text === text, plain.text === text].filter(Boolean).length} / 4`,
    ],
    [
      `**${CONCURRENT} concurrent streams: lost or corrupted**`,
      `**${streamFailures.length} streamed, ${storedBad} stored** (${storedChecked} stored replies checked)`,
    ],
    [
      `${CONCURRENT} concurrent streams: wall time`,
      `${fmt(wall, 1)} s (ideal ${fmt(CONCURRENT_TOKENS / RATE, 1)} s)`,
    ],
    [
      `${CONCURRENT} streams read straight from the stub, all at once: wall time`,
      `${fmt(directWall, 1)} s${directShort ? ` (${directShort} came up short)` : ""}`,
    ],
    [
      `${CONCURRENT} concurrent streams: their requests reached the endpoint, median / last`,
      `${fmt(percentile(reached, 50) / 1000, 1)} / ${
        fmt(Math.max(...reached) / 1000, 1)
      } s after the first POST`,
    ],
    [
      `${CONCURRENT} concurrent streams: CPU of Rounds / Postgres / this bench (stub and clients)`,
      `${cpuSeconds(phaseCpu.server?.cpuMs, phaseCpuAfter.server?.cpuMs)} / ${
        cpuSeconds(phaseCpu.postgres, phaseCpuAfter.postgres)
      } / ${fmt((benchCpu.user + benchCpu.system) / 1e6, 1)} s`,
    ],
    [
      `**Through Rounds ÷ straight from the stub** (goal ≤ 1.25)`,
      `**${fmt(wall / directWall, 2)}**`,
    ],
    [
      "**Server RSS growth under load** (goal ≤ 150 MB)",
      `**${fmt((rssPeak - rssBefore) / 1024, 1)} MB** (${fmt(rssBefore / 1024, 0)} → ${
        fmt(rssPeak / 1024, 0)
      } MB)`,
    ],
    ["Server RSS after the load, lowest over 30 s idle", `${fmt(rssAfter / 1024, 0)} MB`],
  ];
  console.log("\n| Measure | Result |\n| --- | --- |");
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  if (streamFailures.length) console.log("\nfirst failures:", streamFailures.slice(0, 5));
  if (gz.compressed !== true) console.log("\nwarning: the gzip client did not get a compressed response");
}

if (import.meta.main) await main();
