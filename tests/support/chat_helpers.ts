/**
 * Helpers for chat tests: the real app wired to a real stub endpoint, and form posts as htmx sends them.
 */
import { startStub, type Stub, type StubScript } from "./endpoint_stub.ts";
import { createTestApp, type TestApp, type TestAppOptions } from "./test_app.ts";

/** htmx's request header: asks for fragments and event streams instead of pages and redirects. */
export const HX = { "hx-request": "true" };

/**
 * Per-minute limits count in fixed windows on the clock's minutes. A test that counts to a limit calls this
 * first: past 40 s into a minute it waits for the next one, so its requests (seconds on a loaded host) cannot
 * straddle two windows and find the count reset.
 */
export async function startEarlyInAMinute(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 40_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 50));
}

/** A test app and the stub it talks to. */
export interface ChatFixture {
  t: TestApp;
  stub: Stub;
  /** Creates a session and returns its id. */
  session(fields?: Record<string, string>): Promise<string>;
  /** POSTs a form (urlencoded) to the app. */
  post(path: string, fields?: Record<string, string>, headers?: Record<string, string>): Promise<Response>;
  /** Sends a message the way the composer does. */
  send(
    sessionId: string,
    content: string,
    options?: { clientId?: string; headers?: Record<string, string> },
  ): Promise<Response>;
}

/** Options: the stub's default script, extra environment, runner timings. */
export interface ChatOptions extends TestAppOptions {
  script?: StubScript;
  /** No INFERENCE_URL: the app runs without a model. */
  noModel?: boolean;
}

/** Runs fn with a fresh app on a fresh database, talking to a fresh stub; closes everything. */
export async function withChat(
  fn: (f: ChatFixture) => Promise<void>,
  options: ChatOptions = {},
): Promise<void> {
  const stub = startStub({ defaultScript: options.script ?? {} });
  const env = options.noModel ? { ...options.env } : { INFERENCE_URL: stub.url, ...options.env };
  // Files may name the stub as STUB: it only gets its URL now.
  const files = Object.fromEntries(
    Object.entries(options.files ?? {}).map(([k, v]) => [k, v.replaceAll("STUB", stub.url)]),
  );
  const t = await createTestApp({ ...options, env, files });
  const post = (path: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    t.request(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  const fixture: ChatFixture = {
    t,
    stub,
    post,
    async session(fields = {}) {
      const response = await post("/sessions", fields);
      const location = response.headers.get("location") ?? "";
      const id = location.match(/^\/sessions\/([0-9a-f-]{36})$/)?.[1];
      if (response.status !== 303 || !id) {
        throw new Error(`POST /sessions answered ${response.status} ${location}`);
      }
      return id;
    },
    send(sessionId, content, opts = {}) {
      const fields: Record<string, string> = { content };
      if (opts.clientId) fields.client_id = opts.clientId;
      return post(`/sessions/${sessionId}/messages`, fields, { ...HX, ...opts.headers });
    },
  };
  try {
    await fn(fixture);
  } finally {
    await t.close();
    await stub.close();
  }
}
