import assert from "node:assert/strict";
import { DRIVER, withTestApp } from "./support/test_app.ts";

Deno.test(`home [${DRIVER}]: the layout loads the vendored, versioned htmx 4 and hx-sse`, async () => {
  await withTestApp(async ({ request }) => {
    const response = await request("/");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/html/);
    const html = await response.text();
    assert.ok(html.startsWith("<!doctype html>"));
    const nonce = /script-src 'nonce-([^']+)'/.exec(response.headers.get("content-security-policy") ?? "")
      ?.[1];
    assert.ok(nonce, "scripts are allowed by a per-response nonce");
    assert.match(
      html,
      /<script src="\/static\/vendor\/htmx-4\.0\.1\.min\.js\?v=[0-9a-f]{12}" nonce="[^"]+" defer>/,
    );
    assert.match(
      html,
      /<script src="\/static\/vendor\/hx-sse-4\.0\.1\.min\.js\?v=[0-9a-f]{12}" nonce="[^"]+" defer>/,
    );
    assert.ok(html.includes(`nonce="${nonce}"`));
    assert.match(html, /<link rel="stylesheet" href="\/static\/app\.css\?v=[0-9a-f]{12}">/);
    assert.match(html, /No model is configured\.<\/strong>/);
    assert.match(html, /<script src="\/static\/app\.js\?v=[0-9a-f]{12}" nonce="[^"]+" defer>/);
    assert.match(html, /does not replace clinical judgement/);
    assert.doesNotMatch(response.headers.get("content-security-policy") ?? "", /unsafe-inline|unsafe-eval/);
  });
});

Deno.test(`static [${DRIVER}]: versioned URLs are immutable for a year; others revalidate`, async () => {
  await withTestApp(async ({ request }) => {
    const html = await (await request("/")).text();
    const url = html.match(/src="(\/static\/vendor\/htmx-4\.0\.1\.min\.js\?v=[0-9a-f]+)"/)![1];
    const versioned = await request(url);
    assert.equal(versioned.status, 200);
    assert.equal(versioned.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.match(versioned.headers.get("content-type") ?? "", /text\/javascript/);
    const body = await versioned.text();
    assert.ok(body.length > 10_000, "the real htmx build must be served");

    const bare = await request("/static/app.css");
    assert.equal(bare.status, 200);
    assert.equal(bare.headers.get("cache-control"), "no-cache");
    const etag = bare.headers.get("etag")!;
    await bare.body?.cancel();
    const notModified = await request("/static/app.css", { headers: { "if-none-match": etag } });
    assert.equal(notModified.status, 304);

    assert.equal((await request("/static/../deno.json")).status, 404);

    // Signed-in pages and fragments are never stored (issue 19, item 8); not-found pages neither.
    for (const path of ["/", "/cases", "/knowledge", "/admin/users", "/sessions/not-a-chat"]) {
      const response = await request(path);
      await response.body?.cancel();
      assert.equal(response.headers.get("cache-control"), "no-store", path);
    }
    assert.equal((await request("/static/nope.js")).status, 404);
  });
});

Deno.test(`errors [${DRIVER}]: unknown paths get a 404 page, or a fragment for htmx`, async () => {
  await withTestApp(async ({ request }) => {
    const page = await request("/no/such/page");
    assert.equal(page.status, 404);
    const html = await page.text();
    assert.match(html, /<!doctype html>/);
    assert.match(html, /There is nothing at \/no\/such\/page\./);
    const fragment = await request("/no/such/page", { headers: { "hx-request": "true" } });
    assert.equal(fragment.status, 404);
    const text = await fragment.text();
    assert.doesNotMatch(text, /<!doctype html>/);
    assert.match(text, /role="alert"/);
  });
});

Deno.test(`errors [${DRIVER}]: paths are escaped in error pages`, async () => {
  await withTestApp(async ({ request }) => {
    const response = await request("/%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    const html = await response.text();
    assert.doesNotMatch(html, /<script>alert/);
  });
});
