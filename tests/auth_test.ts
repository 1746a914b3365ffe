/**
 * Accounts and web security: sign-in, sign-out, expiry, revocation of open streams, CSRF, CSP, body limits and
 * the per-user limits. Runs on PGlite, and on Postgres when TEST_DATABASE_URL is set.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { listAudit } from "../db/audit.ts";
import { rows } from "../db/migrate.ts";
import { setUserDisabled } from "../db/users.ts";
import { MAX_BODY_BYTES } from "../safety/limits.ts";
import { HX, startEarlyInAMinute, withChat } from "./support/chat_helpers.ts";
import { limitedAddress } from "../routes/auth.ts";
import { sseReader } from "./support/sse_client.ts";
import { cookieOf } from "./support/server_process.ts";
import { DRIVER, TEST_PASSWORD, type TestApp, withTestApp } from "./support/test_app.ts";

const FORM = { "content-type": "application/x-www-form-urlencoded" };

/** The sign-in form's cookie and hidden token. */
async function loginForm(t: TestApp, base = "http://127.0.0.1:8000") {
  const page = await t.anonymous(`${base}/login`);
  assert.equal(page.status, 200);
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1];
  return { cookie: `rounds_login=${cookieOf(page, "rounds_login")}`, token };
}

async function signIn(
  t: TestApp,
  email: string,
  password: string,
  base = "http://127.0.0.1:8000",
  headers: Record<string, string> = {},
) {
  const form = await loginForm(t, base);
  return await t.anonymous(`${base}/login`, {
    method: "POST",
    headers: { ...FORM, ...headers, cookie: form.cookie },
    body: new URLSearchParams({ _csrf: form.token, email, password, next: "/cases" }),
  });
}

Deno.test(`auth [${DRIVER}]: a first run sends everyone to set-up; set-up makes the admin and signs them in`, async () => {
  await withTestApp(async (t) => {
    const home = await t.anonymous("/");
    assert.equal(home.status, 303);
    assert.equal(home.headers.get("location"), "/setup");
    const page = await t.anonymous("/setup");
    const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1];
    const cookie = `rounds_login=${cookieOf(page, "rounds_login")}`;
    const weak = await t.anonymous("/setup", {
      method: "POST",
      headers: { ...FORM, cookie },
      body: new URLSearchParams({
        _csrf: token,
        email: "lead@example.test",
        password: "short",
        confirm: "short",
      }),
    });
    assert.equal(weak.status, 422);
    assert.match(await weak.text(), /at least 12 characters/);
    const done = await t.anonymous("/setup", {
      method: "POST",
      headers: { ...FORM, cookie },
      body: new URLSearchParams({
        _csrf: token,
        email: "Lead@Example.test",
        name: "Dr Lead",
        password: TEST_PASSWORD,
        confirm: TEST_PASSWORD,
      }),
    });
    assert.equal(done.status, 303);
    const session = cookieOf(done, "rounds_session");
    assert.ok(session, "signed in at once");
    const signedIn = await t.anonymous("/", { headers: { cookie: `rounds_session=${session}` } });
    assert.equal(signedIn.status, 200);
    assert.match(await signedIn.text(), /lead@example\.test|Dr Lead/);
    // Set-up is over: it cannot make a second admin.
    assert.equal((await t.anonymous("/setup")).headers.get("location"), "/login");
  }, { users: false });
});

Deno.test(`auth [${DRIVER}]: sign-in checks the password, sets a strict cookie and returns to the page asked for`, async () => {
  await withTestApp(async (t) => {
    const wrong = await signIn(t, t.user.email, "not the password");
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /do not match an active account/);
    const unknown = await signIn(t, "nobody@example.test", TEST_PASSWORD);
    assert.equal(unknown.status, 401, "an unknown email gets the same answer");

    const ok = await signIn(t, t.user.email.toUpperCase(), TEST_PASSWORD);
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get("location"), "/cases");
    const header = ok.headers.getSetCookie().find((h) => h.startsWith("rounds_session="))!;
    assert.match(header, /HttpOnly/i);
    assert.match(header, /SameSite=Lax/i);
    assert.doesNotMatch(header, /Secure/i, "plain HTTP on localhost cannot send a Secure cookie back");

    const remote = await signIn(t, t.user.email, TEST_PASSWORD, "https://rounds.example.org");
    const secure = remote.headers.getSetCookie().find((h) => h.startsWith("rounds_session="))!;
    assert.match(secure, /Secure/i, "outside localhost the cookie is Secure");

    const actions = (await listAudit(t.database.db, { action: "login." })).map((e) => e.action);
    assert.deepEqual(actions.sort(), ["login.failed", "login.failed", "login.succeeded", "login.succeeded"]);

    // A password typed into the e-mail field is not written to the append-only log (issue 19, item 14).
    assert.equal((await signIn(t, "Tr0ub4dor&3-horse", "x")).status, 401);
    const failed = await listAudit(t.database.db, { action: "login.failed" });
    assert.equal(failed[0].actor, "(not an e-mail address)");
    const stored = JSON.stringify(await t.database.db.execute(sql`select * from audit_log`)) +
      JSON.stringify(await t.database.db.execute(sql`select * from rate_limits`));
    assert.doesNotMatch(stored, /Tr0ub4dor/i);
  });
});

Deno.test(`auth [${DRIVER}]: signed-out requests go to sign-in (pages), get 401 with HX-Redirect (htmx)`, async () => {
  await withTestApp(async (t) => {
    const page = await t.anonymous("/cases?q=asthma");
    assert.equal(page.status, 303);
    assert.equal(page.headers.get("location"), "/login?next=%2Fcases%3Fq%3Dasthma");
    const htmx = await t.anonymous("/sessions", { method: "POST", headers: { ...HX } });
    assert.equal(htmx.status, 401);
    assert.match(htmx.headers.get("hx-redirect") ?? "", /^\/login/);
    // An open redirect is refused: next must be a path on this site.
    const form = await loginForm(t);
    const out = await t.anonymous("/login", {
      method: "POST",
      headers: { ...FORM, cookie: form.cookie },
      body: new URLSearchParams({
        _csrf: form.token,
        email: t.user.email,
        password: TEST_PASSWORD,
        next: "//evil.example/",
      }),
    });
    assert.equal(out.headers.get("location"), "/");
  });
});

Deno.test(`auth [${DRIVER}]: logout, idle expiry, absolute expiry and disabling each end the session`, async () => {
  await withTestApp(async (t) => {
    const db = t.database.db;
    const idle = await t.addUser("clinician");
    const absolute = await t.addUser("clinician");
    const disabled = await t.addUser("educator");
    for (const u of [t.user, idle, absolute, disabled]) assert.equal((await u.request("/")).status, 200);

    const out = await t.request("/logout", { method: "POST" });
    assert.equal(out.status, 303);
    assert.equal((await t.request("/")).status, 303, "the old cookie no longer works after logout");

    await db.execute(
      sql`update auth_sessions set last_seen_at = now() - interval '16 minutes' where id = ${idle.signInId}`,
    );
    const expired = await idle.request("/");
    assert.equal(expired.status, 303);
    assert.match(expired.headers.get("location")!, /reason=expired/);

    await db.execute(
      sql`update auth_sessions set expires_at = now() - interval '1 second' where id = ${absolute.signInId}`,
    );
    assert.equal((await absolute.request("/")).status, 303, "past the absolute limit");

    await setUserDisabled(db, disabled.id, true);
    assert.equal((await disabled.request("/")).status, 303, "a disabled user's sessions end");
    const again = await signIn(t, disabled.email, TEST_PASSWORD);
    assert.equal(again.status, 401, "and they cannot sign in");
  }, { env: { SESSION_IDLE_MINUTES: "15" } });
});

Deno.test(`auth [${DRIVER}]: logout and disabling close the user's open streams within 5 s`, async () => {
  await withChat(async ({ t, stub, post }) => {
    const tokens = Array.from({ length: 400 }, (_, i) => ` t${i}`);
    stub.defaultScript = { tokens, delayMs: 30 };
    const clinician = await t.addUser("clinician");
    for (
      const [who, revoke] of [
        [t.user, () => t.request("/logout", { method: "POST" })],
        [clinician, () => setUserDisabled(t.database.db, clinician.id, true)],
      ] as const
    ) {
      const created = await who.request("/sessions", { method: "POST" });
      const location = created.headers.get("location")!;
      const response = await who.request(`${location}/messages`, {
        method: "POST",
        headers: { ...FORM, ...HX },
        body: new URLSearchParams({ content: "A long answer please" }),
      });
      assert.equal(response.status, 200);
      const reader = sseReader(response);
      await reader.next();
      const started = Date.now();
      await revoke();
      // The stream must end (no more events) well within 5 s, though the model would go on for 12 s.
      while (await reader.next() !== null) {
        assert.ok(Date.now() - started < 5000, "the stream is still open 5 s after revocation");
      }
      assert.ok(Date.now() - started < 5000, `ended after ${Date.now() - started} ms`);
    }
    void post;
  });
});

Deno.test(`auth [${DRIVER}]: state-changing requests need the session's token and a same-site origin`, async () => {
  await withTestApp(async (t) => {
    const none = await t.anonymous("/sessions", { method: "POST", headers: { cookie: t.user.cookie } });
    assert.equal(none.status, 403, "no token");
    assert.match(await none.text(), /security token/);
    const wrong = await t.anonymous("/sessions", {
      method: "POST",
      headers: { cookie: t.user.cookie, "x-csrf-token": "guess" },
    });
    assert.equal(wrong.status, 403, "a wrong token");
    const other = await t.addUser("clinician");
    const swapped = await t.anonymous("/sessions", {
      method: "POST",
      headers: { cookie: t.user.cookie, "x-csrf-token": other.csrf },
    });
    assert.equal(swapped.status, 403, "another session's token");
    const crossSite = await t.request("/sessions", {
      method: "POST",
      headers: { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    });
    assert.equal(crossSite.status, 403, "a cross-site origin, even with the token");
    const field = await t.anonymous("/sessions", {
      method: "POST",
      headers: { cookie: t.user.cookie, ...FORM },
      body: new URLSearchParams({ _csrf: t.user.csrf }),
    });
    assert.equal(field.status, 303, "the token as a form field (a plain form without JavaScript)");
    const header = await t.request("/sessions", { method: "POST", headers: { ...HX } });
    assert.equal(header.status, 303, "the token as a header (htmx)");
    const login = await t.anonymous("/login", {
      method: "POST",
      headers: FORM,
      body: new URLSearchParams({ email: t.user.email, password: TEST_PASSWORD }),
    });
    assert.equal(login.status, 403, "the sign-in form needs its own token (login CSRF)");
  });
});

Deno.test(`auth [${DRIVER}]: every HTML response carries a nonce CSP without unsafe-inline or unsafe-eval`, async () => {
  await withChat(async ({ t, session, send }) => {
    const id = await session();
    await (await send(id, "A question")).text();
    const caseId = rows<{ id: string }>(await t.database.db.execute(sql`select id from cases limit 1`))[0]
      ?.id;
    const pages: [string, Response][] = [];
    for (
      const path of [
        "/",
        `/sessions/${id}`,
        "/cases",
        "/cases/new",
        "/knowledge",
        "/admin/users",
        "/admin/audit",
      ]
    ) {
      pages.push([path, await t.request(path)]);
    }
    if (caseId) pages.push([`/cases/${caseId}`, await t.request(`/cases/${caseId}`)]);
    pages.push(["/login (anonymous)", await t.anonymous("/login")]);
    pages.push(["404", await t.request("/no/such/page")]);
    pages.push([
      "403",
      await t.anonymous("/sessions", { method: "POST", headers: { cookie: t.user.cookie } }),
    ]);
    pages.push([
      "413",
      await t.request("/sessions", {
        method: "POST",
        headers: FORM,
        body: "x=" + "a".repeat(MAX_BODY_BYTES + 10),
      }),
    ]);
    const nonces = new Set<string>();
    for (const [path, response] of pages) {
      assert.match(response.headers.get("content-type") ?? "", /text\/html/, path);
      const csp = response.headers.get("content-security-policy") ?? "";
      const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
      assert.ok(nonce, `${path}: a script nonce in ${csp}`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      const html = await response.text();
      for (const tag of html.match(/<script\b[^>]*>/g) ?? []) {
        assert.ok(tag.includes(`nonce="${nonce}"`), `${path}: ${tag} carries this response's nonce`);
      }
      nonces.add(nonce!);
    }
    assert.equal(nonces.size, pages.length, "a fresh nonce per response");
  });
});

Deno.test(`auth [${DRIVER}]: oversized bodies and messages get 413 with a readable page; nothing is stored`, async () => {
  await withChat(async ({ t, session, post }) => {
    const id = await session();
    const body = await t.request(`/sessions/${id}/messages`, {
      method: "POST",
      headers: FORM,
      body: "content=" + "a".repeat(MAX_BODY_BYTES + 1),
    });
    assert.equal(body.status, 413);
    assert.match(await body.text(), /larger than 256 KB/);
    const long = await post(`/sessions/${id}/messages`, { content: "b".repeat(8001) });
    assert.equal(long.status, 413);
    assert.match(await long.text(), /8,001 characters; the limit is 8,000/);
    const stored = rows<{ n: number }>(
      await t.database.db.execute(sql`select count(*)::int as n from messages where session_id = ${id}`),
    );
    assert.equal(Number(stored[0].n), 0);
  });
});

Deno.test(`auth [${DRIVER}]: per-user message rate, concurrent replies and the daily token budget are enforced`, async () => {
  await startEarlyInAMinute();
  await withChat(async ({ t, stub, session, send }) => {
    // Rate: 3 a minute.
    const a = await session();
    for (let i = 0; i < 3; i++) {
      const r = await send(a, `Question ${i}`);
      assert.equal(r.status, 200);
      await r.text();
    }
    const limited = await send(a, "One too many");
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) > 0);
    assert.match(await limited.text(), /3 messages this minute/);

    // Another user is not affected; their concurrent replies are capped at 1.
    const other = await t.addUser("clinician");
    stub.defaultScript = { tokens: Array.from({ length: 100 }, () => " x"), delayMs: 20 };
    const s1 = (await other.request("/sessions", { method: "POST" })).headers.get("location")!;
    const s2 = (await other.request("/sessions", { method: "POST" })).headers.get("location")!;
    const message = (content: string) => ({
      method: "POST",
      headers: { ...FORM, ...HX },
      body: new URLSearchParams({ content }),
    });
    const first = await other.request(`${s1}/messages`, message("Long reply"));
    assert.equal(first.status, 200);
    const second = await other.request(`${s2}/messages`, message("In parallel"));
    assert.equal(second.status, 429);
    assert.match(await second.text(), /being written already/);
    await first.text();

    // Budget: 150 tokens a day; the 100-token reply above leaves 50, the next 100 use them up.
    const r = await other.request(`${s2}/messages`, message("Another"));
    assert.equal(r.status, 200);
    await r.text();
    const over = await other.request(`${s2}/messages`, message("Over budget"));
    assert.equal(over.status, 429);
    assert.match(await over.text(), /budget of 150 generated tokens/);
  }, {
    env: { RATE_LIMIT_MESSAGES_PER_MINUTE: "3", MAX_CONCURRENT_STREAMS: "1", DAILY_TOKEN_BUDGET: "150" },
  });
});

Deno.test(`auth [${DRIVER}]: parallel messages cannot race past the concurrent-reply cap (issue 19, item 11)`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.defaultScript = { hang: true };
    const sessions = await Promise.all(Array.from({ length: 10 }, () => session()));
    // Ten messages at once, in ten sessions: before, the cap was read before any reply was stored, and 9 ran.
    const responses = await Promise.all(sessions.map((id, i) => send(id, `Parallel question ${i}`)));
    const started = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 429);
    assert.equal(started.length, 2, `${started.length} replies started with a cap of 2`);
    assert.equal(refused.length, 8);
    for (const r of refused) assert.match(await r.text(), /2 of your replies are being written already/);
    const [{ n }] = rows<{ n: number }>(
      await t.database.db.execute(sql`select count(*)::int as n from messages where role = 'assistant'`),
    );
    assert.equal(Number(n), 2, "refused messages store no reply");
    for (const id of sessions) await t.runner.stop(id);
    for (const r of started) await r.body?.cancel();
  }, { env: { MAX_CONCURRENT_STREAMS: "2", RATE_LIMIT_MESSAGES_PER_MINUTE: "100" } });
});

/** Signs in as a client at `address` (TRUST_PROXY is on in these tests: the proxy appends what it saw). */
const from = (address: string) => ({ "x-forwarded-for": address });

Deno.test(`auth [${DRIVER}]: five failed sign-ins slow an account to one attempt a minute per address, not lock it (issue 19, item 7)`, async () => {
  await withTestApp(async (t) => {
    const here = from("192.0.2.10");
    for (let i = 0; i < 5; i++) {
      assert.equal((await signIn(t, t.user.email, `wrong ${i}`, undefined, here)).status, 401);
    }
    // Slowed: the sixth attempt from this address is checked, the seventh within the minute is not.
    assert.equal((await signIn(t, t.user.email, "wrong 6", undefined, here)).status, 401);
    const slowed = await signIn(t, t.user.email, TEST_PASSWORD, undefined, here);
    assert.equal(slowed.status, 429);
    assert.match(await slowed.text(), /Too many sign-in attempts\. Wait \d+ seconds/);
    assert.ok(Number(slowed.headers.get("retry-after")) <= 60);
    // The owner, elsewhere, is not kept out by failures from here: at most the account's 10-second turn (all
    // addresses together), then a correct password signs in.
    const elsewhere = from("198.51.100.20");
    let owner = await signIn(t, t.user.email, TEST_PASSWORD, undefined, elsewhere);
    if (owner.status === 429) {
      const wait = Number(owner.headers.get("retry-after"));
      assert.ok(wait <= 10, `the owner waits ${wait} s`);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000 + 200));
      owner = await signIn(t, t.user.email, TEST_PASSWORD, undefined, elsewhere);
    }
    assert.equal(owner.status, 303);
    const other = await t.addUser("clinician", "other@example.test");
    assert.equal(
      (await signIn(t, other.email, TEST_PASSWORD, undefined, here)).status,
      303,
      "other accounts",
    );

    // At once: 25 wrong passwords for one account in parallel are not all checked (issue 19, item 5): five at
    // full speed and one for the slowed minute.
    const target = await t.addUser("clinician", "target@example.test");
    const statuses = await Promise.all(
      Array.from(
        { length: 25 },
        (_, i) => signIn(t, target.email, `guess ${i}`, undefined, here).then((r) => r.status),
      ),
    );
    const checked = (await listAudit(t.database.db, { action: "login.failed" }))
      .filter((e) => e.actor === target.email).length;
    assert.ok(checked <= 6, `${checked} of 25 parallel guesses were checked`);
    assert.equal(statuses.filter((s) => s === 429).length, 25 - checked);

    // Guesses from many addresses do not add up: a slowed account is tried once per 10 s from all of them,
    // and an IPv6 subscriber's /64 is one address.
    const spreadTarget = await t.addUser("clinician", "spread@example.test");
    for (let i = 0; i < 5; i++) {
      assert.equal(
        (await signIn(t, spreadTarget.email, `wrong ${i}`, undefined, from("192.0.2.77"))).status,
        401,
      );
    }
    const spread = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) =>
          signIn(t, spreadTarget.email, `spread ${i}`, undefined, from(`203.0.113.${100 + i}`))
            .then((r) => r.status),
      ),
    );
    assert.ok(
      spread.filter((s) => s === 401).length <= 2,
      `${spread.join(" ")}: at most one per 10 s window`,
    );
    assert.equal(limitedAddress("2001:db8:aa:bb:1:2:3:4"), "2001:db8:aa:bb::/64");
    assert.equal(limitedAddress("2001:db8:aa:bb::9"), "2001:db8:aa:bb::/64");
    assert.equal(limitedAddress("192.0.2.7"), "192.0.2.7");
  }, { env: { TRUST_PROXY: "true" } });
});

Deno.test(`auth [${DRIVER}]: made-up e-mails from one address do not lock out a real account there; successes do not count (issue 19, item 7)`, async () => {
  await withTestApp(async (t) => {
    const clinic = from("203.0.113.5");
    // 31 bad sign-ins with made-up e-mails from the clinic's one address: before, the admin was locked out for
    // 15 minutes with the right password.
    for (let i = 0; i < 31; i++) {
      const r = await signIn(t, `made-up-${i}@example.test`, "guess", undefined, clinic);
      assert.ok(r.status === 401 || r.status === 429);
    }
    assert.equal((await signIn(t, t.user.email, TEST_PASSWORD, undefined, clinic)).status, 303);
    // The address is over its budget: an account it has failed on waits; one it has not is still open.
    const refused = await signIn(t, "made-up-3@example.test", "guess", undefined, clinic);
    assert.equal(refused.status, 429);
    // A whole clinic signing in correctly behind that one address: successes never use the budget.
    const colleagues = await Promise.all(
      Array.from({ length: 5 }, (_, i) => t.addUser("clinician", `colleague-${i}@example.test`)),
    );
    for (let round = 0; round < 8; round++) {
      for (const colleague of colleagues) {
        assert.equal(
          (await signIn(t, colleague.email, TEST_PASSWORD, undefined, from("203.0.113.9"))).status,
          303,
        );
      }
    }
  }, { env: { TRUST_PROXY: "true" } });
});

Deno.test(`auth [${DRIVER}]: the audit log records reads and writes and cannot be changed`, async () => {
  await withChat(async ({ t, session, send }) => {
    const id = await session();
    await (await send(id, "Audited question")).text();
    await t.request(`/sessions/${id}`);
    const stranger = await t.addUser("clinician");
    assert.equal((await stranger.request(`/sessions/${id}`)).status, 404);
    const entries = await listAudit(t.database.db, { objectId: id });
    const actions = entries.map((e) => e.action).sort();
    assert.deepEqual(actions, ["access.denied", "message.create", "session.create", "session.read"]);
    const denied = entries.find((e) => e.action === "access.denied")!;
    assert.equal(denied.actor, stranger.email);
    for (const e of entries) assert.doesNotMatch(JSON.stringify(e), /Audited question/, "no message text");
    const appendOnly = (error: Error & { cause?: Error }) =>
      /append-only/.test(error.cause?.message ?? error.message);
    await assert.rejects(t.database.db.execute(sql`update audit_log set actor = 'someone else'`), appendOnly);
    await assert.rejects(t.database.db.execute(sql`delete from audit_log`), appendOnly);
    await assert.rejects(t.database.db.execute(sql`truncate audit_log`), appendOnly);
    const page = await t.request(`/admin/audit?object=${id}`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Refused: not theirs/);
    assert.match(html, new RegExp(`Chat: ${id.slice(0, 8)}…`), "a chat is named by its id, not its title");
    assert.doesNotMatch(html, /Audited question/, "administrators do not read clinicians' questions here");
    assert.equal((await stranger.request("/admin/audit")).status, 403, "admins only");
  });
});

Deno.test(`auth [${DRIVER}]: behind a proxy that ends TLS, the site's own https origin is accepted`, async () => {
  await withTestApp(async (t) => {
    const proxied = await t.request("http://rounds.example.org/sessions", {
      method: "POST",
      headers: { origin: "https://rounds.example.org", "sec-fetch-site": "same-origin" },
    });
    assert.equal(proxied.status, 303, "same host, https as the browser saw it");
    // X-Forwarded-Host counts only when Rounds was told it runs behind a proxy (issue 19, item 21).
    const claimed = await t.request("http://10.0.0.5:8000/sessions", {
      method: "POST",
      headers: { origin: "https://rounds.example.org", "x-forwarded-host": "rounds.example.org" },
    });
    assert.equal(claimed.status, 403, "without TRUST_PROXY the header is anyone's");
    const other = await t.request("http://rounds.example.org/sessions", {
      method: "POST",
      headers: { origin: "https://rounds.example.org.evil.example" },
    });
    assert.equal(other.status, 403);
    const opaque = await t.request("http://rounds.example.org/sessions", {
      method: "POST",
      headers: { origin: "null" },
    });
    assert.equal(opaque.status, 403, "an opaque origin (sandboxed frame, data: URL) is refused");
  });
});

Deno.test(`auth [${DRIVER}]: behind a proxy the address is the one the proxy saw, not what the client wrote (issue 19, item 6)`, async () => {
  for (const [trust, expected] of [["true", "198.51.100.7"], ["2", "192.0.2.50"]] as const) {
    await withTestApp(async (t) => {
      // The client writes what it likes on the left; the proxies append what they saw on the right.
      for (let i = 0; i < 3; i++) {
        const forwarded = `203.0.113.${i}, 192.0.2.50, 198.51.100.7`;
        const refused = await signIn(t, "nobody@example.test", "wrong", undefined, {
          "x-forwarded-for": forwarded,
        });
        assert.equal(refused.status, 401);
      }
      const failed = await listAudit(t.database.db, { action: "login.failed" });
      assert.deepEqual([...new Set(failed.map((e) => e.address))], [expected], `TRUST_PROXY=${trust}`);
    }, { env: { TRUST_PROXY: trust } });
  }
});

Deno.test(`auth [${DRIVER}]: the anti-forgery token goes into the app's own fields only, never into content (issue 19, item 12)`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    const id = await session();
    stub.enqueue({
      tokens: ["See https://evil.example/?t=__ROUNDS_CSRF_TOKEN__ and __ROUNDS_CSRF_TOKEN__."],
    });
    await (await send(id, "Tell me __ROUNDS_CSRF_TOKEN__")).text();
    await t.request(`/sessions/${id}/rename`, {
      method: "POST",
      headers: FORM,
      body: new URLSearchParams({ title: "Title __ROUNDS_CSRF_TOKEN__" }),
    });
    const html = await (await t.request(`/sessions/${id}`)).text();
    const token = t.user.csrf;
    const fields = html.match(/name="_csrf" value="[^"]*"/g) ?? [];
    assert.ok(
      fields.length > 3 && fields.every((f) => f === `name="_csrf" value="${token}"`),
      "forms get it",
    );
    const meta = html.includes(`<meta name="csrf-token" content="${token}">`) ? 1 : 0;
    assert.equal(html.split(token).length - 1, fields.length + meta, "and nothing else does");
    assert.ok(html.includes("Title __ROUNDS_CSRF_TOKEN__"), "content keeps the text as written");
  });
});

Deno.test(`auth [${DRIVER}]: behind a proxy that forwards to localhost over https, cookies keep Secure (issue 19, item 19)`, async () => {
  await withTestApp(async (t) => {
    const local = await signIn(t, t.user.email, TEST_PASSWORD);
    assert.equal(local.status, 303);
    const plain = local.headers.getSetCookie().find((h) => h.startsWith("rounds_session="))!;
    assert.doesNotMatch(plain, /;\s*Secure/i, "a laptop at http://127.0.0.1 gets a cookie it can send back");
    const proxies: Record<string, string>[] = [{ "x-forwarded-proto": "https" }, {
      forwarded: "for=192.0.2.1;proto=https",
    }];
    for (const headers of proxies) {
      const proxied = await signIn(t, t.user.email, TEST_PASSWORD, undefined, headers);
      assert.equal(proxied.status, 303);
      for (const cookie of proxied.headers.getSetCookie()) {
        assert.match(cookie, /;\s*Secure/i, `${JSON.stringify(headers)}: ${cookie.split("=")[0]}`);
      }
    }
  });
});

Deno.test(`auth [${DRIVER}]: with TRUST_PROXY set, a proxy that forwards Host: localhost and nothing else gets Secure cookies`, async () => {
  await withTestApp(async (t) => {
    const bare = await signIn(t, t.user.email, TEST_PASSWORD);
    assert.equal(bare.status, 303);
    for (const cookie of bare.headers.getSetCookie()) assert.match(cookie, /;\s*Secure/i, cookie);
  }, { env: { TRUST_PROXY: "1" } });
});

Deno.test(`auth [${DRIVER}]: behind TRUST_PROXY, the proxy's X-Forwarded-Host names the site`, async () => {
  await withTestApp(async (t) => {
    const forwarded = await t.request("http://10.0.0.5:8000/sessions", {
      method: "POST",
      headers: { origin: "https://rounds.example.org", "x-forwarded-host": "rounds.example.org" },
    });
    assert.equal(forwarded.status, 303, "the proxy's X-Forwarded-Host");
  }, { env: { TRUST_PROXY: "true" } });
});
