/**
 * Fuzz: thousands of generated hostile inputs (oversized, invalid UTF-8, control characters, HTML / script / htmx
 * injection) sent to the real app, in messages, titles, corrections, searches, paths, form bodies, case imports,
 * and in model output streamed split at every character and at every byte. Every response must be below 500, and
 * no page, fragment or event may carry markup that runs script or drives htmx.
 *
 * Inputs come from a seeded generator: a failure prints the seed and the input; replay with FUZZ_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { inArray } from "drizzle-orm";
import { ACTIVE_STATUSES, listMessages } from "../db/messages.ts";
import { messages } from "../db/schema.ts";
import { MAX_MESSAGE_CHARS, stripControlCharacters } from "../safety/limits.ts";
import { startStub } from "./support/endpoint_stub.ts";
import {
  createRng,
  executableMarkup,
  FRAGMENTS,
  hasLoneSurrogate,
  hostileText,
  invalidUtf8,
  percentEncode,
  type Rng,
} from "./support/hostile_inputs.ts";
import { readAll, type SseEvent, streamedText } from "./support/sse_client.ts";
import { createTestApp, DRIVER, type TestUser } from "./support/test_app.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20_250_611);

/** Limits out of the way: the fuzz sends hundreds of messages a minute as one user. */
const LIMITS = {
  RATE_LIMIT_MESSAGES_PER_MINUTE: "10000",
  DAILY_TOKEN_BUDGET: "0",
  MAX_CONCURRENT_STREAMS: "100",
};

const encoder = new TextEncoder();
const FORM = "application/x-www-form-urlencoded";
const HX = { "hx-request": "true" };

/** One hostile request, as sent. */
interface Probe {
  method: "GET" | "POST";
  path: string;
  /** What was hostile about it, for the failure report. */
  input: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  /** Set for multipart bodies that Request.formData() cannot parse. */
  unreadable?: boolean;
}

/**
 * Product bugs this fuzz found, not yet fixed. A probe matching one may answer 5xx without failing the test, but
 * each must still reproduce: once fixed, the test says so, and the entry (and any `clean: true` it forced on a
 * generator below) should go.
 */
const KNOWN_BUGS: { id: string; bug: string; matches(probe: Probe): boolean }[] = [
  // Empty: the eight bugs this fuzz found (5xx on malformed escapes, NUL in filters and imports, unreadable
  // multipart bodies, line breaks in case ids, and a NUL in model output wedging a session) are fixed.
];

/** What a run found: every request counted, every failure with the input that caused it. */
class Findings {
  tried = 0;
  readonly statuses = new Map<number, number>();
  readonly failures: string[] = [];
  readonly knownHits = new Map<string, number>();
  readonly knownTried = new Set<string>();

  constructor(readonly name: string, readonly seed: number) {}

  /** Sends a probe as user and checks the response; returns it with its body read. */
  async send(
    user: Pick<TestUser, "request">,
    probe: Probe,
  ): Promise<{ status: number; location: string | null; html: string; events: SseEvent[] }> {
    this.tried++;
    const type = probe.headers?.["content-type"] ?? "";
    if (type.startsWith("multipart/") && probe.body !== undefined) {
      probe.unreadable = await new Response(probe.body as BodyInit, { headers: { "content-type": type } })
        .formData().then(() => false, () => true);
    }
    let response: Response;
    try {
      response = await user.request(probe.path, {
        method: probe.method,
        headers: probe.headers,
        body: probe.body as BodyInit | undefined,
      });
    } catch (error) {
      this.fail(probe, `threw ${error}`);
      return { status: 0, location: null, html: "", events: [] };
    }
    return await this.inspect(probe, response);
  }

  /** Checks a response: status, redirect target, and every byte of markup in its body. */
  async inspect(probe: Probe, response: Response) {
    const status = response.status;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    const known = KNOWN_BUGS.find((k) => k.matches(probe));
    if (known) this.knownTried.add(known.id);
    if (status >= 500) {
      if (known) this.knownHits.set(known.id, (this.knownHits.get(known.id) ?? 0) + 1);
      else this.fail(probe, `status ${status}`);
    }
    const location = response.headers.get("location");
    if (location !== null && !/^\/(?!\/)/.test(location)) {
      this.fail(probe, `redirects off-site to ${location}`);
    }
    const type = response.headers.get("content-type") ?? "";
    let html = "";
    let events: SseEvent[] = [];
    if (type.startsWith("text/event-stream")) {
      events = await readAll(response);
      for (const problem of streamProblems(events)) this.fail(probe, problem);
    } else if (type.startsWith("text/html")) {
      html = await response.text();
      for (const found of executableMarkup(html)) this.fail(probe, `executable markup ${found}`);
    } else {
      await response.body?.cancel();
    }
    return { status, location, html, events };
  }

  /** Checks a page or fragment that shows earlier input. */
  async page(user: Pick<TestUser, "request">, path: string, input: string): Promise<string> {
    return (await this.send(user, { method: "GET", path, input })).html;
  }

  /** Records whether a known bug checked on its own still reproduces. */
  known(id: string, reproduced: boolean) {
    this.knownTried.add(id);
    if (reproduced) this.knownHits.set(id, (this.knownHits.get(id) ?? 0) + 1);
  }

  fail(probe: Probe, problem: string) {
    this.failures.push(
      `${problem.slice(0, 300)}\n    ${probe.method} ${probe.path.slice(0, 200)}\n    input: ${
        JSON.stringify(probe.input).slice(0, 400)
      }`,
    );
  }

  /** Fails with the first few problems; requires at least `minimum` requests; checks known bugs still occur. */
  assertClean(minimum: number) {
    const statuses = [...this.statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(" ");
    console.log(`${this.name}: ${this.tried} hostile requests (seed ${this.seed}); statuses ${statuses}`);
    for (const [id, n] of this.knownHits) {
      console.log(`  KNOWN BUG ${id} (${n} requests): ${KNOWN_BUGS.find((k) => k.id === id)!.bug}`);
    }
    assert.deepEqual(
      this.failures.slice(0, 8),
      [],
      `${this.failures.length} problems (replay with FUZZ_SEED=${this.seed}); the first ones are shown`,
    );
    const fixed = [...this.knownTried].filter((id) => !this.knownHits.has(id));
    assert.deepEqual(fixed, [], "these known bugs no longer reproduce: remove them from KNOWN_BUGS");
    assert.ok(this.tried >= minimum, `${this.tried} requests, expected at least ${minimum}`);
  }
}

/** What is wrong with a stream of server-sent events: names, ids, order, and markup in any message. */
function streamProblems(events: SseEvent[]): string[] {
  const problems: string[] = [];
  events.forEach((e, i) => {
    if (e.event !== null && e.event !== "done") problems.push(`SSE event named ${JSON.stringify(e.event)}`);
    if (e.event === "done" && i !== events.length - 1) {
      problems.push(`SSE "done" at ${i} of ${events.length}`);
    }
    if (e.id === null || !/^([0-9a-z]{1,10}|end)$/.test(e.id)) {
      problems.push(`SSE id ${JSON.stringify(e.id)}`);
    }
    const delta = e.id !== "end" && !e.data.startsWith("<hx-partial");
    if (delta && e.data.includes("<")) {
      problems.push(`SSE text delta carries markup: ${e.data.slice(0, 200)}`);
    }
    for (const found of executableMarkup(e.data)) problems.push(`executable markup in SSE data: ${found}`);
  });
  if (events.at(-1)?.event !== "done") problems.push("the stream did not end with done");
  return problems;
}

/** Runs fn over items, width at a time. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index], index);
    }
  }));
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

function concat(...parts: (string | Uint8Array)[]): Uint8Array {
  const bytes = parts.map((p) => typeof p === "string" ? encoder.encode(p) : p);
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of bytes) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** A multipart body with the given raw values (bytes are sent as they are, valid UTF-8 or not). */
function multipart(fields: Record<string, string | Uint8Array>, filename?: string): {
  body: Uint8Array;
  type: string;
} {
  const boundary = "----fuzz" + "x".repeat(12);
  const parts = Object.entries(fields).flatMap(([name, value]) => [
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${
      filename && name === "file" ? `; filename="${filename}"` : ""
    }\r\n${filename && name === "file" ? "Content-Type: application/json\r\n" : ""}\r\n`,
    value,
    "\r\n",
  ]);
  return { body: concat(...parts, `--${boundary}--\r\n`), type: `multipart/form-data; boundary=${boundary}` };
}

/** Splits text into 1 to n pieces at random code-unit positions (a surrogate pair may be cut). */
function randomTokens(rng: Rng, text: string, n: number): string[] {
  const cuts = Array.from({ length: rng.int(0, n - 1) }, () => rng.int(0, text.length)).sort((a, b) => a - b);
  const tokens: string[] = [];
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    tokens.push(text.slice(from, cut));
    from = cut;
  }
  return tokens.filter((t) => t !== "");
}

async function newSession(t: Pick<TestUser, "request">, title = ""): Promise<string> {
  const response = await t.request("/sessions", {
    method: "POST",
    headers: { "content-type": FORM },
    body: form({ title }),
  });
  const id = response.headers.get("location")?.match(/^\/sessions\/([0-9a-f-]{36})$/)?.[1];
  if (response.status !== 303 || !id) throw new Error(`POST /sessions answered ${response.status}`);
  return id;
}

Deno.test({
  name:
    `fuzz [${DRIVER}]: hostile messages, model replies and corrections, streamed and plain, and their pages`,
  async fn() {
    const rng = createRng(SEED + 1);
    const found = new Findings("messages", SEED + 1);
    const stub = startStub({ defaultScript: { tokens: ["ok"] } });
    const t = await createTestApp({ env: { INFERENCE_URL: stub.url, ...LIMITS } });
    try {
      // Accepted messages: hostile content, and a hostile reply in a few random tokens. Twelve per session, four
      // sessions at a time; each session's page is checked once its messages and corrections are in.
      const MESSAGES = 480;
      const PER_SESSION = 12;
      const jobs = Array.from({ length: MESSAGES }, (_, i) => ({
        content: hostileText(rng),
        reply: randomTokens(rng, hostileText(rng, { maxLength: 600 }), 4),
        htmx: i % 2 === 0,
      }));
      const batches = Array.from(
        { length: MESSAGES / PER_SESSION },
        (_, i) => jobs.slice(i * PER_SESSION, (i + 1) * PER_SESSION),
      );
      // Drawn up front: the sessions run concurrently, and draws made inside them would vary with the timing.
      const corrections = batches.map(() =>
        Array.from({ length: 5 }, () => ({
          correction: hostileText(rng),
          rating: rng.pick(["up", "down", "none", "sideways", ""]),
        }))
      );
      let answered = 0;
      let acceptable = 0;
      await pool(batches, 4, async (batch, b) => {
        const id = await newSession(t);
        for (const job of batch) {
          // Only a message the app accepts calls the endpoint and takes a script from the queue.
          const text = stripControlCharacters(job.content).trim();
          if (text && text.length <= MAX_MESSAGE_CHARS) {
            stub.enqueue({ tokens: job.reply.length ? job.reply : ["ok"] });
            acceptable++;
          }
          const { status } = await found.send(t, {
            method: "POST",
            path: `/sessions/${id}/messages`,
            input: `message ${job.content} / model reply ${job.reply.join("")}`,
            body: form({ content: job.content }),
            headers: { "content-type": FORM, ...(job.htmx ? HX : {}) },
          });
          if (status === 200 || status === 303) answered++;
        }
        const replies = (await listMessages(t.database.db, id)).filter((m) => m.role === "assistant");
        for (const [i, { correction, rating }] of corrections[b].entries()) {
          const reply = replies[i % replies.length];
          await found.send(t, {
            method: "POST",
            path: `/sessions/${id}/messages/${reply.id}/feedback`,
            input: `correction ${correction}`,
            body: form({ rating, correction }),
            headers: { "content-type": FORM, ...(i % 2 ? HX : {}) },
          });
        }
        await found.page(t, `/sessions/${id}`, `the page of ${batch.length} hostile messages and replies`);
      });

      // Rejected messages: blank after stripping, over 8,000 characters, bodies over 256 KB.
      const rejected = await newSession(t);
      const blank = () =>
        Array.from(
          { length: rng.int(1, 20) },
          () => rng.pick(["\0", "\u0001", "\u001f", "\u007f", " ", "\t", "\n", "\r\n", "\u000b"]),
        ).join("");
      const over = () => {
        const text = hostileText(rng);
        return text + "x".repeat(Math.max(0, rng.int(8001, 12_000) - text.length));
      };
      const rejects: { content: string; multipart?: boolean }[] = [
        ...Array.from({ length: 60 }, () => ({ content: blank() })),
        ...Array.from({ length: 150 }, () => ({ content: over() })),
        ...Array.from({ length: 16 }, (_, i) => ({
          content: hostileText(rng) + "y".repeat(rng.int(256 * 1024, 600 * 1024)),
          multipart: i % 2 === 1,
        })),
      ];
      await pool(rejects, 4, async ({ content, multipart: asMultipart }, i) => {
        const encoded = asMultipart ? multipart({ content }) : { body: form({ content }), type: FORM };
        const { status } = await found.send(t, {
          method: "POST",
          path: `/sessions/${rejected}/messages`,
          input: `${content.length} characters: ${content.slice(0, 200)}`,
          body: encoded.body,
          headers: { "content-type": encoded.type, ...(i % 2 ? HX : {}) },
        });
        if (status === 200 || status === 303) {
          found.fail({ method: "POST", path: "", input: content }, "accepted");
        }
      });
      assert.equal((await listMessages(t.database.db, rejected)).length, 0, "nothing rejected was stored");

      // Once a bug: a reply with a NUL in it was never stored, and the session stayed busy for good.
      const wedged = await newSession(t);
      stub.enqueue({ tokens: ["a NUL \u0000 in a reply"] });
      const say = (content: string): Probe => ({
        method: "POST",
        path: `/sessions/${wedged}/messages`,
        input: content,
        body: form({ content }),
        headers: { "content-type": FORM, ...HX },
      });
      await found.send(t, say("Reply with a NUL"));
      const next = await found.send(t, say("And the next question?"));
      assert.equal(next.status, 200, "a NUL in model output is dropped; the session takes the next message");
      const stored = await listMessages(t.database.db, wedged);
      const reply = stored.find((m) => m.role === "assistant")!;
      assert.equal(
        reply.status,
        "completed",
        `the reply with a NUL is stored: ${reply.status} ${reply.error}`,
      );
      assert.ok(stored.every((m) => !m.content.includes("\u0000")), "without its NUL");
      await found.page(t, "/", "sessions named after hostile first messages");
      await found.page(t, `/sessions/${rejected}`, "a session after rejected messages");
      found.assertClean(MESSAGES + 5 * batches.length + rejects.length);
      // Every message the app should take was answered: none was turned away as busy by a reply stuck writing.
      assert.equal(answered, acceptable, `${answered} of ${acceptable} acceptable messages were answered`);
      const stuck = await t.database.db.select({ id: messages.id }).from(messages)
        .where(inArray(messages.status, ACTIVE_STATUSES));
      assert.equal(stuck.length, 0, "no reply is left writing");
    } finally {
      await t.close();
      await stub.close();
    }
  },
});

/** A reply that tries everything, with characters of one to four UTF-8 bytes and a surrogate pair. */
const STREAMED = "Hello <script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) " +
  '<div hx-get="/evil" hx-trigger="load">é ∑ 😀 \u202Egnp.exe &lt;b&gt; **done**';

/**
 * A stand-in endpoint that sends one prepared body per request in the pieces given, with a pause between them so
 * each arrives as a read of its own: how a reply can reach Rounds cut at any byte, even inside a character.
 */
function startPieceServer() {
  const queue: Uint8Array[][] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "GET") {
      return Response.json({ object: "list", data: [{ id: "pieces", object: "model" }] });
    }
    await req.body?.cancel();
    if (!path.endsWith("/completions")) return new Response("Not found", { status: 404 });
    const pieces = queue.shift() ?? [];
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        for (const [i, piece] of pieces.entries()) {
          if (i > 0) await new Promise((resolve) => setTimeout(resolve, 2));
          controller.enqueue(piece);
        }
        controller.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    enqueue: (pieces: Uint8Array[]) => void queue.push(pieces),
    close: () => server.shutdown(),
  };
}

/** The OpenAI completions stream of one token followed by the end. */
function completionStream(text: string): string {
  const chunk = (t: string, finish: string | null) =>
    `data: ${
      JSON.stringify({
        id: "x",
        object: "text_completion",
        created: 0,
        model: "x",
        choices: [{ index: 0, text: t, finish_reason: finish }],
      })
    }\n\n`;
  return chunk(text, null) + chunk("", "stop") + "data: [DONE]\n\n";
}

Deno.test({
  name:
    `fuzz [${DRIVER}]: a hostile reply cut into two tokens at every character and into two reads at every byte`,
  async fn() {
    const found = new Findings("streamed splits", SEED + 2);
    const stub = startStub();
    const pieces = startPieceServer();
    const byToken = await createTestApp({ env: { INFERENCE_URL: stub.url, ...LIMITS } });
    const byByte = await createTestApp({ env: { INFERENCE_URL: pieces.url, ...LIMITS } });
    try {
      const wire = encoder.encode(completionStream(STREAMED));
      // Every byte of the reply's text on the wire (and of the `data:` framing before it).
      const stream = completionStream(STREAMED);
      const textStart = encoder.encode(stream.slice(0, stream.indexOf('"text":"'))).length;
      const textEnd = encoder.encode(stream.slice(0, stream.indexOf('","finish_reason"'))).length + 2;
      const bytes = [...Array.from({ length: 6 }, (_, i) => i + 1), ...range(textStart, textEnd)];
      const splits = [
        ...range(1, STREAMED.length - 1).map((at) => ({ kind: "token" as const, at })),
        ...bytes.map((at) => ({ kind: "byte" as const, at })),
      ];
      // BUG (display only, not security): a token boundary inside a surrogate pair reaches the browser as two
      // U+FFFD while the reply streams (each half is encoded on its own); the stored and final text are right.
      // The live stream should hold back a trailing high surrogate until the next token.
      const pair = STREAMED.indexOf("\u{1F600}");
      const halved = STREAMED.replace("\u{1F600}", "\uFFFD\uFFFD");
      const PER_SESSION = 8;
      const groups = ["token", "byte"].flatMap((kind) => {
        const ofKind = splits.filter((s) => s.kind === kind);
        return Array.from(
          { length: Math.ceil(ofKind.length / PER_SESSION) },
          (_, i) => ofKind.slice(i * PER_SESSION, (i + 1) * PER_SESSION),
        );
      });
      await pool(groups, 4, async (group) => {
        const t = group[0].kind === "token" ? byToken : byByte;
        const id = await newSession(t);
        for (const [i, { kind, at }] of group.entries()) {
          if (kind === "token") stub.enqueue({ tokens: [STREAMED.slice(0, at), STREAMED.slice(at)] });
          else pieces.enqueue([wire.slice(0, at), wire.slice(at)]);
          const probe: Probe = {
            method: "POST",
            path: `/sessions/${id}/messages`,
            input: `reply split at ${kind} ${at}`,
            body: form({ content: `Split at ${kind} ${at}` }),
            headers: { "content-type": FORM, ...(i % 4 === 3 ? {} : HX) },
          };
          const { status, events } = await found.send(t, probe);
          const shown = streamedText(events);
          const cutPair = kind === "token" && at === pair + 1 && shown === halved;
          if (status === 200 && shown !== STREAMED && !cutPair) {
            found.fail(probe, `the stream shows ${JSON.stringify(streamedText(events))}`);
          }
        }
        const stored = (await listMessages(t.database.db, id)).filter((m) => m.role === "assistant");
        for (const [i, m] of stored.entries()) {
          if (m.content !== STREAMED) {
            found.fail(
              { method: "POST", path: `/sessions/${id}/messages`, input: JSON.stringify(group[i]) },
              `stored ${JSON.stringify(m.content)}`,
            );
          }
        }
        await found.page(t, `/sessions/${id}`, `replies split at ${JSON.stringify(group)}`);
      });
      found.assertClean(splits.length);
    } finally {
      await byToken.close();
      await byByte.close();
      await stub.close();
      await pieces.close();
    }
  },
});

/** A query value: invalid UTF-8, hostile text, NUL, or a very long string, percent-encoded. */
function queryValue(rng: Rng): string {
  switch (rng.int(0, 5)) {
    case 0:
    case 1:
      return percentEncode(invalidUtf8(rng, hostileText(rng, { maxLength: 300 })));
    case 2:
      return percentEncode(encoder.encode(hostileText(rng, { maxLength: 3000 })));
    case 3:
      return percentEncode(invalidUtf8(rng)) + rng.pick(["", "%", "%F", "%ZZ", "%%", "+", "&", "#"]);
    case 4:
      return "%00" + percentEncode(encoder.encode(rng.pick(FRAGMENTS)));
    default:
      return "x".repeat(rng.int(400, 12_000));
  }
}

/** A path segment: invalid UTF-8, malformed escapes, traversal, NUL, hostile text. */
function pathSegment(rng: Rng): string {
  switch (rng.int(0, 4)) {
    case 0:
      return percentEncode(invalidUtf8(rng));
    case 1:
      return rng.pick([
        "%00",
        "%2e%2e",
        "..%2F..%2Fetc%2Fpasswd",
        "%",
        "%G0",
        "%E2%82",
        "%C0%AF",
        "%2F%2Fevil.example",
      ]);
    case 2:
      return percentEncode(encoder.encode(hostileText(rng, { maxLength: 200 })));
    case 3:
      return crypto.randomUUID().slice(0, rng.int(30, 36)) + percentEncode(invalidUtf8(rng));
    default:
      return "a".repeat(rng.int(100, 5000));
  }
}

/** An example case with every free-text field replaced by hostile text (enumerated fields are kept). */
function hostileCase(rng: Rng, example: unknown, clean: boolean): unknown {
  const keep = new Set([
    "difficulty",
    "learnerLevel",
    "sex",
    "unit",
    "likelihood",
    "category",
    "format",
    "factId",
    "id",
  ]);
  const walk = (value: unknown, key: string): unknown => {
    if (typeof value === "string") {
      if (keep.has(key)) return value;
      const text = [...hostileText(rng, { maxLength: 100, clean })].slice(0, rng.int(1, 40)).join("");
      if (clean && (text.includes("\0") || hasLoneSurrogate(text))) return "evil";
      return text.trim() ? text : `evil${text}`;
    }
    if (Array.isArray(value)) return value.map((v) => walk(v, key));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    }
    return value;
  };
  return walk(example, "");
}

Deno.test({
  name:
    `fuzz [${DRIVER}]: invalid UTF-8, control characters and hostile text in queries, paths, forms and imports`,
  async fn() {
    const rng = createRng(SEED + 3);
    const found = new Findings("urls, forms and imports", SEED + 3);
    const t = await createTestApp({ env: LIMITS });
    try {
      // Searches and filters.
      const QUERIES = 2200;
      const queries = Array.from({ length: QUERIES }, (): Probe => {
        const route = rng.pick(["/cases", "/cases", "/knowledge", "/knowledge/search", "/admin/audit", "/"]);
        const names = route === "/cases"
          ? ["q", "q", "specialty", "tag", "difficulty", "level", "added", "done"]
          : route.startsWith("/knowledge")
          ? ["q", "q", "q", "source", "specialty"]
          : route === "/admin/audit"
          ? ["q", "actor", "action", "before"]
          : ["q"];
        const query = Array.from({ length: rng.int(1, 3) }, () => `${rng.pick(names)}=${queryValue(rng)}`)
          .join("&");
        const htmx = rng.chance(0.3);
        return {
          method: "GET",
          path: `${route}?${query}`,
          input: decodeLoosely(query),
          headers: htmx ? { ...HX, "hx-target": route === "/cases" ? "div#case-results" : "results" } : {},
        };
      });
      await pool(queries, 4, async (probe) => void await found.send(t, probe));

      // Path segments, on every route that takes one.
      const session = await newSession(t, "paths");
      const PATHS = 1000;
      const paths = Array.from({ length: PATHS }, (): Probe => {
        const x = pathSegment(rng);
        const path = rng.pick([
          `/sessions/${x}`,
          `/sessions/${x}/messages/${x}/stream`,
          `/sessions/${session}/messages/${x}/stream`,
          `/cases/${x}`,
          `/cases/${x}.json`,
          `/cases/${x}.md`,
          `/cases/${x}/print`,
          `/cases/${x}/versions/${x}`,
          `/cases/${x}/sections/${x}/edit`,
          `/snippets/${x}`,
          `/static/${x}`,
          `/knowledge/${x}`,
          `/${x}`,
          `/admin/users/${x}`,
        ]);
        return {
          method: "GET",
          path,
          input: decodeLoosely(x),
          headers: rng.chance(0.3) ? HX : {},
        };
      });
      await pool(paths, 4, async (probe) => void await found.send(t, probe));

      // Form bodies with raw invalid UTF-8 and hostile text, as a second user (their sidebar fills with titles).
      const other = await t.addUser("clinician");
      const target = await newSession(other, "rename target");
      const chat = await newSession(other, "chat");
      const raw = (name: string, value: Uint8Array) => concat(`${name}=`, value);
      const forms: Probe[] = [];
      for (let i = 0; i < 150; i++) {
        const title = invalidUtf8(rng, hostileText(rng, { maxLength: 400 }));
        forms.push({
          method: "POST",
          path: "/sessions",
          input: `new session titled (raw bytes) ${new TextDecoder().decode(title)}`,
          body: rng.chance(0.5) ? raw("title", title) : concat("title=", percentEncode(title)),
          headers: { "content-type": FORM },
        });
      }
      for (let i = 0; i < 200; i++) {
        const title = i < 195
          ? invalidUtf8(rng, hostileText(rng, { maxLength: 2000 }))
          : encoder.encode(hostileText(rng) + "T".repeat(rng.int(50_000, 200_000)));
        forms.push({
          method: "POST",
          path: `/sessions/${target}/rename`,
          input: `rename to ${new TextDecoder().decode(title).slice(0, 300)}`,
          body: i % 3 === 0 ? raw("title", title) : concat("title=", percentEncode(title)),
          headers: { "content-type": FORM, ...(i % 2 ? HX : {}) },
        });
      }
      for (let i = 0; i < 60; i++) {
        const content = invalidUtf8(rng, hostileText(rng, { maxLength: 1000 }));
        forms.push({
          method: "POST",
          path: `/sessions/${chat}/messages`,
          input: `message (raw bytes) ${new TextDecoder().decode(content)}`,
          body: raw("content", content),
          headers: { "content-type": FORM, ...(i % 2 ? HX : {}) },
        });
      }
      for (let i = 0; i < 50; i++) {
        const value = () =>
          new TextDecoder().decode(
            invalidUtf8(
              rng,
              rng.pick(["0.5", "1e309", "-0", "NaN", "0x10", hostileText(rng, { maxLength: 50 })]),
            ),
          );
        const fields = { model: value(), temperature: value(), topP: value(), maxNewTokens: value() };
        forms.push({
          method: "POST",
          path: `/sessions/${target}/settings`,
          input: `settings ${JSON.stringify(fields)}`,
          body: form(fields),
          headers: { "content-type": FORM, ...(i % 2 ? HX : {}) },
        });
      }
      for (const probe of forms.splice(0)) await found.send(other, probe);
      await found.page(other, `/sessions/${target}`, "a session renamed 200 times");

      // Corrections on the replies the raw-byte messages got, and multipart bodies (valid framing, bytes that are
      // not UTF-8 in values and file names; and framing that cannot be parsed).
      const replies = (await listMessages(t.database.db, chat)).filter((m) => m.role === "assistant");
      assert.ok(replies.length > 0, "some raw-byte messages were answered");
      for (let i = 0; i < 100; i++) {
        const correction = invalidUtf8(rng, hostileText(rng, { maxLength: 1000 }));
        forms.push({
          method: "POST",
          path: `/sessions/${chat}/messages/${replies[i % replies.length].id}/feedback`,
          input: `correction (raw bytes) ${new TextDecoder().decode(correction)}`,
          body: concat("rating=down&", raw("correction", correction)),
          headers: { "content-type": FORM, ...(i % 2 ? HX : {}) },
        });
      }
      for (let i = 0; i < 100; i++) {
        const value = invalidUtf8(rng, hostileText(rng, { maxLength: 500 }));
        const [path, name] = rng.pick([
          [`/sessions/${target}/rename`, "title"],
          [`/sessions/${chat}/messages`, "content"],
          ["/sessions", "title"],
          [`/sessions/${chat}/messages/${replies[0].id}/feedback`, "correction"],
        ]);
        const encoded = multipart(
          { [name]: value, file: invalidUtf8(rng) },
          new TextDecoder().decode(invalidUtf8(rng, 'evil".json')),
        );
        forms.push({
          method: "POST",
          path,
          input: `multipart ${name}=${new TextDecoder().decode(value)}`,
          body: encoded.body,
          headers: { "content-type": encoded.type, ...(i % 2 ? HX : {}) },
        });
      }
      const unreadable = ["", "garbage", "--x\r\n", "--x\r\nContent-Disposition: form-data\r\n\r\n", "--x--"];
      for (let i = 0; i < 40; i++) {
        const path = rng.pick([
          `/sessions/${target}/rename`,
          `/sessions/${chat}/messages`,
          "/sessions",
          "/cases/import",
        ]);
        forms.push({
          method: "POST",
          path,
          input: `unreadable multipart ${i}`,
          body: concat(rng.pick(unreadable), invalidUtf8(rng)),
          headers: {
            "content-type": rng.pick([
              "multipart/form-data",
              "multipart/form-data; boundary=x",
              "multipart/form-data; boundary=",
            ]),
          },
        });
      }
      await pool(forms.splice(0), 2, async (probe) => void await found.send(other, probe));
      await found.page(other, "/", "the sessions of a user whose titles are all hostile");
      await found.page(other, `/sessions/${chat}`, "a session of raw-byte messages and corrections");

      // Case imports: every free-text field hostile, NUL and lone surrogates included (they are made storable).
      const example = JSON.parse(
        await Deno.readTextFile(new URL("../data/cases/acute-gout.json", import.meta.url)),
      );
      let imported = 0;
      const IMPORTS = 120;
      for (let i = 0; i < IMPORTS; i++) {
        const json = JSON.stringify(hostileCase(rng, example, false), null, rng.chance(0.5) ? 2 : undefined);
        const encoded = i % 4 === 3
          ? multipart({ file: encoder.encode(json) }, "case.json")
          : { body: form({ json }), type: FORM };
        const { status, location } = await found.send(t, {
          method: "POST",
          path: "/cases/import",
          input: `case ${json.slice(0, 300)}`,
          body: encoded.body,
          headers: { "content-type": encoded.type },
        });
        if (status === 303 && location) {
          imported++;
          await found.page(t, location, `imported case ${json.slice(0, 200)}`);
          if (i % 4 === 0) await found.page(t, `${location}/print`, "the print pack of a hostile case");
          if (i % 4 === 1) {
            await found.page(t, `${location}/sections/history/edit`, "the editor of a hostile case");
          }
        }
      }
      const unstorable = [
        hostileCase(rng, example, true),
        hostileCase(rng, example, true),
        hostileCase(rng, example, true),
      ] as { case: { title: string } }[];
      unstorable[0].case.title = "NUL \0 in a title";
      unstorable[1].case.title = "A lone \uD800 surrogate";
      for (const value of unstorable) {
        const json = JSON.stringify(value);
        await found.send(t, {
          method: "POST",
          path: "/cases/import",
          input: `case ${json.slice(0, 300)}`,
          body: form({
            json: value === unstorable[2] ? json.replace('"title":"', '"title":"\\u0000') : json,
          }),
          headers: { "content-type": FORM },
        });
      }
      for (let i = 0; i < 30; i++) {
        const json = invalidUtf8(rng, JSON.stringify(hostileCase(rng, example, false)));
        await found.send(t, {
          method: "POST",
          path: "/cases/import",
          input: `case with bytes that are not UTF-8 ${new TextDecoder().decode(json).slice(0, 300)}`,
          body: raw("json", json),
          headers: { "content-type": FORM },
        });
      }
      await found.page(t, "/cases", "a library of hostile cases");
      found.assertClean(QUERIES + PATHS + 150 + 200 + 60 + 50 + 100 + 100 + 40 + IMPORTS + 3 + 30);
      assert.ok(imported >= IMPORTS / 2, `only ${imported} of ${IMPORTS} hostile cases were imported`);
    } finally {
      await t.close();
    }
  },
});

/** The integers from first to last. */
function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** Decodes what it can of a percent-encoded string, for readable failure reports. */
function decodeLoosely(text: string): string {
  return text.replace(/(%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

Deno.test("fuzz: the markup check finds every planted attack when it is live, and none when it is escaped", () => {
  const live = FRAGMENTS.filter((f) =>
    /<(script|img|svg|iframe|object|embed|base|meta|style|template|math)\b|<[a-z]+ [^>]*(on[a-z]+|hx-[a-z:]+|href|formaction)=/i
      .test(f)
  );
  // Comments, CDATA and a tag name broken by "<" are inert in a browser too.
  const inert = ["<scr<script>", "<!--", "<![CDATA["];
  const planted = live.filter((f) => !inert.some((i) => f.startsWith(i)));
  assert.ok(planted.length > 30);
  for (const fragment of planted) {
    assert.notDeepEqual(executableMarkup(fragment), [], fragment);
    assert.deepEqual(executableMarkup(`<p>${fragment.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</p>`), []);
  }
  assert.deepEqual(
    executableMarkup(
      '<script src="/static/app.js?v=1" nonce="n" defer></script><div hx-get="/sessions">x</div>',
    ),
    [],
    "the page's own scripts and hx attributes pass",
  );
});
