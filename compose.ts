/**
 * Wiring Rounds together from its parts: the knowledge settings (with identifiers replaced before a remote
 * embedder sees them), the generation engine fed by the chat's answer preparation, and the app. main.ts and
 * the tests both build Rounds here, so what the tests run is what operators run; main.ts keeps only process
 * concerns (configuration, start-up checks, signals, the server).
 */
import { createApp } from "./app.ts";
import { auditFailedReply, beginAnswer, chargeTokens, prepareAnswer } from "./chat/answer.ts";
import { practiceRoleplay } from "./cases/practice_session.ts";
import type { Config } from "./config.ts";
import type { Database } from "./db/client.ts";
import type { RetryLimits } from "./inference/completion.ts";
import type { InferenceStatus } from "./inference/health.ts";
import type { ModelRegistry } from "./inference/models.ts";
import { createRunner, type GenerationRunner, type RunnerOptions } from "./inference/runner.ts";
import { DEFAULT_SYSTEM_PROMPT } from "./inference/templates.ts";
import type { Embedder } from "./knowledge/embedder.ts";
import { createPubmedClient } from "./knowledge/pubmed.ts";
import { createDocumentQueue, type DocumentQueue } from "./knowledge/documents.ts";
import { takeTurn } from "./db/limits.ts";
import type { Vocabulary } from "./knowledge/vocabulary.ts";
import { defaultMinScore, type KnowledgeSettings, type Reranker } from "./knowledge/retrieve.ts";
import { createLifecycle, type Lifecycle } from "./lifecycle.ts";
import type { AssetStore } from "./routes/static.ts";
import type { StreamGuard } from "./routes/auth.ts";
import type { ScryptCost } from "./safety/passwords.ts";
import type { Hono } from "hono";

/** The parts Rounds is built from: what main.ts opens and checks at start, or what a test sets up. */
export interface RoundsParts {
  config: Readonly<Config>;
  database: Database;
  models: ModelRegistry;
  /** The embedder the configuration names (already checked against the stored vectors). */
  embedder: Embedder;
  /** Clinical vocabulary questions are expanded with before a search (knowledge/vocabulary.ts). */
  vocabulary?: Vocabulary | null;
  /** The reranker RERANK_URL names (already asked once), if any. */
  reranker?: Reranker | null;
  assets: AssetStore;
  inferenceStatus: () => Promise<InferenceStatus>;
  lifecycle?: Lifecycle;
  /** Engine timings (tests shorten them); the grace period comes from the configuration. */
  runnerOptions?: Partial<RunnerOptions>;
  /** How long case generation waits on a busy or waking model server. */
  retry?: Partial<RetryLimits>;
  passwordCost?: ScryptCost;
  streamGuard?: StreamGuard;
  logRequests?: boolean;
}

/** Rounds, wired. */
export interface Rounds {
  app: Hono;
  runner: GenerationRunner;
  knowledge: KnowledgeSettings;
  lifecycle: Lifecycle;
  /** Uploaded documents waiting to be read; main.ts resumes the ones a stopped instance left. */
  documents: DocumentQueue;
}

/** Builds Rounds from its parts. Starts nothing: no timers, no connections. */
export function composeRounds(parts: RoundsParts): Rounds {
  const { config, database, models, embedder } = parts;
  const redact = config.security.phiRedaction !== "off";
  // A remote embedder replaces identifiers inside itself (safety/gate.ts); the built-in lexical embedder runs
  // here, so nothing leaves the server.
  const knowledge: KnowledgeSettings = {
    embedder,
    vocabulary: parts.vocabulary ?? null,
    reranker: parts.reranker ?? null,
    rerankTop: config.rerankTop,
    k: config.retrievalK,
    minScore: config.retrievalMinScore ?? defaultMinScore(embedder.id),
    // NCBI's limit is per caller: every instance takes its turns from the same counter in the database.
    pubmed: config.pubmed.mode === "off" ? null : createPubmedClient(config.pubmed, {
      throttle: (perSecond, signal) => takeTurn(parts.database.db, "ncbi", perSecond, signal),
    }),
  };
  const lifecycle = parts.lifecycle ?? createLifecycle();
  const db = database.db;
  const answers = {
    db,
    models,
    systemPrompt: config.systemPrompt ?? DEFAULT_SYSTEM_PROMPT,
    knowledge,
    roleplay: practiceRoleplay(db),
    redactPhi: redact,
  };
  const runner = createRunner({
    db,
    lifecycle,
    models,
    prepare: (job) => prepareAnswer(answers, job),
    onFinished: async (job, outputTokens, message) => {
      await chargeTokens(db, job, outputTokens);
      await auditFailedReply(db, job, message);
    },
    options: { graceMs: config.streamGraceMs, ...parts.runnerOptions },
  });
  const documents = createDocumentQueue(db, knowledge.embedder, (work) => lifecycle.run(work));
  const app = createApp({
    documents,
    config,
    database,
    lifecycle,
    assets: parts.assets,
    inferenceStatus: parts.inferenceStatus,
    models,
    runner,
    knowledge,
    logRequests: parts.logRequests,
    streamGuard: parts.streamGuard,
    passwordCost: parts.passwordCost,
    retry: parts.retry,
    beginAnswer: (chat, message, earlier) => beginAnswer(answers, chat, message, earlier),
  });
  return { app, runner, knowledge, lifecycle, documents };
}
