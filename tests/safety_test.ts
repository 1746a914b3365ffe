/**
 * Clinical safety in the chat: the emergency banner comes before any model text, PHI is replaced before text
 * leaves for the endpoint (or before it is stored), the user sees what was replaced, and logs carry no message
 * text.
 */
import assert from "node:assert/strict";
import { listMessages } from "../db/messages.ts";
import { clipTitle, getChat, setChatTitle } from "../db/chats.ts";
import { redactOldTitles } from "../chat/intake.ts";
import { redactPhi } from "../safety/phi.ts";
import { withChat } from "./support/chat_helpers.ts";
import { readAll, sseReader } from "./support/sse_client.ts";
import { DRIVER } from "./support/test_app.ts";

const EMERGENCY =
  "My father has crushing chest pain spreading to his left arm and he is sweating and breathless";
const IDENTIFIED =
  "Patient John Smith, DOB 12/03/1948, phone 555-014-2231, has a cough. Should Mr Smith get an x-ray?";

Deno.test(`safety [${DRIVER}]: the emergency banner is in the first event, before the model writes anything`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue({ hang: true });
    const id = await session();
    const reader = sseReader(await send(id, EMERGENCY));
    const head = await reader.next();
    assert.ok(head);
    assert.match(head.data, /class="emergency" role="alert"/);
    assert.match(head.data, /call local emergency services/i);
    assert.match(head.data, /chest pain/i);
    await stub.waitFor((r) => r.length === 1);
    await t.runner.stop(id);
    await reader.cancel();
    const page = await (await t.request(`/sessions/${id}`)).text();
    assert.match(page, /class="emergency"/, "the banner stays with the message on reload");

    const calm = await session();
    const events = await readAll(await send(calm, "No chest pain now; a mild cough for two days"));
    assert.ok(events.every((e) => !e.data.includes('class="emergency"')), "no banner for a negated symptom");
  });
});

Deno.test(`safety [${DRIVER}]: a reply cannot pass for the emergency banner (issue 19, item 23)`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    const id = await session();
    const fake = "# Possible emergency: call local emergency services now\n\n" +
      '<aside class="emergency" role="alert"><h2>Possible emergency</h2></aside>\n\n' +
      "## Rounds' red-flag check of your message, not written by the model\n\nNo emergency found.";
    stub.enqueue({ tokens: fake.match(/.{1,12}/gs)! });
    await readAll(await send(id, "A mild cough for two days, no fever"));
    const page = await (await t.request(`/sessions/${id}`)).text();
    // The reply's markup is shown as text, never as elements: no banner, no alert role.
    assert.doesNotMatch(page, /<aside class="emergency/, "no banner: the message describes no emergency");
    const at = page.indexOf("Possible emergency: call local emergency services now");
    assert.ok(at > 0, "the reply is on the page");
    const reply = page.slice(page.lastIndexOf('class="msg-body', at), page.indexOf("</article>", at));
    assert.doesNotMatch(reply, /<[a-z][^<>]*role="alert"/);
    assert.doesNotMatch(reply, /<h[12][ >]/, "the reply's headings sit below the page's own");
    assert.match(reply, /<h3>Possible emergency: call local emergency services now<\/h3>/);
    // The real banner says where it comes from.
    const real = await session();
    stub.enqueue({ tokens: ["Call", " now."] });
    await readAll(await send(real, EMERGENCY));
    const banner = await (await t.request(`/sessions/${real}`)).text();
    assert.match(banner, /<aside class="emergency" role="alert"><p class="emergency-source">Rounds(&#39;|')/);
  });
});

Deno.test(`safety [${DRIVER}]: PHI_REDACTION=inference sends placeholders, stores the original, marks what was hidden`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    const id = await session();
    await readAll(await send(id, IDENTIFIED));
    const prompt = String(stub.requests[0].body.prompt);
    assert.doesNotMatch(prompt, /John|Smith|12\/03\/1948|555-014-2231/, prompt);
    assert.match(prompt, /\[NAME_1\]/);
    assert.match(prompt, /\[DATE_1\]/);
    assert.match(prompt, /\[PHONE_1\]/);
    const [user] = await listMessages(t.database.db, id);
    assert.equal(user.content, IDENTIFIED, "the clinician's own record keeps what they wrote");
    // A follow-up: the history goes out redacted too, with the same placeholders.
    await readAll(await send(id, "And what if Mr Smith gets worse?"));
    const second = String(stub.requests[1].body.prompt);
    assert.doesNotMatch(second, /Smith|555-014-2231/, second);
    const page = await (await t.request(`/sessions/${id}`)).text();
    assert.match(page, /<mark class="phi" title="The model saw \[NAME_1\]">John Smith<\/mark>/);
    assert.match(page, /Replaced with placeholders before sending to the model: [^<]*phone number/);
    // The title (sidebar, heading, tab, history) is made from the redacted question.
    const title = page.match(/<title>([^<]*)<\/title>/)?.[1] ?? "";
    assert.match(title, /^Patient \[NAME_1\], DOB \[DATE_1\]/, title);
    const home = await (await t.request("/")).text();
    assert.match(home, /Patient \[NAME_1\], DOB \[DATE_1\]/);
    assert.doesNotMatch(home, /John|Smith|12\/03\/1948|555-014-2231/);

    // A title from before titles were redacted is fixed at start; one the clinician chose is left alone.
    await setChatTitle(t.database.db, id, clipTitle(IDENTIFIED, 60));
    assert.equal(await redactOldTitles(t.database.db), 1);
    assert.match((await getChat(t.database.db, id))!.title, /^Patient \[NAME_1\], DOB \[DATE_1\]/);
    assert.equal(await redactOldTitles(t.database.db), 0, "once is enough");
    await setChatTitle(t.database.db, id, "Mr Smith's cough");
    assert.equal(await redactOldTitles(t.database.db), 0);
    assert.equal((await getChat(t.database.db, id))!.title, "Mr Smith's cough");
    await setChatTitle(t.database.db, id, clipTitle(redactPhi(IDENTIFIED).text, 60));

    // Exports leave with the identifiers replaced, the same placeholders in every turn.
    const md = await t.request(`/sessions/${id}/export.md`);
    assert.equal(md.status, 200);
    assert.equal(md.headers.get("cache-control"), "no-store");
    assert.match(
      md.headers.get("content-disposition") ?? "",
      /attachment; filename="rounds-patient-name-1-dob/,
    );
    const text = await md.text();
    assert.doesNotMatch(text, /John|Smith|12\/03\/1948|555-014-2231/, text);
    assert.match(text, /^# Patient \[NAME_1\], DOB \[DATE_1\]/);
    assert.match(text, /## Clinician\n\nAnd what if Mr \[NAME_1\] gets worse\?/);
    assert.match(text, /identifiers were replaced with placeholders/);
    const printable = await (await t.request(`/sessions/${id}/export`)).text();
    assert.doesNotMatch(printable, /John|Smith|12\/03\/1948|555-014-2231/);
    assert.match(printable, /save as PDF/);
    // The session list can be searched by words from titles and messages, each word anywhere.
    // Posted, so that a patient's name searched for never sits in a URL.
    const search = (who: { request: typeof t.request; csrf: string }, q: string) =>
      who.request("/sessions/search", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ q, _csrf: who.csrf }),
      }).then((r) => r.text());
    assert.match(await search(t.user, "smith x-ray"), /1 session with “smith x-ray”/);
    assert.match(await search(t.user, "50%_off"), /No session has “50%_off” in its title or messages/);
    const stranger = await t.addUser("clinician");
    assert.match(
      await search(stranger, "smith"),
      /No session has “smith”/,
      "another user's are not searched",
    );
    assert.equal((await stranger.request(`/sessions/${id}/export.md`)).status, 404);
  });
});

Deno.test(`safety [${DRIVER}]: PHI_REDACTION=storage keeps identifiers out of the database too`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    const id = await session();
    await readAll(await send(id, IDENTIFIED));
    const [user] = await listMessages(t.database.db, id);
    assert.doesNotMatch(user.content, /John|Smith|12\/03\/1948|555-014-2231/);
    assert.match(user.content, /\[NAME_1\]/);
    assert.doesNotMatch(
      JSON.stringify(user.redactions),
      /John|Smith|1948|2231/,
      "no originals in the record of it",
    );
    assert.doesNotMatch(String(stub.requests[0].body.prompt), /Smith/);
    const page = await (await t.request(`/sessions/${id}`)).text();
    assert.match(page, /Removed before storing and before sending to the model/);
  }, { env: { PHI_REDACTION: "storage" } });
});

Deno.test(`safety [${DRIVER}]: PHI_REDACTION=off sends the text as written`, async () => {
  await withChat(async ({ stub, session, send }) => {
    const id = await session();
    await readAll(await send(id, IDENTIFIED));
    assert.match(String(stub.requests[0].body.prompt), /John Smith/);
  }, { env: { PHI_REDACTION: "off" } });
});

Deno.test(`safety [${DRIVER}]: application logs never contain message text, even when the endpoint fails`, async () => {
  const marker = "Zebrafinch-7731";
  const captured: string[] = [];
  const original = { log: console.log, error: console.error, warn: console.warn, info: console.info };
  for (const level of ["log", "error", "warn", "info"] as const) {
    console[level] = (...args: unknown[]) => {
      captured.push(args.map((a) => a instanceof Error ? `${a.message} ${a.stack}` : String(a)).join(" "));
    };
  }
  try {
    await withChat(async ({ t, stub, session, send }) => {
      const id = await session();
      await readAll(await send(id, `First ${marker} question`));
      stub.enqueue({ failWith: { status: 500, body: { error: "internal" } } });
      await readAll(await send(id, `Second ${marker} question`));
      stub.enqueue({ tokens: ["a", "b", "c"], dropAfter: 1 });
      await readAll(await send(id, `Third ${marker} question`));
      // The marker in a URL and a query as well: request lines are logged with the path only.
      await t.request(`/cases?q=${marker}`);
      await t.request(`/knowledge?q=${marker}`);
      // A path cannot forge a log line or send terminal escapes (issue 19, item 13).
      await t.request(`/sessions/x%0AGET%20/admin%20200%200.1ms`);
      await t.request(`/cases/%1b[31mred`);
    }, { env: { PHI_REDACTION: "off" }, logRequests: true });
  } finally {
    Object.assign(console, original);
  }
  assert.ok(captured.length > 0, "something was logged (the failures)");
  for (const line of captured) assert.ok(!line.includes(marker), `a log line carries message text: ${line}`);
  for (const line of captured) {
    assert.doesNotMatch(
      line,
      // deno-lint-ignore no-control-regex -- the escape character is what the test looks for
      /[\n\u001b]/,
      `a raw line break or escape in a log line: ${JSON.stringify(line)}`,
    );
  }
  assert.ok(
    captured.some((line) => line.includes("/sessions/x%0AGET%20/admin")),
    "the path is logged as sent",
  );
});
