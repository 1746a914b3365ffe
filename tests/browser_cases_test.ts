/**
 * An educator generates a teaching case in Chromium and always lands on a final state: against a real
 * llama-server from the default configuration (held to the schema; random weights are usually refused by the
 * checks, so a red message that says what to do), against a server that writes a valid case (the case opens),
 * and with Cancel (the request is aborted and the page says nothing was saved). Screenshots in tests/artifacts/.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { readExampleCases } from "../cases/library.ts";
import { ARTIFACTS, ignoreWithoutBrowser, inViewport, waitUntil, withBrowser } from "./support/browser.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";

async function fillCaseForm(page: Page, base: string): Promise<void> {
  await page.goto(base + "/cases/new");
  await page.getByLabel("Specialty").fill("Cardiology");
  await page.getByLabel("Setting").fill("Emergency department");
  await page.getByLabel("Focus or learning objectives (optional)").fill(
    "Chest pain with ST elevation – 55 y",
  );
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "browser: an educator generates a case against a real llama-server and lands on a final state (phone)",
  ignore: ignoreWithoutBrowser || ignoreWithoutLlama,
  ...opts,
  fn: async () => {
    await withLlamaServer({ model: { ctx: 8192 }, args: ["-c", "8192"] }, async (server) => {
      await withBrowser(async (page, base) => {
        await fillCaseForm(page, base);
        assert.equal(await page.locator(".notice.warning").count(), 0, "llama.cpp holds cases to the schema");
        await page.getByRole("button", { name: "Generate the case" }).click();
        await page.locator(".generation-progress").waitFor({ timeout: 10_000 });
        assert.ok(
          await page.getByRole("button", { name: "Cancel generation" }).isVisible(),
          "Cancel is offered",
        );
        // Three attempts of a few thousand constrained tokens at most.
        await waitUntil(
          page,
          `location.pathname.match(/^\\/cases\\/[0-9a-f-]{36}$/) !== null ||
            document.querySelector("#generation-status .generation-failed") !== null`,
          120_000,
        );
        if (new URL(page.url()).pathname.startsWith("/cases/new")) {
          const alert = page.locator("#generation-status [role=alert]");
          const text = await alert.textContent() ?? "";
          assert.match(text, /The case was not generated\./);
          assert.match(text, /nothing was saved/i);
          assert.doesNotMatch(text, /trying again|sections begun/);
          assert.ok(await inViewport(page, "#generation-status [role=alert]"), "the message is on screen");
          await waitUntil(page, `document.querySelector("#cancel-generation").hidden`, 2000);
          await waitUntil(page, `!document.querySelector("#new-case button[type=submit]").disabled`, 2000);
        } else {
          await page.locator(".hypothetical").waitFor();
        }
        await page.screenshot({ path: new URL("case-generation-llama-phone.png", ARTIFACTS).pathname });
      }, { inferenceUrl: server.url, viewport: { width: 390, height: 844 } });
    });
  },
});

Deno.test({
  name: "browser: a valid case from the server opens; Cancel stops a generation and says nothing was saved",
  ignore: ignoreWithoutBrowser,
  ...opts,
  fn: async () => {
    const example = (await readExampleCases()).find((e) => e.file.includes("atrial-fibrillation"))!.value;
    const json = JSON.stringify(example);
    await withBrowser(async (page, base, stub) => {
      stub.enqueue({ tokens: json.match(/[\s\S]{1,40}/g)!, delayMs: 2 });
      await fillCaseForm(page, base);
      assert.equal(await page.getByRole("button", { name: "Cancel generation" }).isVisible(), false);
      await page.getByRole("button", { name: "Generate the case" }).click();
      await page.waitForURL(/\/cases\/[0-9a-f-]{36}$/, { timeout: 20_000 });
      assert.equal((await page.locator("h1").textContent())?.trim(), example.title);
      await page.screenshot({ path: new URL("case-generation-saved.png", ARTIFACTS).pathname });

      // A slow server: Cancel aborts the request, and the server sees the client go.
      stub.enqueue({ tokens: Array.from({ length: 400 }, () => '{"a":'), delayMs: 50 });
      await fillCaseForm(page, base);
      await page.getByRole("button", { name: "Generate the case" }).click();
      await page.locator(".generation-progress").waitFor();
      await page.getByRole("button", { name: "Cancel generation" }).click();
      const note = page.locator("#generation-status [role=status]");
      await note.waitFor({ timeout: 5000 });
      assert.equal((await note.textContent())?.trim(), "Generation cancelled. Nothing was saved.");
      assert.equal(await page.getByRole("button", { name: "Cancel generation" }).isVisible(), false);
      await stub.waitFor((r) => r.at(-1)!.abortedAt !== null, 5000);
      assert.equal(await page.getByRole("button", { name: "Generate the case" }).isEnabled(), true);
      await page.screenshot({ path: new URL("case-generation-cancelled.png", ARTIFACTS).pathname });
    }, { viewport: { width: 1366, height: 900 } });
  },
});
