/**
 * A clinician's chat in Chromium, on a desk (1366 × 900) and on a phone (390 × 844), asserting what they see:
 * asking from the home page, the reply on screen while it streams (not the settings under it), the title without
 * the identifiers typed, sources as one line each that open in place, Copy, focus back in the composer, what a
 * screen reader is told, the drawer on a phone, Escape to stop, a question kept across an ended sign-in, and a
 * clean reply when no model is connected. axe-core finds no serious or critical problem on these screens.
 * Screenshots go to tests/artifacts/ (chat-*.png) for someone to look at.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { readExampleCases, seedExampleCases } from "../cases/library.ts";
import { revokeUserSignIns } from "../db/sign_ins.ts";
import { createUser } from "../db/users.ts";
import { hashPassword } from "../safety/passwords.ts";
import { loadSampleCorpusIfEmpty } from "../knowledge/ingest.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import {
  ARTIFACTS,
  axeViolations,
  ignoreWithoutBrowser,
  inViewport,
  waitUntil,
  withBrowser,
} from "./support/browser.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const DESK = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };
const shot = (page: Page, name: string) => page.screenshot({ path: new URL(name, ARTIFACTS).pathname });

const QUESTION =
  "Patient Jane Doe, DOB 04/05/1960: dry cough for three weeks after a cold. What should I check?";
const ANSWER = [
  "**Please** consider a *viral* cause first.\n\n",
  ...Array.from({ length: 40 }, (_, i) => `Point ${i + 1} to weigh. `),
  "\n\nA persistent cough after a cold is common [1].",
];

const noOverflow = (page: Page) =>
  page.evaluate<number>(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);

for (const viewport of [DESK, PHONE]) {
  const phone = viewport.width < 500;
  const size = phone ? "phone" : "desk";
  Deno.test({
    name:
      `browser chat (${size}): ask from home, read the reply as it streams, sources in place, copy, focus back`,
    ignore: ignoreWithoutBrowser,
    ...opts,
    fn: async () => {
      await withBrowser(async (page, base, stub, t) => {
        await loadSampleCorpusIfEmpty(t.database.db, createLexicalEmbedder());
        await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
        stub.enqueue({ tokens: ANSWER, delayMs: 60 });
        await page.goto(base + "/");
        assert.equal(await noOverflow(page), 0, "the home page fits the screen");
        assert.deepEqual(await axeViolations(page), [], "home page");
        // Typing on the home page starts a session: no "New session" first.
        await page.getByRole("textbox", { name: "Your question" }).fill(QUESTION);
        await page.keyboard.press("Enter");
        await page.waitForURL(/\/sessions\/[0-9a-f-]{36}$/);
        await waitUntil(
          page,
          `(document.querySelector("#live-body")?.textContent ?? "").includes("Point 12")`,
        );

        // Markdown is drawn as it streams: no asterisks on screen, and the same words as the end result.
        assert.equal(await page.locator("#live-view strong").first().textContent(), "Please");
        assert.doesNotMatch(await page.locator("#live").innerText(), /\*\*/);
        // While it streams: the reply is what the screen shows, and screen readers wait for it whole.
        assert.equal(await page.locator("#live").getAttribute("aria-busy"), "true");
        const live = await page.evaluate<{ top: number; bottom: number; composerTop: number }>(`(() => {
          const r = document.querySelector("#live").getBoundingClientRect();
          return { top: r.top, bottom: r.bottom, composerTop: document.querySelector("#composer").getBoundingClientRect().top };
        })()`);
        assert.ok(
          live.bottom > 0 && live.top < live.composerTop,
          `the reply is on screen (${JSON.stringify(live)})`,
        );
        assert.equal(
          await page.locator("#sidebar").isVisible(),
          !phone,
          "on a phone the settings are tucked away",
        );
        await shot(page, `chat-streaming-${size}.png`);

        // The title is made from the question with its identifiers replaced, everywhere it shows.
        const title = await page.title();
        assert.match(title, /\[NAME_1\]/, title);
        for (const shown of [title, await page.locator("#session-title").textContent() ?? ""]) {
          assert.doesNotMatch(shown, /Jane|Doe|04\/05\/1960/, shown);
        }

        const reply = page.locator("#transcript article.msg.assistant.status-completed");
        await reply.waitFor({ timeout: 15_000 });
        await waitUntil(page, `document.activeElement?.id === "composer-input"`, 3000);
        assert.equal(await page.locator("#reply-announcer").textContent(), "Answer complete.");
        assert.equal(await page.locator("#live").getAttribute("aria-busy"), null);
        assert.equal(await reply.locator("strong").first().textContent(), "Please", "Markdown rendered");

        // Sources: one line each, closed; a citation opens its excerpt where the reader is.
        const sources = reply.locator("details.source");
        assert.ok(await sources.count() >= 1, "the reply has sources");
        assert.equal(await reply.locator("details.source[open]").count(), 0);
        const path = new URL(page.url()).pathname;
        await reply.locator("a.cite").first().click();
        await waitUntil(page, `document.querySelector("details.source")?.open === true`, 2000);
        assert.ok(
          await sources.first().locator("blockquote.excerpt").isVisible(),
          "the excerpt shows in place",
        );
        assert.equal(new URL(page.url()).pathname, path, "the chat stays open");
        await shot(page, `chat-answer-${size}.png`);

        // Copy puts the reply's text on the clipboard.
        await reply.getByRole("button", { name: "Copy" }).click();
        await waitUntil(page, `document.querySelector("[data-copy]")?.textContent === "Copied"`, 2000);
        const copied = await page.evaluate<string>(`navigator.clipboard.readText()`);
        assert.match(copied, /^Please consider a viral cause first\./);
        assert.match(copied, /Point 40 to weigh\./);

        // The keyboard reaches the question box from the top of the page in two steps, not seventy.
        await page.locator("a.skip-link").first().focus();
        await page.keyboard.press("Tab");
        assert.equal(await page.evaluate(`document.activeElement?.textContent`), "Skip to the question box");
        await page.keyboard.press("Enter");
        await waitUntil(page, `document.activeElement?.id === "composer-input"`, 2000);

        // Edit and resend: the question goes back into the box, as typed.
        await page.locator("#transcript article.msg.user").first().getByRole("button", {
          name: "Edit and resend",
        })
          .click();
        assert.equal(await page.locator("#composer-input").inputValue(), QUESTION);
        await waitUntil(page, `document.activeElement?.id === "composer-input"`, 2000);
        await page.locator("#composer-input").fill("");

        if (phone) {
          // The drawer: opened from the top of the conversation, closed with Escape, focus back where it was.
          const toggle = page.getByRole("button", { name: "Sessions and settings" });
          await page.evaluate(`window.scrollTo(0, 0)`);
          await toggle.click();
          await waitUntil(page, `document.querySelector("#sidebar").classList.contains("open")`, 2000);
          assert.equal(await toggle.getAttribute("aria-expanded"), "true");
          await page.waitForTimeout(300); // the slide
          assert.ok(await page.locator("#sidebar").isVisible());
          assert.ok(await inViewport(page, "#sidebar .session-list"), "the sessions are on screen");
          await shot(page, `chat-drawer-${size}.png`);
          await page.keyboard.press("Escape");
          await waitUntil(page, `document.activeElement?.classList.contains("drawer-toggle")`, 2000);
          assert.equal(await toggle.getAttribute("aria-expanded"), "false");
        }
        assert.equal(await noOverflow(page), 0, "the session page fits the screen");
        assert.deepEqual(await axeViolations(page), [], "session page");
      }, { viewport });
    },
  });
}

Deno.test({
  name: "browser chat: Escape stops a reply; an ended sign-in keeps the question being typed",
  ignore: ignoreWithoutBrowser,
  ...opts,
  fn: async () => {
    await withBrowser(async (page, base, stub, t) => {
      stub.enqueue({ tokens: Array.from({ length: 400 }, (_, i) => `w${i} `), delayMs: 30 });
      await page.goto(base + "/");
      await page.getByRole("textbox", { name: "Your question" }).fill("A long answer, please");
      await page.getByRole("button", { name: "Send" }).click();
      await page.waitForURL(/\/sessions\//);
      await waitUntil(page, `(document.querySelector("#live-body")?.textContent ?? "").includes("w5 ")`);
      await page.keyboard.press("Escape");
      await page.locator("#transcript article.msg.assistant.status-stopped").waitFor({ timeout: 5000 });
      await waitUntil(
        page,
        `document.querySelector("#reply-announcer").textContent.startsWith("Stopped.")`,
        3000,
      );

      // The sign-in ends (an administrator, or the idle limit) while a question is being typed.
      const draft = "Is 5\u00a0mg of amlodipine enough for a 70-year-old? Labs: eGFR 28 mL/min, K⁺ 5.9";
      await page.locator("#composer-input").fill(draft);
      await revokeUserSignIns(t.database.db, t.user.id);
      await page.locator("#composer-input").press("Enter");
      await page.waitForURL(/\/login\?reason=expired/);
      assert.match(
        await page.locator("main").textContent() ?? "",
        /a question you were typing is back in its box/,
      );
      await page.fill('input[name="email"]', t.user.email);
      await page.fill('input[name="password"]', t.user.password);
      await Promise.all([page.waitForURL(/\/sessions\//), page.click('button[type="submit"]')]);
      assert.equal(
        await page.locator("#composer-input").inputValue(),
        draft,
        "the question is back in the box",
      );

      // On a shared computer: a half-typed question on the home page, then sign out; the next person signs in
      // in the same tab and sees an empty box.
      await page.goto(base + "/");
      await page.getByRole("textbox", { name: "Your question" }).fill("Mrs Patel, bed 4: what dose?");
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/login/);
      const colleague = await t.addUser("clinician", "colleague@example.test");
      await page.fill('input[name="email"]', colleague.email);
      await page.fill('input[name="password"]', colleague.password);
      await Promise.all([page.waitForURL(base + "/"), page.click('button[type="submit"]')]);
      assert.equal(await page.getByRole("textbox", { name: "Your question" }).inputValue(), "");
      assert.equal(
        await page.evaluate(
          `Object.keys(sessionStorage).filter((k) => k.startsWith("rounds-draft:")).length`,
        ),
        0,
        "no draft of the previous user is left in the tab",
      );
    }, { viewport: PHONE, expectedProblems: /\b401\b.*\/messages$|status of 401/ });
  },
});

Deno.test({
  name: "browser chat (phone): with no model connected, the closest passages show once, plainly labelled",
  ignore: ignoreWithoutBrowser,
  ...opts,
  fn: async () => {
    await withBrowser(async (page, base, _stub, t) => {
      await loadSampleCorpusIfEmpty(t.database.db, createLexicalEmbedder());
      await page.goto(base + "/");
      const lead = await page.locator(".lead").textContent() ?? "";
      assert.match(lead, /No model is connected/);
      assert.doesNotMatch(lead, /Answers come from/);
      await page.getByRole("textbox", { name: "Your question" }).fill(
        "Dry cough for three weeks after a cold: what should I check?",
      );
      await page.getByRole("button", { name: "Send" }).click();
      const reply = page.locator("#transcript article.msg.assistant.status-completed");
      await reply.waitFor({ timeout: 10_000 });
      const text = await reply.textContent() ?? "";
      assert.match(text, /Quoted from the knowledge base, not written by a model/);
      assert.doesNotMatch(text, /AI-generated|INFERENCE_URL|deno task/);
      assert.equal(await reply.getByRole("button", { name: "Regenerate" }).count(), 0);
      const quoted = await reply.locator(".msg-body blockquote").count();
      assert.ok(quoted >= 1, "the passages are quoted in the reply");
      assert.equal(await reply.locator("details.source").count(), 0, "and not a second time under it");
      assert.ok(await reply.locator("a.source-link").count() >= 1, "the sources still link to the snippets");
      await shot(page, "chat-no-model-phone.png");
      assert.deepEqual(await axeViolations(page), [], "retrieval-only reply");
    }, { viewport: PHONE, env: { INFERENCE_URL: "" } });
  },
});

/** Clinicians' questions in a clinician's words, each a new subject, and what the first source must be about. */
const WALK: { question: string; first: RegExp | null; never?: RegExp }[] = [
  {
    question: "SGLT2 inhibitor for CKD stage 3a in type 2 diabetes?",
    first: /eGFR|kidney/i,
    never: /liver|ALT/,
  },
  { question: "Myalgia on a statin: should I check CK?", first: /atorvastatin|statin|creatine kinase/i },
  { question: "Post-viral cough for four weeks: what should I check?", first: /cough/i },
  { question: "Ankle oedema on a calcium channel blocker", first: /amlodipine/i, never: /tooth|socket/i },
  { question: "How do I change a flat tyre on a bicycle?", first: null },
];

for (const viewport of [DESK, PHONE]) {
  Deno.test({
    name: `browser chat (${
      viewport === DESK ? "desk" : "phone"
    }): clinicians' questions, one after another, get on-topic sources first, or none`,
    ignore: ignoreWithoutBrowser,
    ...opts,
    fn: async () => {
      await withBrowser(async (page, base, _stub, t) => {
        await loadSampleCorpusIfEmpty(t.database.db, createLexicalEmbedder());
        await page.goto(base + "/");
        const replies = page.locator("#transcript article.msg.assistant.status-completed");
        for (const [i, { question, first, never }] of WALK.entries()) {
          await page.getByRole("textbox", { name: "Your question" }).fill(question);
          await page.getByRole("button", { name: "Send", exact: true }).click();
          await replies.nth(i).waitFor({ timeout: 10_000 });
          const reply = replies.nth(i);
          await reply.scrollIntoViewIfNeeded();
          const quotes = reply.locator(".msg-body blockquote");
          if (first === null) {
            assert.equal(await quotes.count(), 0, `${question}: no passage is shown`);
            const said = await reply.innerText();
            assert.match(said, /No doctor reply in the knowledge base is close enough/);
            assert.doesNotMatch(
              said,
              /Quoted from the knowledge base|No good evidence/,
              "nothing quoted, no label",
            );
            continue;
          }
          assert.ok(await quotes.first().isVisible(), `${question}: the first passage is in view`);
          const asked = await quotes.first().innerText();
          assert.match(asked, first, `${question}: the first passage is about it, not the last topic`);
          if (never) {
            assert.doesNotMatch(
              await reply.innerText(),
              never,
              `${question}: no passage shares only common words`,
            );
          }
        }
        await shot(page, `chat-walk-${viewport === DESK ? "desk" : "phone"}.png`);
        assert.deepEqual(await axeViolations(page), [], "the walk's transcript");
      }, { viewport, env: { INFERENCE_URL: "" } });
    },
  });
}

Deno.test({
  name: "browser chat (desk): a question asked from the home page is answered by a real llama-server",
  ignore: ignoreWithoutBrowser || ignoreWithoutLlama,
  ...opts,
  fn: async () => {
    await withLlamaServer({}, async (server) => {
      await withBrowser(async (page, base) => {
        await page.goto(base + "/");
        await page.getByRole("textbox", { name: "Your question" }).fill(
          "Fever and a stiff neck since this morning",
        );
        await page.keyboard.press("Enter");
        await page.waitForURL(/\/sessions\//);
        const reply = page.locator("#transcript article.msg.assistant[data-status]");
        await reply.waitFor({ timeout: 60_000 });
        await waitUntil(page, `document.activeElement?.id === "composer-input"`, 60_000);
        assert.ok(
          (await reply.locator(".msg-body").textContent() ?? "").trim().length > 0,
          "the model wrote",
        );
        assert.ok(await page.locator(".emergency").isVisible(), "the red-flag banner is shown");
      }, { inferenceUrl: server.url, viewport: DESK });
    });
  },
});

for (const viewport of [DESK, PHONE]) {
  const size = viewport.width < 500 ? "phone" : "desk";
  Deno.test({
    name:
      `browser chat (${size}): a follow-up's sources go on with the dialogue it continues (real llama-server)`,
    ignore: ignoreWithoutBrowser || ignoreWithoutLlama,
    ...opts,
    fn: async () => {
      await withLlamaServer({}, async (server) => {
        await withBrowser(async (page, base, _stub, t) => {
          await loadSampleCorpusIfEmpty(t.database.db, createLexicalEmbedder());
          await page.goto(base + "/");
          const composer = page.getByRole("textbox", { name: "Your question" });
          const replies = page.locator("#transcript article.msg.assistant.status-completed");
          await composer.fill("Patient on lisinopril 10 mg has sprained an ankle. Is ibuprofen OK?");
          await page.keyboard.press("Enter");
          await replies.first().waitFor({ timeout: 60_000 });
          await waitUntil(page, `document.activeElement?.id === "composer-input"`, 10_000);
          // The sample dialogue's second exchange says how long; this follow-up shares hardly a word with it.
          await composer.fill("Thanks. For how many days at most, if it is needed?");
          await page.keyboard.press("Enter");
          await replies.nth(1).waitFor({ timeout: 60_000 });
          const reply = replies.nth(1);
          const sources = reply.locator("details.source");
          assert.ok(await sources.count() >= 2, "the follow-up's reply lists at least two sources");
          const excerptOf = async (n: number) => {
            const source = sources.nth(n);
            await source.locator("summary").scrollIntoViewIfNeeded();
            await source.locator("summary").click();
            const quote = source.locator("blockquote.excerpt");
            assert.ok(await quote.isVisible(), `source ${n + 1}'s excerpt opens in place`);
            return await quote.innerText();
          };
          assert.match(await excerptOf(0), /lisinopril/, "first: the answer to the question it continues");
          assert.match(await excerptOf(1), /three to five days/, "second: what that doctor said next");
          await shot(page, `chat-follow-up-sources-${size}.png`);
          assert.deepEqual(await axeViolations(page), [], "the follow-up's sources");
        }, { inferenceUrl: server.url, viewport });
      });
    },
  });
}

for (const viewport of [DESK, PHONE]) {
  const size = viewport.width < 500 ? "phone" : "desk";
  Deno.test({
    name:
      `browser chat (${size}): a name a later turn reveals is a placeholder in the earlier turn of the export`,
    ignore: ignoreWithoutBrowser || ignoreWithoutLlama,
    ...opts,
    fn: async () => {
      await withLlamaServer({}, async (server) => {
        await withBrowser(async (page, base) => {
          const ask = async (question: string, replies: number) => {
            await page.getByRole("textbox", { name: "Your question" }).fill(question);
            await page.keyboard.press("Enter");
            await page.locator("#transcript article.msg.assistant[data-status]").nth(replies - 1)
              .waitFor({ timeout: 60_000 });
            await waitUntil(page, `document.activeElement?.id === "composer-input"`, 60_000);
          };
          await page.goto(base + "/");
          // Nothing in the first turn says "haddad" is a name; the second does.
          await ask("haddad, 80, has new AF and CKD. Which anticoagulant?", 1);
          await page.waitForURL(/\/sessions\//);
          await ask("Mr Haddad's creatinine is 150 and HADDAD also takes verapamil.", 2);
          await page.getByText("Rename, export or delete").click();
          await page.getByRole("link", { name: "printable page (save as PDF)" }).click();
          await page.waitForURL(/\/export$/);
          const shown = await page.locator("body").innerText();
          assert.doesNotMatch(shown, /haddad/i, shown);
          assert.match(shown, /\[NAME_1\], 80, has new AF and CKD/);
          assert.match(shown, /Mr \[NAME_1\]'s creatinine is 150 and \[NAME_1\] also takes verapamil/);
          await page.screenshot({
            path: new URL(`chat-export-${size}.png`, ARTIFACTS).pathname,
            fullPage: true,
          });
          assert.equal(await noOverflow(page), 0, "the printable page fits the screen");
        }, { inferenceUrl: server.url, viewport });
      });
    },
  });
}

Deno.test({
  name: "browser chat: Markdown drawn while streaming never turns model text into markup",
  ignore: ignoreWithoutBrowser,
  ...opts,
  fn: async () => {
    await withBrowser(async (page, base, stub) => {
      const hostile = [
        '**<img src=x onerror="window.__pwned=1">** and `<b>code</b>` and *<script>window.__pwned=2</script>*\n\n',
        '- <a href="javascript:window.__pwned=3">link</a>\n',
        "- [click](javascript:window.__pwned=4) \u00a0٣٧٫٥ °C\n\n",
        "```\n<svg onload=window.__pwned=5>\n",
        ...Array.from({ length: 200 }, (_, i) => `line ${i}\n`),
      ];
      stub.enqueue({ tokens: hostile, delayMs: 20 });
      await page.goto(base + "/");
      await page.getByRole("textbox", { name: "Your question" }).fill("Show me markup");
      await page.keyboard.press("Enter");
      await page.waitForURL(/\/sessions\//);
      await waitUntil(page, `(document.querySelector("#live-body")?.textContent ?? "").includes("line 5")`);
      const view = page.locator("#live-view");
      assert.equal(
        await view.locator("img, script, svg, a, b").count(),
        0,
        "no element from the model's text",
      );
      assert.equal(await view.locator("strong").count(), 1);
      assert.match(
        await view.innerText(),
        /<img src=x onerror="window.__pwned=1">/,
        "the text shows as written",
      );
      assert.match(await view.innerText(), /٣٧٫٥ °C/);
      assert.equal(await view.locator("pre code").count(), 1, "an open code fence is drawn as code");
      await page.locator("#transcript article.msg.assistant.status-completed").waitFor({ timeout: 15_000 });
      assert.equal(await page.evaluate(`window.__pwned ?? null`), null);
    });
  },
});

Deno.test({
  name: "browser practice (phone): the patient is a patient, the station is timed, the debrief reads cleanly",
  ignore: ignoreWithoutBrowser,
  ...opts,
  fn: async () => {
    await withBrowser(async (page, base, stub, t) => {
      await seedExampleCases(t.database.db, createLexicalEmbedder());
      const renal = (await readExampleCases()).find((e) => e.file === "renal-colic.json")!.value;
      await page.goto(base + "/cases");
      await page.getByRole("link", { name: renal.title }).click();
      stub.enqueue({ tokens: ["It started ", "about three hours ago."] });
      await page.getByRole("button", { name: "Practise with a simulated patient" }).click();
      await page.waitForURL(/\/sessions\//);
      const box = page.locator("#composer-input");
      assert.match(await box.getAttribute("placeholder") ?? "", /Ask the patient/);
      await waitUntil(page, `!document.querySelector(".station-timer").hidden`, 3000);
      assert.match(await page.locator(".station-timer").textContent() ?? "", /Station time 0:0\d of 10:00/);
      await box.fill("Hello, I'm one of the doctors. When did this pain start?");
      await box.press("Enter");
      const reply = page.locator("#transcript article.msg.assistant.status-completed").last();
      await reply.waitFor({ timeout: 10_000 });
      const text = await reply.textContent() ?? "";
      assert.match(text, /Patient \(simulated\)/);
      assert.doesNotMatch(text, /Rounds|AI-generated|Suggest a correction/);
      assert.equal(await reply.locator(".rate-button").count(), 0, "no thumbs on a patient's line");
      await shot(page, "practice-phone.png");

      stub.enqueue({
        tokens: ["**Strengths**\n\n- You asked about onset clearly.\n- Open questions first."],
      });
      await page.getByRole("button", { name: "End and debrief" }).click();
      await page.waitForURL(/\/debrief$/);
      const debrief = await page.locator("main").textContent() ?? "";
      assert.match(debrief, /Not part of history-taking: examiner to score/);
      assert.equal(await page.locator(".model-feedback strong").first().textContent(), "Strengths");
      assert.doesNotMatch(debrief, /\*\*Strengths\*\*/, "the narrative's Markdown is rendered");
      assert.equal(await noOverflow(page), 0, "the debrief fits the screen");
      await shot(page, "practice-debrief-phone.png");
      assert.deepEqual(await axeViolations(page), [], "debrief page");
    }, { viewport: PHONE });
  },
});

for (const viewport of [DESK, PHONE]) {
  const size = viewport.width < 500 ? "phone" : "desk";
  Deno.test({
    name:
      `browser screens (${size}): knowledge, library, a case, users and the audit log fit, read, and pass axe`,
    ignore: ignoreWithoutBrowser,
    ...opts,
    fn: async () => {
      await withBrowser(async (page, base, _stub, t) => {
        await loadSampleCorpusIfEmpty(t.database.db, createLexicalEmbedder());
        await seedExampleCases(t.database.db, createLexicalEmbedder());
        await createUser(t.database.db, {
          email: "colleague@example.test",
          name: "A Colleague",
          role: "clinician",
          passwordHash: await hashPassword("a long enough password"),
        });
        for (const path of ["/knowledge?q=cough", "/cases", "/admin/users", "/admin/audit"]) {
          await page.goto(base + path);
          assert.equal(await noOverflow(page), 0, `${path} fits the screen`);
          assert.deepEqual(await axeViolations(page), [], path);
        }
        const renal = (await readExampleCases()).find((e) => e.file === "renal-colic.json")!.value;
        await page.goto(base + "/cases");
        await page.getByRole("link", { name: renal.title }).click();
        await page.waitForURL(/\/cases\/[0-9a-f-]{36}$/);
        assert.equal(await noOverflow(page), 0, "a case fits the screen");
        assert.deepEqual(await axeViolations(page), [], "a case");
        // One primary action; an example case says how to get an editable copy; sections to jump to.
        const actions = page.locator(".case-actions");
        assert.equal(
          await actions.locator("button:not(.secondary):not(.danger), a.button:not(.secondary):not(.danger)")
            .count(),
          1,
        );
        // Administrators may edit anything; an educator is told how to get an editable copy of an example.
        const educator = await t.addUser("educator");
        const caseUrl = page.url();
        await page.context().clearCookies();
        const [name, value] = educator.cookie.split(";")[0].split("=");
        await page.context().addCookies([{ name, value, url: base }]);
        await page.goto(caseUrl);
        assert.match(
          await page.locator(".notice[role=note]").first().textContent() ?? "",
          /read-only for you/,
        );
        assert.ok(await actions.getByRole("button", { name: "Duplicate to edit" }).isVisible());
        assert.equal(await actions.getByRole("link", { name: "Delete…" }).count(), 0);
        const outline = page.getByRole("navigation", { name: "Sections of the case" });
        await outline.getByRole("link", { name: "Investigations" }).click();
        await waitUntil(page, `location.hash === "#section-investigations"`, 2000);
        assert.ok(await page.locator("#section-investigations h2").isVisible());
        // An abnormal result is flagged as a report would: CRP 6 mg/L against "<5".
        const crp = page.locator("#section-investigations tr", { hasText: "C-reactive protein" });
        assert.equal(await crp.locator("abbr.result-flag").textContent(), "H");
        assert.equal(
          await crp.locator("abbr.result-flag").getAttribute("title"),
          "Above the reference range",
        );
        await shot(page, `case-${size}.png`);
        const [adminName, adminValue] = t.user.cookie.split(";")[0].split("=");
        await page.context().clearCookies();
        await page.context().addCookies([{ name: adminName, value: adminValue, url: base }]);
        await page.goto(base + "/admin/audit");
        // The audit log in words, not machine names.
        const audit = await page.locator("table.audit").textContent() ?? "";
        assert.match(audit, /Signed in/);
        assert.doesNotMatch(audit, /login\.succeeded/);

        // Knowledge: labels above their fields, each hit's title apart from its source line.
        await page.goto(base + "/knowledge?q=cough");
        const box = await page.getByRole("searchbox", { name: "Question or words" }).boundingBox();
        assert.ok(
          box && box.width >= Math.min(250, viewport.width - 60),
          `the query box is usable (${box?.width}px)`,
        );
        const hit = page.locator(".search-results li").first();
        const [title, meta] = await Promise.all([
          hit.locator(".hit-title").boundingBox(),
          hit.locator(".source-meta").boundingBox(),
        ]);
        assert.ok(
          title && meta && meta.y >= title.y + title.height - 1,
          "the source line is under the title",
        );
        await shot(page, `knowledge-${size}.png`);

        // Disabling an account asks first; dismissing keeps it active.
        await page.goto(base + "/admin/users");
        const row = page.locator("tr", { hasText: "colleague@example.test" });
        let asked = "";
        page.once("dialog", (dialog) => {
          asked = dialog.message();
          dialog.dismiss();
        });
        await row.getByRole("button", { name: "Disable" }).click();
        await page.waitForTimeout(300);
        assert.match(asked, /Disable colleague@example\.test\?/);
        assert.match(await row.textContent() ?? "", /Active/);
        await shot(page, `users-${size}.png`);
      }, { viewport });
    },
  });
}

Deno.test({
  name: "browser chat (desk): regenerated replies page as ‹ 1/2 ›, one version at a time",
  ignore: ignoreWithoutBrowser,
  ...opts,
  fn: async () => {
    await withBrowser(async (page, base, stub) => {
      stub.enqueue({ tokens: ["First ", "version ", "of the answer."] }, {
        tokens: ["Second ", "version, ", "**rewritten**."],
      });
      await page.goto(base + "/");
      await page.getByRole("textbox", { name: "Your question" }).fill("Which antibiotic for a simple UTI?");
      await page.keyboard.press("Enter");
      await page.waitForURL(/\/sessions\//);
      const latest = page.locator("#transcript article.msg.assistant.status-completed");
      await latest.waitFor({ timeout: 10_000 });
      await page.getByRole("button", { name: "Regenerate" }).click();
      await waitUntil(
        page,
        `document.querySelector("#transcript article.msg.assistant[data-paged]") !== null`,
        10_000,
      );
      const reply = page.locator("#transcript article.msg.assistant[data-paged]");
      const pager = reply.locator(".version-pager");
      assert.equal(await pager.locator("span").textContent(), "2/2");
      assert.match(await reply.locator(".msg-body").textContent() ?? "", /Second version, rewritten\./);
      assert.equal(await page.locator("details.earlier-version").isVisible(), false, "no second copy below");
      await pager.getByRole("button", { name: "Earlier version" }).click();
      assert.equal(await pager.locator("span").textContent(), "1/2");
      assert.match(
        await reply.locator(".msg-body").textContent() ?? "",
        /^\s*First version of the answer\.\s*$/,
      );
      await shot(page, "chat-versions-desk.png");
      await pager.getByRole("button", { name: "Later version" }).click();
      assert.equal(await reply.locator(".msg-body strong").textContent(), "rewritten");
      // Reloaded, the page pages the versions the same way.
      await page.reload();
      assert.equal(await page.locator(".version-pager span").textContent(), "2/2");
    }, { viewport: DESK });
  },
});
