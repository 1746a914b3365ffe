/**
 * A reasoning model in Chromium, against a real llama-server whose chat template opens a `<think>` block: the
 * thinking fills a collapsed "Reasoning" section while it streams (the page moves, the answer area stays
 * empty), and a reply that was all thinking ends with a message that says so, not an empty "complete" answer.
 */
import assert from "node:assert/strict";
import { ARTIFACTS, ignoreWithoutBrowser, waitUntil, withBrowser } from "./support/browser.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";

Deno.test({
  name:
    "browser: a reasoning model's thinking streams into a collapsed Reasoning section, and all-thinking says so",
  ignore: ignoreWithoutBrowser || ignoreWithoutLlama,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // A bigger --think model streams at ~30 tokens/s on one core; </s> (2), <|im_start|> (3), <|im_end|> (4)
    // and </think> (6) end a generation or a thought, so they are forbidden: it thinks until its allowance ends.
    // (Forbidding only 4 and 6 once let a random </s> end it early.)
    await withLlamaServer({
      model: { think: true, embd: 1024, layers: 8, ff: 2048, f16: true },
      args: ["-l", "2-100", "-l", "3-100", "-l", "4-100", "-l", "6-100"],
    }, async (server) => {
      await withBrowser(async (page, base) => {
        await page.goto(base + "/");
        await page.getByRole("button", { name: "New session" }).first().click();
        await page.waitForURL(/\/sessions\/[0-9a-f-]{36}$/);
        await page.locator("#composer-input").fill(
          "Dry cough for two weeks after a cold: what should I check?",
        );
        await page.locator("#composer-input").press("Enter");

        const section = page.locator("#live-reasoning");
        await section.waitFor({ state: "visible", timeout: 15_000 });
        assert.equal(await section.getAttribute("open"), null, "collapsed");
        const summary = page.locator("#live-reasoning summary");
        await waitUntil(
          page,
          `/thinking… \\d+ characters/.test(document.querySelector("#live-reasoning summary").textContent)`,
        );
        const first = await summary.textContent();
        await page.waitForTimeout(700);
        assert.notEqual(await summary.textContent(), first, "the count moves while the model thinks");
        assert.equal(
          (await page.locator("#live-body").textContent())?.trim(),
          "",
          "no thinking in the answer",
        );
        await page.screenshot({ path: new URL("reasoning-streaming.png", ARTIFACTS).pathname });

        const ended = page.locator("article.msg.assistant.status-error");
        await ended.waitFor({ timeout: 20_000 });
        assert.match(
          await ended.textContent() ?? "",
          /spent its whole allowance \(\d+ tokens\) thinking and wrote no answer/,
        );
        await page.screenshot({ path: new URL("reasoning-no-answer.png", ARTIFACTS).pathname });
      }, {
        inferenceUrl: server.url,
        viewport: { width: 1366, height: 900 },
        env: { INFERENCE_TEMPLATE: "chat", INFERENCE_MAX_NEW_TOKENS: "160" },
      });
    });
  },
});
