/**
 * OpenTelemetry from a real server process (OTEL_DENO=true, OTLP over HTTP/JSON to a collector stub here): a
 * chat message produces Rounds' own figures — preparation, time to first token, tokens per second, retrieval
 * time — and a retrieval span, and nothing exported carries the message's text.
 */
import assert from "node:assert/strict";
import { startStub } from "./support/endpoint_stub.ts";
import { signInOverHttp, startServer } from "./support/server_process.ts";
import { sseReader } from "./support/sse_client.ts";
import { freePort } from "./support/test_app.ts";

/** Names of the metrics and spans in OTLP/JSON payloads. */
function namesIn(payload: unknown, key: "metrics" | "spans"): string[] {
  const found: string[] = [];
  const walk = (value: unknown) => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (!value || typeof value !== "object") return;
    const record = value as Record<string, unknown>;
    if (Array.isArray(record[key])) {
      for (const item of record[key] as { name?: string }[]) if (item.name) found.push(item.name);
    }
    Object.values(record).forEach(walk);
  };
  walk(payload);
  return found;
}

Deno.test({
  name: "telemetry: a chat message exports Rounds' generation and retrieval figures, and never its text",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const received: { path: string; body: string }[] = [];
    const collectorPort = freePort();
    const collector = Deno.serve(
      { hostname: "127.0.0.1", port: collectorPort, onListen() {} },
      async (req) => {
        received.push({ path: new URL(req.url).pathname, body: await req.text() });
        return Response.json({});
      },
    );
    const dir = await Deno.makeTempDir({ prefix: "rounds-otel-" });
    const stub = startStub({
      defaultScript: { tokens: Array.from({ length: 30 }, (_, i) => ` t${i}`), delayMs: 5 },
    });
    const port = freePort();
    const server = startServer({
      DATA_DIR: dir,
      PORT: String(port),
      INFERENCE_URL: stub.url,
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
      OTEL_METRIC_EXPORT_INTERVAL: "300",
      OTEL_SERVICE_NAME: "rounds",
    });
    try {
      await server.waitFor(/^listening on/);
      const base = `http://127.0.0.1:${port}`;
      const http = await signInOverHttp(base);
      const created = await http.fetch(`/sessions`, { method: "POST", redirect: "manual" });
      await created.body?.cancel();
      const secret = "Persistent dry cough after a cold, zebra-quartz-7731";
      const response = await http.fetch(`${created.headers.get("location")}/messages`, {
        method: "POST",
        headers: { "hx-request": "true", "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ content: secret }),
      });
      const reader = sseReader(response);
      for (let e = await reader.next(); e; e = await reader.next()) if (e.event === "done") break;

      const wanted = [
        "rounds.generation.preparation",
        "rounds.generation.time_to_first_token",
        "rounds.generation.tokens_per_second",
        "rounds.retrieval.duration",
      ];
      const deadline = Date.now() + 15_000;
      const metrics = () =>
        new Set(
          received.filter((r) => r.path === "/v1/metrics").flatMap((r) =>
            namesIn(JSON.parse(r.body), "metrics")
          ),
        );
      while (Date.now() < deadline && !wanted.every((name) => metrics().has(name))) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      for (const name of wanted) {
        assert.ok(metrics().has(name), `${name} exported: ${[...metrics()].join(", ")}`);
      }
      server.kill("SIGTERM"); // flushes the spans
      await server.status;
      const spans = received.filter((r) => r.path === "/v1/traces").flatMap((r) =>
        namesIn(JSON.parse(r.body), "spans")
      );
      assert.ok(spans.includes("rounds.retrieval"), `spans: ${[...new Set(spans)].join(", ")}`);
      for (const r of received) {
        assert.ok(!r.body.includes("zebra-quartz"), `${r.path} carries the message's text`);
      }
    } finally {
      try {
        server.kill("SIGKILL");
      } catch { /* already gone */ }
      await server.status;
      await stub.close();
      await collector.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
