/**
 * Live PubMed in Chromium against a real llama-server: the answer's sources include the abstract fetched for
 * the question, named as a citation (title, journal, year), with its PMID and a link to the article.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { ARTIFACTS, axeViolations, ignoreWithoutBrowser, waitUntil, withBrowser } from "./support/browser.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";
import { HYPOTHETICAL_ARTICLES, startEutilsStub } from "./support/eutils_stub.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const DESK = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };
const shot = (page: Page, name: string) => page.screenshot({ path: new URL(name, ARTIFACTS).pathname });
const noOverflow = (page: Page) =>
  page.evaluate<number>(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);

for (const viewport of [DESK, PHONE]) {
  const size = viewport === PHONE ? "phone" : "desk";
  Deno.test({
    name:
      `browser PubMed (${size}): an abstract fetched for the question is cited with journal, year and link`,
    ignore: ignoreWithoutBrowser || ignoreWithoutLlama,
    ...opts,
    fn: async () => {
      const eutils = startEutilsStub(HYPOTHETICAL_ARTICLES);
      try {
        await withLlamaServer({}, async (server) => {
          await withBrowser(async (page, base) => {
            await page.goto(base + "/");
            await page.getByRole("textbox", { name: "Your question" }).fill(
              "Spironolactone for resistant hypertension: worth adding?",
            );
            await page.keyboard.press("Enter");
            await page.waitForURL(/\/sessions\//);
            const reply = page.locator("#transcript article.msg.assistant[data-status]");
            await reply.waitFor({ timeout: 60_000 });
            await waitUntil(page, `document.activeElement?.id === "composer-input"`, 60_000);
            const sources = reply.getByRole("region", { name: /^Sources/ });
            const source = sources.locator("details.source", { hasText: "PMID:39000002" }).first();
            await source.locator("summary").click();
            assert.match(
              await source.innerText(),
              /Spironolactone as a fourth drug for resistant hypertension \(hypothetical\)\. Hypothet Hypertens Rev\. 2023\./,
            );
            const link = source.getByRole("link", { name: "The article on PubMed (opens in a new tab)" });
            assert.equal(await link.getAttribute("href"), "https://pubmed.ncbi.nlm.nih.gov/39000002/");
            assert.ok(await link.isVisible());
            assert.equal(await noOverflow(page), 0, "the reply and its sources fit the screen");
            assert.deepEqual(await axeViolations(page), [], "a reply with PubMed sources");
            await source.scrollIntoViewIfNeeded();
            await shot(page, `pubmed-source-${size}.png`);
          }, { inferenceUrl: server.url, viewport, env: { PUBMED: "always", PUBMED_URL: eutils.url } });
        });
      } finally {
        await eutils.close();
      }
    },
  });
}
