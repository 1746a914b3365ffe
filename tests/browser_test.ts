/**
 * The main flows in a real browser (Debian's Chromium through playwright-core): start a session, send a
 * question, watch the reply grow, press Stop, reload and see the stopped reply; search the case library and
 * print a case as an OSCE station pack. Screenshots and the PDF go to tests/artifacts/ (git-ignored). Skipped
 * when Chromium is not installed, unless ROUNDS_REQUIRE_BROWSER=1 (CI).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { seedExampleCases } from "../cases/library.ts";
import { HYPOTHETICAL_NOTICE } from "../cases/schema.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { ARTIFACTS, ignoreWithoutBrowser, liveText, waitUntil, withBrowser } from "./support/browser.ts";

const liveLongerThan = (page: Page, n: number) =>
  waitUntil(page, `(document.querySelector("#live-body")?.textContent ?? "").length > ${n}`);

Deno.test({
  name: "browser: ask, watch the reply grow, Stop, reload and see the stopped reply",
  ignore: ignoreWithoutBrowser,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowser(async (page, base, stub) => {
      stub.defaultScript = {
        tokens: Array.from({ length: 400 }, (_, i) => (i % 25 === 24 ? "\n\n" : ` word${i}`)),
        delayMs: 40,
      };
      await page.goto(base + "/");
      await page.screenshot({ path: new URL("home.png", ARTIFACTS).pathname, fullPage: true });
      await page.getByRole("button", { name: "New session" }).first().click();
      await page.waitForURL(/\/sessions\/[0-9a-f-]{36}$/);

      const box = page.locator("#composer-input");
      await box.fill("Adult with a dry cough for two weeks after a cold: what should I check?");
      await box.press("Enter");

      // The question joins the transcript and the box empties once the server has stored it.
      await page.locator("article.msg.user", { hasText: "dry cough for two weeks" }).waitFor();
      await waitUntil(page, `document.querySelector("#composer-input").value === ""`);
      assert.equal(
        await page.locator("#composer-input").isDisabled(),
        true,
        "the composer is disabled while sending",
      );

      // The reply grows over several frames.
      const lengths: number[] = [];
      for (let i = 0; i < 4; i++) {
        await liveLongerThan(page, lengths.at(-1) ?? 0);
        lengths.push((await liveText(page)).length);
        await page.waitForTimeout(150);
      }
      assert.ok(lengths.every((n, i) => i === 0 || n > lengths[i - 1]), `grew: ${lengths}`);
      assert.match(await liveText(page), /^ word0 word1 word2/);
      await page.screenshot({ path: new URL("streaming.png", ARTIFACTS).pathname, fullPage: true });

      await page.getByRole("button", { name: "Stop" }).click();
      const stopped = page.locator("article.msg.assistant.status-stopped");
      await stopped.waitFor({ timeout: 5000 });
      await stub.waitFor((r) => r[0].abortedAt !== null, 2000);
      const kept = await stopped.locator(".msg-body").textContent();
      assert.match(kept ?? "", /word0 word1/);
      assert.equal(
        await page.locator("#composer-input").isDisabled(),
        false,
        "re-enabled after the reply ended",
      );
      await page.screenshot({ path: new URL("stopped.png", ARTIFACTS).pathname, fullPage: true });

      await page.reload();
      const reloaded = page.locator("article.msg.assistant.status-stopped");
      await reloaded.waitFor();
      assert.match(await reloaded.locator(".badge").first().textContent() ?? "", /Stopped/);
      assert.equal((await reloaded.locator(".msg-body").textContent())?.trim(), kept?.trim());
      assert.ok(
        await reloaded.getByRole("button", { name: "Continue" }).isVisible(),
        "a stopped reply offers Continue",
      );

      // Continue from the page: the same reply grows again and completes.
      stub.enqueue({ tokens: [" and", " the", " end."] });
      await reloaded.getByRole("button", { name: "Continue" }).click();
      const completed = page.locator("article.msg.assistant.status-completed");
      await completed.waitFor({ timeout: 5000 });
      assert.match(await completed.locator(".msg-body").textContent() ?? "", /and the end\.$/m);
      assert.equal(await page.locator("article.msg.assistant:not(.live)").count(), 1, "continued in place");
    });
  },
});

Deno.test({
  name: "browser: reloading mid-reply reattaches to the stream; the page works at phone width",
  ignore: ignoreWithoutBrowser,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowser(async (page, base, stub) => {
      stub.defaultScript = { tokens: Array.from({ length: 120 }, (_, i) => ` part${i}`), delayMs: 25 };
      await page.setViewportSize({ width: 375, height: 740 });
      await page.goto(base + "/");
      await page.getByRole("button", { name: "New session" }).first().click();
      await page.waitForURL(/\/sessions\//);
      await page.locator("#composer-input").fill("Reload during the answer");
      await page.getByRole("button", { name: "Send" }).click();
      await waitUntil(page, `(document.querySelector("#live-body")?.textContent ?? "").includes("part10")`);
      await page.reload();
      // Auto-scroll follows the growing reply while the reader is at the bottom …
      await waitUntil(page, `(document.querySelector("#live-body")?.textContent ?? "").includes("part60")`);
      const gap = await page.evaluate<number>(
        `document.documentElement.scrollHeight - (window.scrollY + window.innerHeight)`,
      );
      assert.ok(gap < 100, `following the reply (${gap}px from the bottom)`);
      // … and stops once the reader scrolls up to read something else, even when a chunk lands before the
      // scroll event does (the race CI once lost; the text node forces it every time).
      await page.evaluate(
        `window.scrollTo(0, 0); document.querySelector("#transcript").append(document.createTextNode(""))`,
      );
      await page.waitForTimeout(400);
      assert.ok((await page.evaluate<number>(`window.scrollY`)) < 20, "left where the reader scrolled");
      // The page shows the text so far and follows the rest from where it left off.
      const done = page.locator("article.msg.assistant.status-completed");
      await done.waitFor({ timeout: 10_000 });
      const text = (await done.locator(".msg-body").textContent() ?? "").trim();
      assert.equal(text, Array.from({ length: 120 }, (_, i) => `part${i}`).join(" "));
      const overflow = await page.evaluate<number>(
        `document.documentElement.scrollWidth - document.documentElement.clientWidth`,
      );
      assert.ok(overflow <= 1, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
      await page.screenshot({ path: new URL("phone.png", ARTIFACTS).pathname, fullPage: true });
    });
  },
});

/** Pages in a PDF: its page objects (`/Type /Page`, not the `/Type /Pages` tree nodes). */
function pdfPageCount(pdf: Uint8Array): number {
  return new TextDecoder("latin1").decode(pdf).match(/\/Type\s*\/Page(?!s)/g)?.length ?? 0;
}

/** Renders a PDF's first pages to PNG for review when poppler's pdftoppm is installed; otherwise does nothing. */
async function rasterizeIfPossible(pdfPath: string, prefix: string, lastPage: number): Promise<void> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command("pdftoppm", {
      args: ["-png", "-r", "60", "-f", "1", "-l", String(lastPage), pdfPath, prefix],
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch (error) {
    // Spawning fails synchronously when the program is missing.
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!result.success) {
    throw new Error(`pdftoppm failed on ${pdfPath}: ${new TextDecoder().decode(result.stderr)}`);
  }
}

Deno.test({
  name: "browser: search the case library, open a case and print it as an OSCE station pack",
  ignore: ignoreWithoutBrowser,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowser(async (page, base, _stub, t) => {
      const seeded = await seedExampleCases(t.database.db, createLexicalEmbedder());
      assert.ok(seeded >= 3, `seeded the example cases (${seeded})`);
      await page.goto(base + "/cases");
      const results = page.locator("#case-results");
      const cards = results.locator("li.case-card");
      assert.equal(await cards.count(), seeded, "the library lists every example case");
      assert.match(await results.textContent() ?? "", new RegExp(`${seeded} cases, newest first`));

      // Searching swaps the results in place (no page load: the marker survives) and pushes the URL.
      await page.evaluate(`document.body.dataset.marker = "kept"`);
      await page.getByRole("searchbox", { name: "Search cases" }).fill("headache");
      await page.getByRole("button", { name: "Search" }).click();
      await page.waitForURL(/\/cases\?(.*&)?q=headache(&|$)/);
      await results.getByText(new RegExp(`^\\d+ of ${seeded} cases$`)).waitFor();
      assert.equal(
        await page.evaluate<string>(`document.body.dataset.marker ?? ""`),
        "kept",
        "swapped by htmx",
      );
      assert.equal(await results.locator(".case-search, main").count(), 0, "a fragment, not a whole page");
      const found = await cards.count();
      assert.ok(found > 0 && found < seeded, `the search narrowed the list (${found} of ${seeded})`);
      const title = "Sudden 'worst ever' headache while lifting at work";
      const link = results.getByRole("link", { name: title });
      assert.equal(await link.count(), 1, "the subarachnoid haemorrhage case matches “headache”");

      await link.click();
      await page.waitForURL(/\/cases\/[0-9a-f-]{36}$/);
      assert.equal((await page.locator("h1").textContent())?.trim(), title);
      assert.match(await page.locator(".hypothetical").textContent() ?? "", /Hypothetical case\./);
      const caseUrl = page.url();

      // The case page at phone width: no sideways scrolling.
      await page.setViewportSize({ width: 390, height: 844 });
      const overflow = await page.evaluate<number>(
        `document.documentElement.scrollWidth - document.documentElement.clientWidth`,
      );
      assert.ok(overflow <= 1, `no horizontal scrolling at 390 px (overflow ${overflow}px)`);
      await page.screenshot({ path: new URL("case-narrow.png", ARTIFACTS).pathname, fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });

      await page.getByRole("link", { name: "Print OSCE station" }).click();
      await page.waitForURL(caseUrl + "/print");
      const parts = page.locator("section.station-page");
      const labels = ["Candidate brief", "Actor script", "Examiner checklist"];
      assert.match(await page.locator("section.station-page").last().textContent() ?? "", /Global rating/);
      assert.equal(await parts.count(), labels.length, "three parts: brief, script, checklist");
      for (const [i, label] of labels.entries()) {
        assert.equal(await parts.nth(i).getAttribute("aria-label"), label);
        const head = await parts.nth(i).locator(".print-label").textContent() ?? "";
        assert.ok(
          head.includes(HYPOTHETICAL_NOTICE),
          `the ${label.toLowerCase()} carries the label: ${head}`,
        );
      }

      // Each part starts a new sheet: at least three A4 pages, and not a runaway number of them.
      const pdfPath = new URL("osce-station.pdf", ARTIFACTS).pathname;
      const pdf = await page.pdf({ format: "A4", printBackground: true });
      await Deno.writeFile(pdfPath, pdf);
      const pages = pdfPageCount(pdf);
      assert.ok(pages >= 3 && pages <= 8, `the station pack prints on 3 to 8 A4 pages (${pages})`);
      await rasterizeIfPossible(
        pdfPath,
        new URL("osce-station-page", ARTIFACTS).pathname,
        Math.min(pages, 4),
      );

      await page.emulateMedia({ media: "print" });
      assert.equal(
        await page.evaluate<string>(`getComputedStyle(document.querySelector(".no-print")).display`),
        "none",
        "the toolbar is not printed",
      );
      assert.deepEqual(
        await page.evaluate<string[]>(
          `[...document.querySelectorAll("section.station-page")].map((s) => getComputedStyle(s).breakBefore)`,
        ),
        ["auto", "page", "page"],
        "every part after the first starts on a new page",
      );
      await page.screenshot({ path: new URL("osce-station-print.png", ARTIFACTS).pathname, fullPage: true });

      // On screen, the toolbar leads back to the case.
      await page.emulateMedia({ media: "screen" });
      const back = page.getByRole("link", { name: "Back to the case" });
      assert.equal(new URL(await back.getAttribute("href") ?? "", page.url()).href, caseUrl, "back link");
      await back.click();
      await page.waitForURL(caseUrl);
    });
  },
});

Deno.test({
  name:
    "browser: the emergency banner before the reply, what was redacted, admin pages and sign-out at phone width",
  ignore: ignoreWithoutBrowser,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowser(async (page, base, stub) => {
      stub.defaultScript = { tokens: Array.from({ length: 60 }, (_, i) => ` w${i}`), delayMs: 30 };
      await page.setViewportSize({ width: 390, height: 800 });
      await page.goto(base + "/");
      await page.getByRole("button", { name: "New session" }).first().click();
      await page.waitForURL(/\/sessions\//);
      await page.locator("#composer-input").fill(
        "Mr Tom Reid, 61, crushing chest pain spreading to his jaw, sweating and breathless",
      );
      await page.getByRole("button", { name: "Send" }).click();
      // The banner is on the page while the reply is still being written.
      await page.locator("aside.emergency").waitFor({ timeout: 5000 });
      assert.ok((await liveText(page)).length < 200, "the banner came before most of the reply");
      assert.match(
        await page.locator("aside.emergency").textContent() ?? "",
        /call local emergency services/i,
      );
      // It says whose words these are: a reply cannot pass for it (issue 19, item 23).
      assert.ok(
        await page.getByText("Rounds' red-flag check of your message, not written by the model").isVisible(),
      );
      assert.equal(await page.locator('mark.phi[title="The model saw [NAME_1]"]').textContent(), "Tom Reid");
      await page.locator("article.msg.assistant.status-completed").waitFor({ timeout: 10_000 });
      await page.screenshot({ path: new URL("emergency.png", ARTIFACTS).pathname, fullPage: true });

      for (const path of ["/admin/users", "/admin/audit"]) {
        await page.goto(base + path);
        const overflow = await page.evaluate<number>(
          `document.documentElement.scrollWidth - document.documentElement.clientWidth`,
        );
        assert.ok(overflow <= 1, `${path}: no horizontal page scrolling at 390 px (overflow ${overflow}px)`);
      }
      assert.match(await page.locator("table.audit").textContent() ?? "", /Sent a message/);
      await page.screenshot({ path: new URL("audit.png", ARTIFACTS).pathname, fullPage: true });

      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/login\?reason=signed-out/);
      await page.goto(base + "/");
      await page.waitForURL(/\/login/);
      await page.screenshot({ path: new URL("login.png", ARTIFACTS).pathname, fullPage: true });
    });
  },
});
