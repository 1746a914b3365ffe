import assert from "node:assert/strict";
import { ConfigError, ENV_SCHEMA, loadConfig, redactUrl } from "../config.ts";

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error.problems;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be rejected`);
}

Deno.test("config: defaults select PGlite in ./.data, port 8000 on localhost, no model", () => {
  const config = loadConfig({});
  assert.equal(config.port, 8000);
  assert.equal(config.host, "127.0.0.1");
  assert.equal(config.databaseUrl, null);
  assert.equal(config.dataDir, "./.data");
  assert.equal(config.databasePoolSize, 10);
  assert.equal(config.databasePreparedStatements, true);
  assert.equal(config.inference, null);
  assert.equal(config.modelsFile, null);
  assert.equal(config.embeddingUrl, null);
  assert.equal(config.shutdownTimeoutMs, 10_000);
  assert.equal(config.streamGraceMs, 15_000);
  assert.equal(config.systemPrompt, null);
  assert.ok(Object.isFrozen(config));
});

Deno.test("config: the server family and a local tokenizer can be named; the context size is asked of the server", () => {
  const inference = loadConfig({
    INFERENCE_URL: "http://x",
    INFERENCE_SERVER: "llama-server",
    INFERENCE_TOKENIZER: "llama2",
  }).inference!;
  assert.equal(inference.server, "llama.cpp");
  assert.equal(inference.tokenizer, "llama2");
  assert.equal(inference.contextSize, null, "unset: read from the server");
  assert.throws(
    () => loadConfig({ INFERENCE_URL: "http://x", INFERENCE_SERVER: "koboldcpp" }),
    /INFERENCE_SERVER must be one of llama\.cpp, vllm, sglang, tgi, ollama, openai/,
  );
});

Deno.test("config: blank values count as unset", () => {
  const config = loadConfig({ PORT: "  ", DATABASE_URL: "", INFERENCE_URL: " " });
  assert.equal(config.port, 8000);
  assert.equal(config.databaseUrl, null);
  assert.equal(config.inference, null);
});

Deno.test("config: a full valid environment", () => {
  const config = loadConfig({
    PORT: "9000",
    HOST: "0.0.0.0",
    DATABASE_URL: "postgres://rounds:secret@db.example.org:5432/rounds",
    DATABASE_POOL_SIZE: "20",
    DATABASE_PREPARED_STATEMENTS: "off",
    INFERENCE_URL: "https://abc.endpoints.huggingface.cloud/",
    HF_TOKEN: "hf_x",
    INFERENCE_TEMPLATE: "llama2-chat",
    INFERENCE_CONTEXT_SIZE: "8192",
    EMBEDDING_URL: "http://127.0.0.1:8081/embed",
    EMBEDDING_MODEL: "BAAI/bge-small-en-v1.5",
    SHUTDOWN_TIMEOUT_SECONDS: "30",
  });
  assert.equal(config.port, 9000);
  assert.equal(config.host, "0.0.0.0");
  assert.equal(config.databasePoolSize, 20);
  assert.equal(config.databasePreparedStatements, false);
  assert.deepEqual(config.inference, {
    url: "https://abc.endpoints.huggingface.cloud",
    model: null,
    template: "llama2-chat",
    api: "openai",
    server: null,
    contextSize: 8192,
    tokenizer: null,
    defaults: { maxNewTokens: 512, temperature: 0.7, topP: 0.95 },
  });
  assert.equal(config.hfToken, "hf_x");
  assert.equal(config.embeddingUrl, "http://127.0.0.1:8081/embed");
  assert.equal(config.embeddingModel, "BAAI/bge-small-en-v1.5");
  assert.equal(config.shutdownTimeoutMs, 30_000);
});

Deno.test("config: shutdown takes 10 s at most, 4 s on Deno Deploy (it kills an instance 5 s after SIGINT)", () => {
  assert.equal(loadConfig({}).shutdownTimeoutMs, 10_000);
  const deploy = { DENO_DEPLOYMENT_ID: "abc123", DATABASE_URL: "postgres://u:p@db.example/rounds" };
  assert.equal(loadConfig(deploy).shutdownTimeoutMs, 4_000);
  assert.equal(loadConfig({ ...deploy, SHUTDOWN_TIMEOUT_SECONDS: "2" }).shutdownTimeoutMs, 2_000);
});

Deno.test("config: the MedDialog template is the default for an endpoint; chat for Inference Providers", () => {
  assert.equal(
    loadConfig({ INFERENCE_URL: "http://127.0.0.1:8080" }).inference?.template,
    "llama2-meddialog",
  );
  const providers = loadConfig({ MODEL: "meta-llama/Llama-2-7b-chat-hf", HF_TOKEN: "hf_x" });
  assert.deepEqual(providers.inference, {
    url: null,
    model: "meta-llama/Llama-2-7b-chat-hf",
    template: "chat",
    api: "openai",
    server: null,
    contextSize: null,
    tokenizer: null,
    defaults: { maxNewTokens: 512, temperature: 0.7, topP: 0.95 },
  });
  const tuned = loadConfig({
    INFERENCE_URL: "http://x",
    INFERENCE_API: "tgi",
    INFERENCE_MAX_NEW_TOKENS: "256",
    INFERENCE_TEMPERATURE: "0.2",
    INFERENCE_TOP_P: ".9",
    SYSTEM_PROMPT: "Answer briefly.",
    STREAM_GRACE_SECONDS: "5",
  });
  assert.equal(tuned.inference?.api, "tgi");
  assert.deepEqual(tuned.inference?.defaults, { maxNewTokens: 256, temperature: 0.2, topP: 0.9 });
  assert.equal(tuned.systemPrompt, "Answer briefly.");
  assert.equal(tuned.streamGraceMs, 5000);
  assert.equal(
    loadConfig({ INFERENCE_TEMPLATE: "jinja:./tokenizer_config.json", INFERENCE_URL: "http://x" })
      .inference?.template,
    "jinja:./tokenizer_config.json",
  );
});

const BAD_VALUES: [Record<string, string>, string][] = [
  [{ PORT: "abc" }, 'PORT must be an integer between 1 and 65535, got "abc"'],
  [{ PORT: "0" }, 'PORT must be an integer between 1 and 65535, got "0"'],
  [{ PORT: "65536" }, 'PORT must be an integer between 1 and 65535, got "65536"'],
  [{ PORT: "80.5" }, 'PORT must be an integer between 1 and 65535, got "80.5"'],
  [{ PORT: "1e3" }, 'PORT must be an integer between 1 and 65535, got "1e3"'],
  [{ HOST: "local host" }, 'HOST must be a host name or IP address, got "local host"'],
  [
    { DATABASE_URL: "mysql://x@y/z" },
    'DATABASE_URL must be a postgres:// or postgresql:// URL, got "mysql://x@y/z"',
  ],
  [
    { DATABASE_URL: "http://user:hunter2@host/db" },
    'DATABASE_URL must be a postgres:// or postgresql:// URL, got "http://user:***@host/db"',
  ],
  [
    { DENO_DEPLOYMENT_ID: "abc123" },
    "DATABASE_URL must be set on Deno Deploy: the embedded PGlite needs a persistent disk, which Deploy " +
    "does not have. Use a managed Postgres with pgvector (Neon, Supabase)",
  ],
  [{ DATABASE_POOL_SIZE: "0" }, 'DATABASE_POOL_SIZE must be an integer between 1 and 1000, got "0"'],
  [{ DATABASE_PREPARED_STATEMENTS: "no" }, 'DATABASE_PREPARED_STATEMENTS must be one of on, off, got "no"'],
  [{ INFERENCE_URL: "not a url" }, 'INFERENCE_URL must be an http:// or https:// URL, got "not a url"'],
  [{ INFERENCE_URL: "ftp://host/x" }, 'INFERENCE_URL must be an http:// or https:// URL, got "ftp://host/x"'],
  [
    { INFERENCE_URL: "https://user:pw@host" },
    "INFERENCE_URL must not contain credentials; put the token in HF_TOKEN",
  ],
  [{ MODEL: "has spaces" }, 'MODEL must be a model id such as "org/name", got "has spaces"'],
  [
    { INFERENCE_URL: "http://x", INFERENCE_TEMPLATE: "alpaca" },
    "INFERENCE_TEMPLATE must be one of chat, llama2-chat, llama2-meddialog, mistral, chatdoctor, mashqa or " +
    'jinja:<path to tokenizer_config.json>, got "alpaca"',
  ],
  [
    { MODEL: "org/model", INFERENCE_TEMPLATE: "llama2-meddialog" },
    'INFERENCE_TEMPLATE "llama2-meddialog" needs INFERENCE_URL: Hugging Face Inference Providers (MODEL alone) ' +
    "only offer the chat API, so use INFERENCE_TEMPLATE=chat",
  ],
  [
    { INFERENCE_URL: "http://x", INFERENCE_CONTEXT_SIZE: "100" },
    'INFERENCE_CONTEXT_SIZE must be an integer between 256 and 1048576, got "100"',
  ],
  [
    { MODELS_FILE: "models.json", INFERENCE_URL: "http://x" },
    "MODELS_FILE cannot be combined with INFERENCE_URL or MODEL: configure the models in one place",
  ],
  [
    { EMBEDDING_URL: "localhost:8081" },
    'EMBEDDING_URL must be an http:// or https:// URL, got "localhost:8081"',
  ],
  [
    { SHUTDOWN_TIMEOUT_SECONDS: "-1" },
    'SHUTDOWN_TIMEOUT_SECONDS must be an integer between 0 and 3600, got "-1"',
  ],
];

for (const [env, message] of BAD_VALUES) {
  Deno.test(`config: rejects ${JSON.stringify(env).slice(0, 90)}`, () => {
    assert.deepEqual(problemsOf(env), [message]);
  });
}

Deno.test("config: every problem is reported at once, one line each", () => {
  const problems = problemsOf({ PORT: "abc", DATABASE_POOL_SIZE: "lots", EMBEDDING_URL: "nope" });
  assert.equal(problems.length, 3);
  try {
    loadConfig({ PORT: "abc", DATABASE_POOL_SIZE: "lots" });
  } catch (error) {
    assert.equal(
      (error as Error).message,
      'Invalid configuration:\n  - PORT must be an integer between 1 and 65535, got "abc"\n' +
        '  - DATABASE_POOL_SIZE must be an integer between 1 and 1000, got "lots"',
    );
  }
});

Deno.test("config: redactUrl hides passwords only", () => {
  assert.equal(redactUrl("postgres://rounds:s3cr3t@db:5432/x"), "postgres://rounds:***@db:5432/x");
  assert.equal(redactUrl("postgres://rounds@db/x"), "postgres://rounds@db/x");
});

Deno.test("config: security defaults, and their problems named", () => {
  const config = loadConfig({});
  assert.equal(config.security.phiRedaction, "inference");
  assert.equal(config.security.sessionIdleMs, 15 * 60_000);
  assert.equal(config.security.sessionAbsoluteMs, 12 * 3_600_000);
  assert.equal(config.oidc, null);
  const problems = problemsOf({
    PHI_REDACTION: "sometimes",
    SESSION_IDLE_MINUTES: "0",
    TRUST_PROXY: "maybe",
    OIDC_ISSUER: "http://sso.example.org",
    OIDC_CREATE_USERS_AS: "admin",
  });
  assert.ok(
    problems.some((p) => p.startsWith("PHI_REDACTION must be one of off, inference, storage")),
    problems.join("\n"),
  );
  assert.ok(problems.some((p) => p.startsWith("SESSION_IDLE_MINUTES must be an integer")));
  assert.ok(problems.some((p) => p.startsWith("TRUST_PROXY must be true, false, or how many proxies")));
  assert.ok(problems.some((p) => p.startsWith("OIDC_CLIENT_ID must be set with OIDC_ISSUER")));
  assert.ok(problems.some((p) => p.startsWith("OIDC_ISSUER must use https://")));
  assert.ok(problems.some((p) => p.startsWith("OIDC_CREATE_USERS_AS must be clinician or educator")));
  const sso = loadConfig({ OIDC_ISSUER: "https://tenant.example.auth0.com/", OIDC_CLIENT_ID: "rounds" });
  assert.equal(
    sso.oidc?.issuer,
    "https://tenant.example.auth0.com/",
    "the issuer is kept exactly, slash included",
  );
});

Deno.test("config: every variable the schema reads is documented in docs/configuration.md", async () => {
  const docs = await Deno.readTextFile(new URL("../docs/configuration.md", import.meta.url));
  const missing = Object.keys(ENV_SCHEMA.shape).filter((name) => !docs.includes(`\`${name}\``));
  assert.deepEqual(missing, [], "add a row for each to docs/configuration.md");
});

Deno.test("config: .env.example names every variable config.ts reads, and the values it sets are the defaults", async () => {
  const example = await Deno.readTextFile(new URL("../.env.example", import.meta.url));
  const named = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
  const read = Object.keys(ENV_SCHEMA.shape);
  assert.deepEqual(read.filter((name) => !named.has(name)), [], "variables .env.example does not mention");
  assert.deepEqual(
    [...named].filter((name) => !read.includes(name)),
    [],
    "variables config.ts does not read",
  );
  const set = Object.fromEntries(
    [...example.matchAll(/^([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]),
  );
  assert.deepEqual(loadConfig(set), loadConfig({}), "a value set in .env.example that is not the default");
});
