import assert from "node:assert/strict";
import { createInferenceProbe } from "../inference/health.ts";
import { createTestApp, DRIVER, unreachableDatabase, withTestApp } from "./support/test_app.ts";

Deno.test(`healthz [${DRIVER}]: 200 with the database up and no model configured`, async () => {
  await withTestApp(async ({ request }) => {
    const response = await request("/healthz");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("cache-control"), "no-store");
    assert.deepEqual(await response.json(), { status: "ok", database: "ok", inference: "not configured" });
  });
});

Deno.test(`healthz [${DRIVER}]: 503 once the database is closed`, async () => {
  const t = await createTestApp();
  await t.database.close();
  const response = await t.request("/healthz");
  assert.equal(response.status, 503);
  assert.deepEqual(await response.json(), {
    status: "unavailable",
    database: "unreachable",
    inference: "not configured",
  });
});

Deno.test("healthz: 503 when the Postgres server does not answer", async () => {
  const database = unreachableDatabase();
  await withTestApp(async ({ anonymous }) => {
    const response = await anonymous("/healthz");
    assert.equal(response.status, 503);
    assert.equal((await response.json()).database, "unreachable");
  }, { database, users: false });
});

Deno.test(`healthz [${DRIVER}]: 503 "shutting down" while draining, so load balancers move traffic`, async () => {
  await withTestApp(async ({ request, lifecycle }) => {
    await lifecycle.drain(0);
    const response = await request("/healthz");
    assert.equal(response.status, 503);
    assert.equal((await response.json()).status, "shutting down");
  });
});

Deno.test(`healthz [${DRIVER}]: an unreachable model endpoint is reported but not fatal`, async () => {
  await withTestApp(async ({ request }) => {
    const response = await request("/healthz");
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: "ok", database: "ok", inference: "unreachable" });
  }, { inferenceStatus: () => Promise.resolve("unreachable") });
});

/** A tiny HTTP server standing in for an inference endpoint's health routes. */
function fakeEndpoint(routes: Record<string, number>) {
  const seen: { path: string; auth: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    seen.push({ path, auth: request.headers.get("authorization") });
    return new Response("{}", { status: routes[path] ?? 404 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test("inference probe: /v1/models answers ok, with the token; servers without it are asked /health", async () => {
  const endpoint = fakeEndpoint({ "/v1/models": 200 });
  try {
    const probe = createInferenceProbe([{ url: endpoint.url, token: "hf_secret" }]);
    assert.equal(await probe(), "ok");
    assert.deepEqual(endpoint.seen, [{ path: "/v1/models", auth: "Bearer hf_secret" }]);
    const v1 = createInferenceProbe([{ url: `${endpoint.url}/v1`, token: null }]);
    assert.equal(await v1(), "ok");
  } finally {
    await endpoint.close();
  }
  const tgi = fakeEndpoint({ "/health": 200 });
  try {
    assert.equal(await createInferenceProbe([{ url: tgi.url, token: null }])(), "ok");
    assert.deepEqual(tgi.seen.map((s) => s.path), ["/v1/models", "/health"]);
  } finally {
    await tgi.close();
  }
});

Deno.test("inference probe: loading, a refused key, a failing server and no answer are told apart; results are cached", async () => {
  const cases: [Record<string, number>, string][] = [
    [{ "/v1/models": 503, "/health": 503 }, "loading"],
    // llama.cpp with --api-key: /health is public, /v1/models is not.
    [{ "/v1/models": 401, "/health": 200 }, "unauthorized"],
    [{ "/v1/models": 500 }, "failing"],
  ];
  for (const [routes, expected] of cases) {
    const endpoint = fakeEndpoint(routes);
    try {
      const probe = createInferenceProbe([{ url: endpoint.url, token: null }], { cacheMs: 60_000 });
      assert.equal(await probe(), expected, JSON.stringify(routes));
      assert.equal(await probe(), expected);
      assert.equal(
        endpoint.seen.length,
        1,
        "a second call within the cache window must not reach the endpoint",
      );
    } finally {
      await endpoint.close();
    }
  }
  const refused = createInferenceProbe([{ url: "http://127.0.0.1:9", token: null }]);
  assert.equal(await refused(), "unreachable");
  assert.equal(await createInferenceProbe([])(), "not configured");
});
