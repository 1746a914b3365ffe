/**
 * Composition root: loadConfig → openDatabase → migrate → clients → createApp → Deno.serve,
 * and a graceful shutdown on SIGINT / SIGTERM.
 */
import { createApp, describeSystem } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { DatabaseLockedError, openDatabase } from "./db/client.ts";
import { migrate } from "./db/migrate.ts";
import { createInferenceProbe, HF_ROUTER_URL } from "./inference/health.ts";
import { createLifecycle } from "./lifecycle.ts";
import { loadAssets } from "./routes/static.ts";

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }

  let database;
  try {
    database = await openDatabase(config);
  } catch (error) {
    if (error instanceof DatabaseLockedError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }

  let migrations;
  try {
    migrations = await migrate(database);
  } catch (error) {
    console.error(`Cannot apply migrations to ${database.description}: ${(error as Error).message}`);
    await database.close();
    return 1;
  }

  const system = describeSystem(config, database);
  console.log(
    `database: ${system.database} (${migrations.total} migrations, ${migrations.applied} applied now)`,
  );
  console.log(`inference: ${system.inference ?? "not configured (chat answers will say so)"}`);
  console.log(`embeddings: ${system.embeddings}`);

  const lifecycle = createLifecycle();
  const inferenceTargets = config.inference
    ? [{ url: config.inference.url ?? HF_ROUTER_URL, token: config.hfToken }]
    : [];
  const app = createApp({
    config,
    database,
    lifecycle,
    assets: await loadAssets(),
    inferenceStatus: createInferenceProbe(inferenceTargets),
    logRequests: true,
  });

  const stopRequested = Promise.withResolvers<string>();
  let stopping = false;
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) {
    try {
      Deno.addSignalListener(signal, () => {
        if (stopping) {
          console.error(`${signal} again: exiting without waiting`);
          Deno.exit(130);
        }
        stopping = true;
        stopRequested.resolve(signal);
      });
    } catch {
      // Some hosts (Deno Deploy isolates) manage the process themselves and offer no signal listeners.
    }
  }

  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
  }, app.fetch);

  const signal = await stopRequested.promise;
  console.log(
    `${signal}: shutting down; waiting up to ${
      config.shutdownTimeoutMs / 1000
    } s for ${lifecycle.inFlight} ` +
      `in-flight generation(s)`,
  );
  // Stop accepting connections and let requests finish, while tracked work finishes or is told to stop.
  const serverClosed = server.shutdown();
  const drained = await lifecycle.drain(config.shutdownTimeoutMs);
  if (drained.aborted > 0) {
    console.log(`stopped ${drained.aborted} generation(s) at the deadline; their partial replies are saved`);
  }
  if (drained.abandoned > 0) console.error(`${drained.abandoned} generation(s) did not stop in time`);
  await Promise.race([serverClosed, new Promise((resolve) => setTimeout(resolve, 5000))]);
  await database.close();
  console.log("shutdown complete");
  return 0;
}

if (import.meta.main) Deno.exit(await main());
