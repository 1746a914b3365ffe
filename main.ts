/**
 * Composition root: loadConfig → openDatabase → migrate → clients → createApp → Deno.serve,
 * and a graceful shutdown on SIGINT / SIGTERM.
 */
import { describeSystem } from "./app.ts";
import { composeRounds } from "./compose.ts";
import { loadVocabulary } from "./knowledge/vocabulary.ts";
import { warmRedactor } from "./safety/phi.ts";
import { watchEventLoop } from "./slices.ts";
import { keepPatternsWarm } from "./warm.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { DatabaseLockedError, loggableMessage, openDatabase } from "./db/client.ts";
import { migrate } from "./db/migrate.ts";
import { ensureVectorIndex, refreshSearchTerms, searchTermsMissing } from "./db/snippets.ts";
import { createEmbedder } from "./inference/embeddings.ts";
import { createConfiguredReranker } from "./inference/rerank.ts";
import { createInferenceProbe, HF_ROUTER_URL } from "./inference/health.ts";
import { EmbedderMismatchError, prepareVectorStore } from "./knowledge/embedder.ts";
import { EndpointError } from "./inference/endpoint.ts";
import { loadSampleCorpusIfEmpty } from "./knowledge/ingest.ts";
import { seedExampleCases } from "./cases/library.ts";
import { seedOnce } from "./db/cases.ts";
import { redactOldTitles } from "./chat/intake.ts";
import { describeServers, loadModels, ModelsError } from "./inference/models.ts";
import { hasUsers } from "./db/users.ts";
import { pruneRateLimits } from "./db/limits.ts";
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

  let models;
  try {
    models = await loadModels(config, { readTextFile: Deno.readTextFile, env: Deno.env.toObject() });
  } catch (error) {
    if (error instanceof ModelsError) {
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
    // On Postgres the vector index (when missing) is built below, in the background: a large knowledge base
    // takes minutes, and every cold instance would wait for it. PGlite has one process: it builds it now.
    migrations = await migrate(database, { vectorIndex: database.driver === "postgres" ? "leave" : "build" });
  } catch (error) {
    console.error(`Cannot apply migrations to ${database.description}: ${(error as Error).message}`);
    await database.close();
    return 1;
  }

  if (database.driver === "postgres") {
    const started = performance.now();
    ensureVectorIndex(database.db).then((built) => {
      if (built) {
        console.log(
          `knowledge: built the vector index in ${((performance.now() - started) / 1000).toFixed(1)} s ` +
            `(searches scanned every snippet until then)`,
        );
      }
    }, (error) => console.error("building the vector index failed:", loggableMessage(error)));
  }
  if (await searchTermsMissing(database.db)) {
    // A knowledge base from before full-text search ranked by rare terms: counted once, here.
    const started = performance.now();
    const terms = await refreshSearchTerms(database.db);
    console.log(
      `knowledge: counted ${terms} search terms in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  // The embedding server answers a probe (its dimension) before anything is stored with it; a refusal, or stored
  // vectors of another embedder or dimension, end the start with one line.
  let embedder;
  let reranker;
  try {
    embedder = await createEmbedder(config);
    const switched = await prepareVectorStore(database.db, embedder);
    if (switched) console.log(switched);
    reranker = await createConfiguredReranker(config);
  } catch (error) {
    if (!(error instanceof EmbedderMismatchError || error instanceof EndpointError)) throw error;
    console.error(error.message);
    await database.close();
    return 1;
  }
  const system = describeSystem(config, database, models, embedder);
  console.log(
    `database: ${system.database} (${migrations.total} migrations, ${migrations.applied} applied now)`,
  );
  console.log(
    `inference: ${
      system.inference ?? "not configured (chat answers are retrieval-only: the closest doctor replies)"
    }`,
  );
  // Each server is asked what it is (family, context size, models) once, now, so the first clinician does not
  // wait for it; one that is still loading is asked again on first use.
  const servers = await describeServers(models);
  for (const line of servers.lines) console.log(line);
  if (servers.problems.length > 0) {
    for (const problem of servers.problems) console.error(problem);
    await database.close();
    return 1;
  }
  console.log(`embeddings: ${system.embeddings}`);
  if (reranker) console.log(`reranker: ${reranker.description}, the best ${config.rerankTop} candidates`);
  console.log(
    `security: PHI redaction ${config.security.phiRedaction}, sessions idle ${
      config.security.sessionIdleMs / 60_000
    } min / max ${
      config.security.sessionAbsoluteMs / 3_600_000
    } h, ${config.security.messagesPerMinute} messages/min, ` +
      `${config.security.maxConcurrentStreams} concurrent replies, ${
        config.security.dailyTokenBudget || "unlimited"
      } tokens/day per user`,
  );
  if (config.oidc) {
    console.log(
      `single sign-on: ${config.oidc.issuer} ("Sign in with ${config.oidc.label}"; ${
        config.oidc.autoCreateRole
          ? `new verified emails become ${config.oidc.autoCreateRole}s`
          : "existing accounts only"
      })`,
    );
  }
  if (!(await hasUsers(database.db))) {
    console.log(
      `accounts: none yet. Open /setup in a browser to create the first admin, or run ` +
        `deno task user add <email> --role admin`,
    );
  }
  // The embedded default is useful on its own: its first start loads the sample corpus (a second or two).
  if (database.driver === "pglite") {
    const started = performance.now();
    const added = await loadSampleCorpusIfEmpty(database.db, embedder);
    if (added !== null) {
      console.log(
        `knowledge: loaded the sample corpus (${added} snippets, hypothetical, written for Rounds) in ` +
          `${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  }
  // Chats titled from an unredacted first question (before titles were redacted) get the redacted title, once
  // per database: titles made since are redacted when they are made.
  let retitled = 0;
  await seedOnce(database.db, "redacted-titles", async (tx) => {
    retitled = await redactOldTitles(tx);
  });
  if (retitled > 0) console.log(`chats: ${retitled} titles now without the identifiers their question held`);
  // Educators get the example cases on a database's first start (once: a library emptied by hand stays empty).
  const examples = await seedExampleCases(database.db, embedder);
  if (examples > 0) {
    console.log(`cases: added the ${examples} example cases (hypothetical, written for Rounds)`);
  }

  const inferenceTargets = models.list().map((m) => ({
    url: m.target.url ?? HF_ROUTER_URL,
    token: m.target.token,
  }));
  const vocabulary = await loadVocabulary(config.clinicalVocabulary);
  const { app, runner, lifecycle, documents } = composeRounds({
    config,
    database,
    models,
    embedder,
    vocabulary,
    reranker,
    assets: await loadAssets(),
    inferenceStatus: createInferenceProbe(inferenceTargets),
    logRequests: true,
  });
  // Replies a crashed process left half-written. PGlite has one process, so every active reply is abandoned;
  // on Postgres another instance may be writing, so only replies with no recent heartbeat are.
  const abandoned = await runner.sweep(database.driver === "pglite" ? 0 : undefined);
  if (abandoned > 0) {
    console.log(`marked ${abandoned} reply(ies) left unfinished by an earlier process as interrupted`);
  }
  // Uploads an earlier process (or a stopped instance) left queued or half-read go on from their last batch.
  const resumeDocuments = () =>
    documents.resume().catch((error) =>
      console.error("resuming document ingests failed:", loggableMessage(error))
    );
  resumeDocuments();
  const sweeper = setInterval(() => {
    runner.sweep().catch((error) =>
      console.error("sweeping abandoned replies failed:", loggableMessage(error))
    );
    resumeDocuments();
    pruneRateLimits(database.db).catch((error) =>
      console.error("pruning rate limits failed:", loggableMessage(error))
    );
  }, 30_000);

  // The redactor's patterns are compiled on first use (tens of milliseconds): before the first request, not in it.
  // And kept compiled while the server is quiet: V8 drops a pattern's code after two full collections without
  // it, which an idle process gets, and the next message would compile them again (warm.ts).
  if (config.security.phiRedaction !== "off") warmRedactor();
  const warmth = keepPatternsWarm({ redaction: config.security.phiRedaction !== "off", vocabulary });

  // Work that holds the event loop makes every other user wait: say so in the log, with how long.
  const watchdog = config.eventLoopWarnMs > 0 ? watchEventLoop(config.eventLoopWarnMs) : null;

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
  const deadline = performance.now() + config.shutdownTimeoutMs;
  console.log(
    `${signal}: shutting down within ${config.shutdownTimeoutMs / 1000} s; ${lifecycle.inFlight} ` +
      `in-flight generation(s) and ingest(s) may run for ${
        Math.max(0, config.shutdownTimeoutMs - SHUTDOWN_RESERVE_MS) / 1000
      } s`,
  );
  clearInterval(sweeper);
  warmth.stop();
  watchdog?.stop();
  // Stop accepting connections and let requests finish, while tracked work finishes or is told to stop. The
  // whole shutdown fits SHUTDOWN_TIMEOUT_SECONDS (Deno Deploy kills the process 5 s after SIGINT): replies get
  // all of it but the last SHUTDOWN_RESERVE_MS, in which stopped replies store what they had and the
  // connections and the database close.
  const serverClosed = server.shutdown();
  const drained = await lifecycle.drain(Math.max(0, config.shutdownTimeoutMs - SHUTDOWN_RESERVE_MS), {
    abortGraceMs: Math.min(ABORT_GRACE_MS, Math.max(250, deadline - performance.now() - 250)),
  });
  if (drained.aborted > 0) {
    console.log(`stopped ${drained.aborted} generation(s) at the deadline; their partial replies are saved`);
  }
  if (drained.abandoned > 0) console.error(`${drained.abandoned} generation(s) did not stop in time`);
  let closeTimer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    serverClosed,
    new Promise((resolve) =>
      closeTimer = setTimeout(resolve, Math.max(0, deadline - performance.now() - 200))
    ),
  ]);
  clearTimeout(closeTimer);
  await database.close();
  console.log("shutdown complete");
  return 0;
}

/** The end of a shutdown kept for stopped replies to store what they had, and for closing. */
const SHUTDOWN_RESERVE_MS = 1500;
/** Longest wait for stopped replies to store their state. */
const ABORT_GRACE_MS = 1000;

if (import.meta.main) Deno.exit(await main());
