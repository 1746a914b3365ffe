import assert from "node:assert/strict";
import { DRIVER, withTestApp } from "./support/test_app.ts";
import { brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { chooseEncoding } from "../routes/static.ts";

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

Deno.test(`static [${DRIVER}]: scripts and styles go compressed to browsers that accept it`, async () => {
  await withTestApp(async ({ request }) => {
    const html = await (await request("/")).text();
    const urls = [...html.matchAll(/(?:src|href)="(\/static\/[^"?]+\?v=[0-9a-f]+)"/g)].map((m) => m[1]);
    assert.ok(urls.length >= 4, `the page's scripts and styles: ${urls.join(", ")}`);
    let plain = 0;
    let brotli = 0;
    for (const url of urls) {
      const identity = await request(url, { headers: { "accept-encoding": "identity" } });
      assert.equal(identity.headers.get("content-encoding"), null, url);
      assert.equal(identity.headers.get("vary"), "Accept-Encoding", url);
      const original = new Uint8Array(await identity.arrayBuffer());
      plain += original.length;

      // Chromium sends "gzip, deflate, br, zstd": Brotli is chosen.
      const br = await request(url, { headers: { "accept-encoding": "gzip, deflate, br, zstd" } });
      assert.equal(br.headers.get("content-encoding"), "br", url);
      assert.equal(br.headers.get("cache-control"), "public, max-age=31536000, immutable");
      const brBytes = new Uint8Array(await br.arrayBuffer());
      brotli += brBytes.length;
      assert.deepEqual(new Uint8Array(brotliDecompressSync(brBytes)), original, `${url}: the same file`);

      // Brotli refused with q=0: gzip.
      const gz = await request(url, { headers: { "accept-encoding": "br;q=0, gzip" } });
      assert.equal(gz.headers.get("content-encoding"), "gzip", url);
      assert.deepEqual(new Uint8Array(gunzipSync(new Uint8Array(await gz.arrayBuffer()))), original, url);

      // Each encoding has its own ETag, and revalidates against it.
      const tags = [identity, br, gz].map((r) => r.headers.get("etag"));
      assert.equal(new Set(tags).size, 3, `${url}: ${tags.join(" ")}`);
      const again = await request(url, {
        headers: { "accept-encoding": "br", "if-none-match": br.headers.get("etag")! },
      });
      assert.equal(again.status, 304);
      assert.equal(again.headers.get("content-encoding"), "br");
    }
    // htmx, its SSE extension, the app's script and styles: about 99 KB as files.
    assert.ok(brotli < plain * 0.35, `${brotli} bytes compressed of ${plain}`);
    // The first page over the wire, its HTML with them: at most 30 KB (issue 22). Deno.serve compresses the
    // HTML itself (gzip or Brotli, whichever the browser takes); gzip is the larger.
    const pageBytes = gzipSync(new TextEncoder().encode(html)).length;
    assert.ok(pageBytes + brotli <= 30 * 1024, `first page: ${pageBytes} + ${brotli} bytes`);
    // The styles go without comments, and the browser still gets every rule.
    const styles = await (await request(urls.find((u) => u.startsWith("/static/app.css"))!)).text();
    assert.doesNotMatch(styles, /\/\*/);
    const source = await Deno.readTextFile(new URL("../static/app.css", import.meta.url));
    const rules = (css: string) => css.replace(/\/\*[\s\S]*?\*\//g, "").match(/[^{}]+\{/g)!.length;
    assert.equal(rules(styles), rules(source));
    const favicon = await request("/static/favicon.svg", { headers: { "accept-encoding": "br" } });
    await favicon.body?.cancel();
    assert.equal(favicon.status, 200);
  });
});

Deno.test("static: the encoding follows Accept-Encoding and its q-values", () => {
  assert.equal(chooseEncoding(undefined), null);
  assert.equal(chooseEncoding(""), null);
  assert.equal(chooseEncoding("identity"), null);
  assert.equal(chooseEncoding("gzip, deflate, br, zstd"), "br");
  assert.equal(chooseEncoding("gzip"), "gzip");
  assert.equal(chooseEncoding("GZIP;q=0.5"), "gzip");
  assert.equal(chooseEncoding("br;q=0, gzip;q=0.8"), "gzip");
  assert.equal(chooseEncoding("br; q=0 , gzip ; q=0"), null);
  assert.equal(chooseEncoding("*"), "br");
  assert.equal(chooseEncoding("*;q=0, gzip"), "gzip");
  assert.equal(chooseEncoding("x-gzip"), "gzip");
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
