/**
 * Chromium for tests (Debian's, through playwright-core): the app served on 127.0.0.1, a clinician signed in
 * through the real form, and every console error, CSP violation or HTTP error the page saw turned into a
 * failure. Browser tests are skipped when Chromium is not installed, unless ROUNDS_REQUIRE_BROWSER=1 (CI).
 */
import assert from "node:assert/strict";
import { chromium, type Page } from "playwright-core";
import { startStub } from "./endpoint_stub.ts";
import { createTestApp, createTestDatabase, type TestApp } from "./test_app.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
const required = Deno.env.get("ROUNDS_REQUIRE_BROWSER") === "1";
/** `ignore` for browser tests: skip without Chromium, unless required (CI). */
export const ignoreWithoutBrowser = !hasChromium && !required;
/** Where screenshots go (git-ignored), for someone to look at. */
export const ARTIFACTS = new URL("../artifacts/", import.meta.url);
if (!hasChromium && !required) {
  console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}

/** Runs fn in Chromium, signed in, against the app; the app talks to a stub unless `inferenceUrl` names a server. */
export async function withBrowser(
  fn: (page: Page, base: string, stub: ReturnType<typeof startStub>, t: TestApp) => Promise<void>,
  options: {
    inferenceUrl?: string;
    viewport?: { width: number; height: number };
    env?: Record<string, string>;
    /** Console lines and HTTP errors the test itself causes (a sign-in it ends): not failures. */
    expectedProblems?: RegExp;
    /**
     * PGlite on disk on its own thread, as a laptop runs it, for a test whose server does long database work
     * while the page is watched (in memory, that work would hold the browser driver's event loop too).
     */
    pgliteOnDisk?: boolean;
  } = {},
) {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const stub = startStub();
  const t = await createTestApp({
    env: { INFERENCE_URL: options.inferenceUrl ?? stub.url, ...options.env },
    runner: { graceMs: 5000 },
    database: options.pgliteOnDisk ? await createTestDatabase({ onDisk: true }) : undefined,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, t.app.fetch);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = await browser.newPage({ viewport: options.viewport ?? { width: 1280, height: 900 } });
  const base = `http://127.0.0.1:${server.addr.port}`;
  // Sign in through the real form, as a clinician would.
  await page.goto(base + "/login");
  await page.fill('input[name="email"]', t.user.email);
  await page.fill('input[name="password"]', t.user.password);
  await Promise.all([page.waitForURL(base + "/"), page.click('button[type="submit"]')]);
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(String(error)));
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  try {
    await fn(page, base, stub, t);
    const expected = options.expectedProblems;
    assert.deepEqual(
      problems.filter((p) => !expected?.test(p)),
      [],
      "no script errors or CSP violations in the console",
    );
  } finally {
    await browser.close();
    await server.shutdown();
    await t.close();
    await stub.close();
  }
}

// In-page code is written as strings: browser globals are not in Deno's type library.
/** The text of the reply being written. */
export const liveText = (page: Page) =>
  page.evaluate<string>(`document.querySelector("#live-body")?.textContent ?? ""`);
// Polled from here: the page's CSP (rightly) refuses the eval that page.waitForFunction would need.
export async function waitUntil(page: Page, expression: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate<boolean>(expression))) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const AXE = new URL("../../node_modules/axe-core/axe.min.js", import.meta.url);

/**
 * axe-core's serious and critical findings (WCAG 2 A and AA) on the page as it is now, one line each: the rule,
 * what it says, and the first elements it names. Injected through the DevTools protocol, which the page's CSP
 * does not govern (the page itself could not load it, rightly).
 */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(await Deno.readTextFile(AXE));
  const found = await page.evaluate<{ id: string; impact: string; help: string; targets: string[] }[]>(`
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })
      .then((r) => r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
      })))`);
  return found.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.targets.join(", ")})`);
}

/** True when the element's box is wholly inside the viewport (what the user actually sees). */
export function inViewport(page: Page, selector: string): Promise<boolean> {
  return page.evaluate<boolean>(`(() => {
    const el = document.querySelector(${JSON.stringify(selector)});
    if (!el) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight;
  })()`);
}
