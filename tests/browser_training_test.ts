/**
 * The fine-tune loop in Chromium against a real llama-server: a clinician's thumb and correction under an
 * answer become training data an administrator downloads, with the patient's name replaced.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { ARTIFACTS, axeViolations, ignoreWithoutBrowser, waitUntil, withBrowser } from "./support/browser.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";
import { saveAnswerEval } from "../db/evals.ts";
import { scoreAnswer, summarise } from "../chat/answer_scores.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const DESK = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };
const shot = (page: Page, name: string) => page.screenshot({ path: new URL(name, ARTIFACTS).pathname });
const noOverflow = (page: Page) =>
  page.evaluate<number>(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);

const CORRECTION = "Same-day ECG and troponin; ring Mrs\u00a0Okonkwo back with the result (020 7946 0958).";

Deno.test({
  name:
    "browser training: a thumb and a correction on a llama-server answer download as redacted training data; " +
    "answer quality reads at both widths",
  ignore: ignoreWithoutBrowser || ignoreWithoutLlama,
  ...opts,
  fn: async () => {
    await withLlamaServer({}, async (server) => {
      await withBrowser(async (page, base, _stub, t) => {
        await page.goto(base + "/");
        await page.getByRole("textbox", { name: "Your question" }).fill(
          "Mrs Adaeze Okonkwo, 58, has chest tightness on exertion for 2 weeks. Next step?",
        );
        await page.keyboard.press("Enter");
        await page.waitForURL(/\/sessions\//);
        const reply = page.locator("#transcript article.msg.assistant[data-status]");
        await reply.waitFor({ timeout: 60_000 });
        await waitUntil(page, `document.activeElement?.id === "composer-input"`, 60_000);

        await reply.getByRole("button", { name: "Not helpful" }).click();
        await waitUntil(
          page,
          `document.querySelector('#transcript [title="Not helpful"]')?.getAttribute("aria-pressed") === "true"`,
        );
        await reply.getByText("Suggest a correction").click();
        await reply.getByRole("textbox", { name: "Correction" }).fill(CORRECTION);
        await reply.getByRole("button", { name: "Save correction" }).click();
        await reply.getByRole("status").filter({ hasText: "Saved" }).waitFor();

        await page.goto(base + "/admin/training");
        assert.equal(
          await page.getByRole("link", { name: "Training data" }).getAttribute("aria-current"),
          "page",
        );
        await page.getByRole("spinbutton", { name: "Held out (%)" }).fill("0");
        await page.getByRole("button", { name: "Update" }).click();
        await page.waitForURL(/test=0/);
        const files = page.getByRole("region", { name: "Training data files" });
        assert.match(await files.innerText(), /sft-train\.jsonl\s+Answers to learn[^\n]*\s+1/);
        assert.match(await files.innerText(), /preference-train\.jsonl\s+Preferred and rejected[^\n]*\s+1/);
        assert.equal(await noOverflow(page), 0, "the training page fits the desk screen");
        assert.deepEqual(await axeViolations(page), [], "training page (desk)");
        await shot(page, "training-desk.png");

        const [download] = await Promise.all([
          page.waitForEvent("download"),
          files.getByRole("link", { name: "preference-train.jsonl" }).click(),
        ]);
        assert.equal(download.suggestedFilename(), "rounds-preference-train.jsonl");
        const text = await Deno.readTextFile(await download.path());
        const [pair, ...rest] = text.trim().split("\n").map((line) => JSON.parse(line));
        assert.equal(rest.length, 0);
        assert.equal(pair.origin, "correction");
        assert.match(
          pair.chosen,
          /^Same-day ECG and troponin; ring Mrs.\[NAME_\d\] back with the result \(\[PHONE_1\]\)\./,
        );
        assert.ok(pair.rejected.length > 0, "the model's answer is the rejected one");
        assert.doesNotMatch(text, /Okonkwo|Adaeze|7946/);

        await page.setViewportSize(PHONE);
        await page.reload();
        await files.scrollIntoViewIfNeeded();
        await shot(page, "training-phone.png");
        assert.equal(await noOverflow(page), 0, "the training page fits the phone screen");
        assert.deepEqual(await axeViolations(page), [], "training page (phone)");
        const table = await files.evaluate((e) => e.scrollWidth - e.clientWidth);
        assert.equal(table, 0, "the files table needs no sideways scroll on a phone");

        // Answer quality: two models' figures side by side, readable on a phone and at the desk.
        const figures = (label: string) =>
          summarise({ id: label, label, template: "llama2-meddialog" }, [{
            emergency: true,
            scores: scoreAnswer("Call 999 now: this may be a heart attack [1].", {
              reference: "Call an ambulance now.",
              sources: ["[1] chest pain and sweating: call an ambulance"],
            }),
            error: null,
            firstTextMs: 120,
            totalMs: 900,
            outputTokens: 14,
          }]);
        await saveAnswerEval(t.database.db, {
          questionSet: "held out of data/corpus",
          questions: 1,
          figures: [figures("Llama-2 MedDialog (current)"), figures("Llama-2 MedDialog v2 (new adapter)")],
        });
        for (const viewport of [PHONE, DESK]) {
          await page.setViewportSize(viewport);
          await page.goto(base + "/admin/evals");
          const region = page.getByRole("region", { name: /1 question, held out of data\/corpus/ });
          assert.match(
            await region.innerText(),
            /emergencies told to seek care\s+100\.0% of 1\s+100\.0% of 1/,
          );
          assert.equal(await noOverflow(page), 0, `the answer-quality page fits ${viewport.width} px`);
          assert.deepEqual(await axeViolations(page), [], `answer-quality page at ${viewport.width} px`);
          await shot(page, `evals-${viewport === PHONE ? "phone" : "desk"}.png`);
        }
      }, { inferenceUrl: server.url, viewport: DESK });
    });
  },
});
