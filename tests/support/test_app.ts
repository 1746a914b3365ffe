/**
 * Test harness: the real app over a fresh, migrated database. In-memory PGlite by default; a new database on
 * the Postgres server at TEST_DATABASE_URL when that is set. Every call gets its own database, so tests never
 * share state.
 */
import { loadVocabulary } from "../../knowledge/vocabulary.ts";
import type { PGlite } from "@electric-sql/pglite";
import type { Hono } from "hono";
import postgres from "postgres";
import { type Config, loadConfig } from "../../config.ts";
import { type Database, type Db, openPglite, openPostgres, wrapPglite } from "../../db/client.ts";
import type { UserRole } from "../../db/schema.ts";
import { createUser, findUserByEmail } from "../../db/users.ts";
import { createSignIn } from "../../db/sign_ins.ts";
import { CSRF_HEADER, SESSION_COOKIE, signInIdOf } from "../../routes/auth.ts";
import { hashPassword, type ScryptCost } from "../../safety/passwords.ts";
import { migrate } from "../../db/migrate.ts";
import type { InferenceStatus } from "../../inference/health.ts";
import { createRegistry, loadModels, type ModelRegistry } from "../../inference/models.ts";
import type { GenerationRunner, RunnerOptions } from "../../inference/runner.ts";
import { createLexicalEmbedder } from "../../knowledge/lexical_embedder.ts";
import type { Embedder } from "../../knowledge/embedder.ts";
import type { Lifecycle } from "../../lifecycle.ts";
import { composeRounds } from "../../compose.ts";
import type { DocumentQueue } from "../../knowledge/documents.ts";
import { type AssetStore, loadAssets } from "../../routes/static.ts";

/** The Postgres server tests run against, or undefined for PGlite. */
export const TEST_DATABASE_URL = Deno.env.get("TEST_DATABASE_URL") || undefined;

/** Which driver this run tests: printed in test names so a failure says where it failed. */
export const DRIVER = TEST_DATABASE_URL ? "postgres" : "pglite";

let pgliteTemplate: Promise<PGlite> | null = null;

let assets: Promise<AssetStore> | null = null;
let databaseCounter = 0;

/**
 * A fresh, migrated database for one test. Close it at the end of the test. `onDisk`: PGlite as a laptop runs it,
 * in a data directory on its own thread, rather than in memory on the test's thread (where each statement holds
 * the event loop the test's browser driver needs too); Postgres when TEST_DATABASE_URL is set, either way.
 */
export async function createTestDatabase(options: { onDisk?: boolean } = {}): Promise<Database> {
  if (!TEST_DATABASE_URL && options.onDisk) {
    const dir = await Deno.makeTempDir({ prefix: "rounds-test-pglite-" });
    const database = await openPglite({ dataDir: dir });
    await migrate(database);
    const close = database.close;
    database.close = async () => {
      await close();
      await Deno.remove(dir, { recursive: true });
    };
    return database;
  }
  if (!TEST_DATABASE_URL) {
    // Creating PGlite takes ~2 s; cloning a migrated template takes about half that.
    pgliteTemplate ??= openPglite().then(async (template) => {
      await migrate(template);
      return template.client as PGlite;
    });
    const clone = await (await pgliteTemplate).clone() as PGlite;
    return wrapPglite(clone, "PGlite in memory (test)");
  }
  const name = `rounds_test_${Deno.pid}_${++databaseCounter}_${crypto.randomUUID().slice(0, 8)}`;
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const database = openPostgres(url.toString(), { poolSize: 5 });
  await migrate(database);
  const close = database.close;
  database.close = async () => {
    await close();
    const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
    } finally {
      await admin.end();
    }
  };
  return database;
}

/** A database that is not (or no longer) reachable, for failure-path tests. */
export function unreachableDatabase(): Database {
  return openPostgres("postgres://rounds@127.0.0.1:9/nowhere", { poolSize: 1 });
}

/** The app under test and what it was built from. */
export interface TestApp {
  app: Hono;
  database: Database;
  lifecycle: Lifecycle;
  /** Uploaded documents being read (`await t.documents.idle()` waits for them). */
  documents: DocumentQueue;
  runner: GenerationRunner;
  models: ModelRegistry;
  config: Readonly<Config>;
  /** A request as the default user (an admin), signed in, with the anti-forgery header. */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** A request with no session cookie. */
  anonymous(path: string, init?: RequestInit): Promise<Response>;
  /** The default user. */
  user: TestUser;
  /** Adds another user, signed in. */
  addUser(role: UserRole, email?: string): Promise<TestUser>;
  close(): Promise<void>;
}

/** A signed-in test user and their requests. */
export interface TestUser {
  id: string;
  email: string;
  role: UserRole;
  password: string;
  /** The Cookie header value. */
  cookie: string;
  csrf: string;
  /** The sign-in's id (auth_sessions.id). */
  signInId: string;
  /** A request with this user's cookie and anti-forgery header. */
  request(path: string, init?: RequestInit): Promise<Response>;
}

/** Cheap scrypt for tests (the production cost is 2^15). */
export const TEST_PASSWORD_COST = { N: 2 ** 10, r: 8, p: 1 };

/** Password of every test user. */
export const TEST_PASSWORD = "correct horse battery staple";

/** Creates a user and signs them in directly in the database (no /login round trip). */
export async function createSignedInUser(
  app: Hono,
  db: Db,
  role: UserRole,
  email: string,
): Promise<TestUser> {
  // A second app over the same database (another instance) signs the same user in again.
  const user = await createUser(db, {
    email,
    role,
    name: null,
    passwordHash: await hashPassword(TEST_PASSWORD, TEST_PASSWORD_COST),
  }) ?? await findUserByEmail(db, email);
  if (!user) throw new Error(`Cannot create test user ${email}`);
  const token = crypto.randomUUID() + crypto.randomUUID();
  const signInId = await signInIdOf(token);
  const csrf = crypto.randomUUID();
  await createSignIn(db, {
    id: signInId,
    userId: user.id,
    csrfToken: csrf,
    absoluteMs: 12 * 3_600_000,
    address: null,
    userAgent: "test",
  });
  const cookie = `${SESSION_COOKIE}=${token}`;
  return {
    id: user.id,
    email,
    role,
    password: TEST_PASSWORD,
    cookie,
    csrf,
    signInId,
    request: async (path, init = {}) => {
      const headers = new Headers(init.headers);
      if (!headers.has("cookie")) headers.set("cookie", cookie);
      if (!headers.has(CSRF_HEADER)) headers.set(CSRF_HEADER, csrf);
      return await app.request(path, { ...init, headers });
    },
  };
}

/** Options for createTestApp. */
export interface TestAppOptions {
  /** Environment for loadConfig (INFERENCE_URL pointing at the stub, MODELS_FILE …). */
  env?: Record<string, string>;
  database?: Database;
  inferenceStatus?: () => Promise<InferenceStatus>;
  /** Runner timings; tests default to fast retries and a short grace period. */
  runner?: Partial<RunnerOptions>;
  /** Files loadModels may read (MODELS_FILE, tokenizer configs), by path. */
  files?: Record<string, string>;
  /** False: start with no accounts at all (first-run set-up); t.user and t.request then throw. */
  users?: false;
  /** Log a line per request, as main.ts does. */
  logRequests?: boolean;
  /** The fetch the model clients use (tests record what a real server was sent). */
  fetch?: typeof fetch;
  /** The scrypt cost sign-in uses (tests default to a cheap one). */
  passwordCost?: ScryptCost;
  /** The knowledge base's embedder (default: the built-in lexical one). */
  embedder?: Embedder;
}

/** Runner timings for tests: the same logic, shorter waits. */
export const FAST_RUNNER: Partial<RunnerOptions> = {
  retryBaseMs: 20,
  maxRetryWaitMs: 2000,
  coldStartMs: 3000,
  graceMs: 300,
  followPollMs: 50,
};

/** Builds the real app over a fresh database (or the one given). */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const config = loadConfig({ DATA_DIR: "/nonexistent-test-data-dir", ...options.env });
  const files = options.files ?? {};
  const models = config.inference || config.modelsFile
    ? await loadModels(config, {
      readTextFile: (path) => {
        const name = Object.keys(files).find((f) => path.endsWith(f));
        return name ? Promise.resolve(files[name]) : Promise.reject(new Error(`No such test file: ${path}`));
      },
      env: options.env ?? {},
      fetch: options.fetch,
    })
    : createRegistry([]);
  const database = options.database ?? await createTestDatabase();
  const { app, runner, lifecycle, documents } = composeRounds({
    config,
    database,
    models,
    embedder: options.embedder ?? createLexicalEmbedder(),
    vocabulary: await loadVocabulary(config.clinicalVocabulary),
    assets: await (assets ??= loadAssets()),
    inferenceStatus: options.inferenceStatus ?? (() => Promise.resolve("not configured")),
    runnerOptions: { ...FAST_RUNNER, ...options.runner },
    retry: { ...FAST_RUNNER, ...options.runner },
    passwordCost: options.passwordCost ?? TEST_PASSWORD_COST,
    logRequests: options.logRequests,
  });
  let users = 0;
  const addUser = (role: UserRole, email?: string) =>
    createSignedInUser(app, database.db, role, email ?? `user${++users}-${role}@example.test`);
  const user = options.users === false ? null : await addUser("admin", "admin@example.test");
  const noUser = (): never => {
    throw new Error("This test app has no users (users: false)");
  };
  return {
    app,
    database,
    lifecycle,
    documents,
    runner,
    models,
    config,
    get user() {
      return user ?? noUser();
    },
    addUser,
    request: (path, init) => user ? user.request(path, init) : noUser(),
    anonymous: async (path, init) => await app.request(path, init),
    close: async () => {
      // Let running generations store their end before the database goes away.
      await lifecycle.drain(0, { abortGraceMs: 5000 });
      await database.close();
    },
  };
}

/** Runs fn with a fresh app and always closes it. */
export async function withTestApp(
  fn: (t: TestApp) => Promise<void>,
  options: TestAppOptions = {},
): Promise<void> {
  const t = await createTestApp(options);
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

/** A free TCP port on 127.0.0.1 (for subprocesses that need one). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
