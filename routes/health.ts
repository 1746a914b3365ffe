/**
 * GET /healthz: for load balancers and uptime checks.
 */
import { Hono } from "hono";
import type { Database } from "../db/client.ts";
import type { InferenceStatus } from "../inference/health.ts";
import type { Lifecycle } from "../lifecycle.ts";

/** What the health route needs. */
export interface HealthDeps {
  database: Pick<Database, "ping">;
  lifecycle: Pick<Lifecycle, "draining">;
  inferenceStatus: () => Promise<InferenceStatus>;
}

/**
 * 200 while the database answers; 503 when it does not, or while the server is shutting down (so a load
 * balancer stops sending traffic). An unreachable model endpoint is reported but is not fatal: chat falls
 * back to retrieval-only answers.
 */
export function healthRoutes(deps: HealthDeps): Hono {
  const app = new Hono();
  app.get("/healthz", async (c) => {
    const [database, inference] = await Promise.all([
      deps.database.ping().then(() => "ok" as const, () => "unreachable" as const),
      deps.inferenceStatus().catch(() => "unreachable" as const),
    ]);
    const status = deps.lifecycle.draining ? "shutting down" : database === "ok" ? "ok" : "unavailable";
    c.header("cache-control", "no-store");
    return c.json({ status, database, inference }, status === "ok" ? 200 : 503);
  });
  return app;
}
