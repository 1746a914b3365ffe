/**
 * Knowledge → Documents in Chromium against a real llama-server: an administrator uploads a guideline PDF and a
 * CSV from the browser, watches them become ready, then asks a question whose sources cite the PDF's page.
 * At 1366 and 390 px wide, with axe, and screenshots to look at. PGlite runs on disk on its own thread, as on a
 * laptop: in memory, storing a batch of the 1,200-row table held this process's event loop (and so the browser
 * driver) for 2 s at a time, and the test could see the table only once it was read.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Page } from "playwright-core";
import { ARTIFACTS, axeViolations, ignoreWithoutBrowser, waitUntil, withBrowser } from "./support/browser.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";
import { makePdf } from "./support/documents.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const DESK = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };
const shot = (page: Page, name: string) => page.screenshot({ path: new URL(name, ARTIFACTS).pathname });
const noOverflow = (page: Page) =>
  page.evaluate<number>(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);

const PATHWAY = makePdf([
  [
    "Suspected acute coronary syndrome: emergency department pathway",
    "Hypothetical, written for Rounds' tests.",
  ],
  [
    "Aspirin: give 300 mg chewed at once unless there is a true aspirin allergy.",
    "ECG: record a 12-lead ECG within 10 minutes of arrival; repeat if the pain returns.",
    "Troponin: high-sensitivity troponin at presentation and at 3 hours.",
  ],
], { title: "Chest pain pathway 2026" });

const FAQ = "question,answer,topic\n" +
  '"Can I take ibuprofen with ramipril?","Avoid regular ibuprofen with ramipril: it can harm the kidneys.",Pharmacy\n' +
  '"How long does a sore throat last?","Most settle within a week; see a doctor after 10 days.",ENT\n';

for (const viewport of [DESK, PHONE]) {
  const size = viewport === PHONE ? "phone" : "desk";
  Deno.test({
    name:
      `browser documents (${size}): a PDF and a CSV uploaded in the browser; an answer cites the PDF's page`,
    ignore: ignoreWithoutBrowser || ignoreWithoutLlama,
    ...opts,
    fn: async () => {
      await withLlamaServer({}, async (server) => {
        await withBrowser(async (page, base) => {
          await page.goto(base + "/knowledge");
          await page.getByRole("link", { name: "Documents" }).first().click();
          await page.waitForURL(/\/knowledge\/documents$/);
          assert.ok(await page.getByText("Nothing uploaded yet.").isVisible());
          assert.deepEqual(await axeViolations(page), [], "the empty documents page");
          await shot(page, `documents-empty-${size}.png`);

          await page.getByLabel("Files").setInputFiles([
            { name: "chest-pain-pathway.pdf", mimeType: "application/pdf", buffer: Buffer.from(PATHWAY) },
            { name: "clinic-faq.csv", mimeType: "text/csv", buffer: Buffer.from(FAQ) },
          ]);
          await page.getByLabel("Specialty (optional)").fill("Emergency medicine");
          await page.getByRole("button", { name: "Upload and add to the knowledge base" }).click();
          const notice = page.getByText(/chest-pain-pathway\.pdf, clinic-faq\.csv are being added/);
          await notice.waitFor({ timeout: 20_000 });
          const pdfRow = page.locator(".document-item", { hasText: "chest-pain-pathway.pdf" });
          await pdfRow.getByText("Added: 2 snippets in the knowledge base").waitFor({ timeout: 60_000 });
          const csvRow = page.locator(".document-item", { hasText: "clinic-faq.csv" });
          await csvRow.getByText("Added: 2 snippets in the knowledge base").waitFor({ timeout: 60_000 });
          assert.ok(await pdfRow.isVisible());
          assert.equal(
            await page.getByLabel("Files").inputValue(),
            "",
            "the form is cleared for the next upload",
          );
          assert.equal(await noOverflow(page), 0, "the list fits the screen");
          assert.deepEqual(await axeViolations(page), [], "the documents page after the upload");
          await shot(page, `documents-ready-${size}.png`);

          if (viewport === DESK) {
            // A table that takes a while to read: its row shows the reading, then the result, without a reload.
            const rows = Array.from(
              { length: 1200 },
              (_, i) =>
                `"Case ${i}: cough and fever for ${
                  i % 9 + 1
                } days?","Review ${i}: chest examination; consider an X-ray."`,
            );
            await page.getByLabel("Files").setInputFiles([
              {
                name: "coughs.csv",
                mimeType: "text/csv",
                buffer: Buffer.from(`question,answer\n${rows.join("\n")}\n`),
              },
            ]);
            await page.getByRole("button", { name: "Upload and add to the knowledge base" }).click();
            const row = page.locator(".document-item", { hasText: "coughs.csv" });
            // First its progress bar (the upload's answer shows it waiting or being read)…
            await row.locator("progress").waitFor({ timeout: 20_000 });
            await shot(page, `documents-reading-${size}.png`);
            // …then, from the list's live stream, its result.
            await row.getByText("Added: 1,200 snippets in the knowledge base").waitFor({ timeout: 120_000 });
            assert.equal(await row.locator("progress").count(), 0);
          }

          // The document's own page, titled by the PDF's own title.
          await page.reload();
          await page.getByRole("link", { name: "Chest pain pathway 2026" }).click();
          await page.getByRole("heading", { name: "Chest pain pathway 2026", level: 1 }).waitFor();
          assert.ok(await page.getByText("chest-pain-pathway.pdf", { exact: false }).first().isVisible());
          assert.ok(await page.getByRole("button", { name: "Ingest again" }).isVisible());
          assert.deepEqual(await axeViolations(page), [], "a document's page");
          await shot(page, `document-page-${size}.png`);

          // A question the PDF answers: its page is among the reply's sources.
          await page.goto(base + "/");
          await page.getByRole("textbox", { name: "Your question" }).fill(
            "How much aspirin should be given, chewed, and how soon should the 12-lead ECG be recorded?",
          );
          await page.keyboard.press("Enter");
          await page.waitForURL(/\/sessions\//);
          const reply = page.locator("#transcript article.msg.assistant[data-status]");
          await reply.waitFor({ timeout: 60_000 });
          await waitUntil(page, `document.activeElement?.id === "composer-input"`, 60_000);
          const sources = reply.getByRole("region", { name: /^Sources/ });
          const source = sources.locator("details.source", { hasText: "Chest pain pathway 2026, p. 2" })
            .first();
          await source.locator("summary").click();
          assert.match(await source.innerText(), /Aspirin: give 300 mg chewed at once/);
          assert.equal(await noOverflow(page), 0, "the reply and its sources fit the screen");
          assert.deepEqual(await axeViolations(page), [], "a reply citing an uploaded document");
          await source.scrollIntoViewIfNeeded();
          await shot(page, `documents-cited-${size}.png`);
        }, { inferenceUrl: server.url, viewport, pgliteOnDisk: true });
      });
    },
  });
}
