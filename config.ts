/**
 * Configuration: every environment variable Rounds reads, validated once at start.
 *
 * Only main.ts and tasks/ read Deno.env; everything else receives a Config.
 */
import { z } from "zod";
import { NCBI_EUTILS, PUBMED_MODES, type PubmedSettings } from "./knowledge/pubmed.ts";

/** The prompt templates Rounds can render itself; `chat` means the endpoint's chat API renders it. */
export const TEMPLATE_NAMES = [
  "chat",
  "llama2-chat",
  "llama2-meddialog",
  "mistral",
  "chatdoctor",
  "mashqa",
] as const;

/** A template name: one of TEMPLATE_NAMES, or `jinja:<path to tokenizer_config.json>`. */
export type TemplateName = typeof TEMPLATE_NAMES[number] | `jinja:${string}`;

/** How raw (non-chat) prompts reach the server: OpenAI-style `/v1/completions`, or TGI's `/generate_stream`. */
export const INFERENCE_APIS = ["openai", "tgi"] as const;
/** One of INFERENCE_APIS. */
export type InferenceApi = typeof INFERENCE_APIS[number];

/** The model server families Rounds speaks to (see inference/server.ts); INFERENCE_SERVER names one. */
export const SERVER_FAMILY_NAMES = ["llama.cpp", "vllm", "sglang", "tgi", "ollama", "openai"] as const;
/** One of SERVER_FAMILY_NAMES. */
export type ServerFamilyName = typeof SERVER_FAMILY_NAMES[number];

/** Context size assumed when neither the configuration nor the server says. */
export const DEFAULT_CONTEXT_SIZE = 4096;

/** The embedding APIs EMBEDDING_API may name (their wire formats are in inference/embeddings.ts). */
export const EMBEDDING_API_NAMES = ["openai", "ollama", "tei", "hf"] as const;
/** One of EMBEDDING_API_NAMES. */
export type EmbeddingApiName = typeof EMBEDDING_API_NAMES[number];
/** The rerank formats RERANK_API may name (inference/rerank.ts). */
export const RERANK_API_NAMES = ["tei", "cohere"] as const;
/** One of RERANK_API_NAMES. */
export type RerankApiName = typeof RERANK_API_NAMES[number];

/** Sampling settings a model starts with; sessions may override them within the model's limits. */
export interface GenerationDefaults {
  temperature: number;
  topP: number;
  maxNewTokens: number;
}

/** The single model configured from environment variables (MODELS_FILE configures several). */
export interface InferenceEnv {
  /** Base URL of a TGI / Inference Endpoint / vLLM / llama.cpp / Ollama server; absent with MODEL alone. */
  url: string | null;
  /** Model id for Hugging Face Inference Providers, or the model name an OpenAI-compatible server expects. */
  model: string | null;
  template: TemplateName;
  api: InferenceApi;
  /** The server family (INFERENCE_SERVER); null to learn it from the server's own routes. */
  server: ServerFamilyName | null;
  /** INFERENCE_CONTEXT_SIZE; null to read it from the server (DEFAULT_CONTEXT_SIZE when it does not say). */
  contextSize: number | null;
  /** INFERENCE_TOKENIZER: "llama2" or a tokenizer.json path, counted locally; null uses the server's /tokenize. */
  tokenizer: string | null;
  defaults: GenerationDefaults;
}

/** Where identifiers are replaced with placeholders: nowhere, before text leaves for a model, or also before storing. */
export const PHI_REDACTION_MODES = ["off", "inference", "storage"] as const;
/** One of PHI_REDACTION_MODES. */
export type PhiRedactionMode = typeof PHI_REDACTION_MODES[number];

/** Sign-in sessions and per-user limits. */
export interface SecurityConfig {
  /** A session ends after this long without a request. */
  sessionIdleMs: number;
  /** A session ends this long after sign-in, whatever the activity. */
  sessionAbsoluteMs: number;
  /** Messages (and regenerations) a user may send per minute. */
  messagesPerMinute: number;
  /** Output tokens a user may be given per UTC day; 0 means no limit. */
  dailyTokenBudget: number;
  /** Replies a user may have being written at once. */
  maxConcurrentStreams: number;
  /**
   * Proxies in front of Rounds whose X-Forwarded-For entries are trusted (0: none, the socket's address). The
   * client address is the entry the outermost of them appended: the right-most untrusted hop.
   */
  trustProxy: number;
  phiRedaction: PhiRedactionMode;
}

/** Single sign-on through an OpenID Connect provider (Entra ID, Google Workspace, Okta, Keycloak…). */
export interface OidcConfig {
  /** The issuer URL; its /.well-known/openid-configuration is read on first use. */
  issuer: string;
  clientId: string;
  /** Null for a public client (PKCE only). */
  clientSecret: string | null;
  /** Where the provider sends the browser back; null derives it from the request (`<origin>/login/sso/callback`). */
  redirectUri: string | null;
  /** The button's words: "Sign in with <label>". */
  label: string;
  /** Accounts for unknown (verified) emails are created with this role; null refuses them. */
  autoCreateRole: "clinician" | "educator" | null;
}

/** Validated, frozen application configuration. */
export interface Config {
  port: number;
  host: string;
  /** postgres:// URL of a real Postgres with pgvector; null selects the embedded PGlite. */
  databaseUrl: string | null;
  databasePoolSize: number;
  /**
   * Named prepared statements on Postgres (one round trip a statement instead of two). Off for a transaction
   * pooler that cannot keep them (Supavisor's transaction mode, PgBouncer before 1.21 in transaction mode).
   */
  databasePreparedStatements: boolean;
  /** Directory for PGlite's data (and other local state) when no DATABASE_URL is set. */
  dataDir: string;
  hfToken: string | null;
  /** Present when INFERENCE_URL or MODEL is set. */
  inference: InferenceEnv | null;
  /** JSON file listing several models (mutually exclusive with INFERENCE_URL / MODEL). */
  modelsFile: string | null;
  /** TEI or Hugging Face feature-extraction endpoint; null selects the built-in lexical embedder. */
  embeddingUrl: string | null;
  embeddingModel: string | null;
  /** How to call EMBEDDING_URL (EMBEDDING_API); null learns it from the URL's path. */
  embeddingApi: EmbeddingApiName | null;
  /** EMBEDDING_API_KEY: the embedding server's key, when it is not HF_TOKEN. */
  embeddingApiKey: string | null;
  /** RERANK_URL: a reranker (TEI, llama.cpp --reranking, vLLM, Cohere/Jina-style); null: none. */
  rerankUrl: string | null;
  rerankModel: string | null;
  /** How to call RERANK_URL (RERANK_API); null learns it from the URL's path. */
  rerankApi: RerankApiName | null;
  rerankApiKey: string | null;
  /** RERANK_TOP: how many of retrieval's best candidates the reranker reorders. */
  rerankTop: number;
  /** Snippets quoted per answer; 0 turns grounding off. */
  retrievalK: number;
  /** Live PubMed through NCBI's E-utilities (knowledge/pubmed.ts); mode "off" asks nothing. */
  pubmed: PubmedSettings;
  /** Cosine similarity a snippet needs to count as evidence; null uses the embedder's calibrated default. */
  retrievalMinScore: number | null;
  /** How long a shutdown takes at most: running replies get all of it but the last 1.5 s (main.ts). */
  shutdownTimeoutMs: number;
  /** Replaces the built-in clinical-assistant system prompt when set. */
  systemPrompt: string | null;
  /** CLINICAL_VOCABULARY: a file of term groups added to the shipped clinical vocabulary; null for none. */
  clinicalVocabulary: string | null;
  /** How long a generation keeps running after its last viewer disconnects, waiting for one to reattach. */
  streamGraceMs: number;
  /** Log a warning when the event loop was held this long (other requests waited); 0 turns the watch off. */
  eventLoopWarnMs: number;
  /** LOG_FORMAT: request and error lines as plain text, or one JSON object a line (with the request id). */
  logFormat: "text" | "json";
  /** UPLOAD_MAX_MB: the largest file an upload on /knowledge/documents takes, in bytes. */
  uploadMaxBytes: number;
  /** UPLOADERS: who may upload, re-ingest and delete documents: administrators, or educators too. */
  uploaders: "admins" | "educators";
  security: Readonly<SecurityConfig>;
  /** Present when OIDC_ISSUER is set. */
  oidc: Readonly<OidcConfig> | null;
}

/** All the problems found in the environment, one message each. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

const got = (value: unknown) => JSON.stringify(value);
/** Blank counts as unset; values are trimmed. */
const blank = (value: unknown) => typeof value === "string" ? value.trim() || undefined : value;

/** An optional string variable; unset and blank read as null. */
function text(check?: { test: (value: string) => boolean; message: (value: string) => string }) {
  const value = check
    ? z.string().refine(check.test, { error: (i) => check.message(i.input as string) })
    : z.string();
  return z.preprocess(blank, value.optional()).transform((v) => v ?? null);
}

/** A whole number in [min, max], with its default. */
function integer<F extends number | null>(fallback: F, min: number, max: number) {
  return z.preprocess(
    blank,
    z.string().refine((raw) => {
      const value = Number(raw);
      return /^[+-]?\d+$/.test(raw) && Number.isSafeInteger(value) && value >= min && value <= max;
    }, { error: (i) => `must be an integer between ${min} and ${max}, got ${got(i.input)}` }).transform(
      Number,
    )
      .optional(),
  ).transform((v) => v ?? fallback);
}

/** A decimal number in [min, max], with its default. */
function decimal<F extends number | null>(fallback: F, min: number, max: number) {
  return z.preprocess(
    blank,
    z.string().refine(
      (raw) => /^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw) && Number(raw) >= min && Number(raw) <= max,
      {
        error: (i) => `must be a number between ${min} and ${max}, got ${got(i.input)}`,
      },
    ).transform(Number).optional(),
  ).transform((v) => v ?? fallback);
}

/** One of a list of words, with its default (null: unset allowed). */
function oneOf<T extends string, F extends T | null>(
  values: readonly T[],
  fallback: F,
  described = `one of ${values.join(", ")}`,
) {
  return z.preprocess(
    blank,
    z.string().refine((raw) => values.includes(raw as T), {
      error: (i) => `must be ${described}, got ${got(i.input)}`,
    }).optional(),
  ).transform((v): T | F => (v as T | undefined) ?? fallback);
}

/** An http(s) URL without credentials, trailing slashes removed. */
function httpUrl() {
  return z.preprocess(
    blank,
    z.string().check((ctx) => {
      let url: URL | null = null;
      try {
        url = new URL(ctx.value);
      } catch { /* reported below */ }
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: `must be an http:// or https:// URL, got ${got(ctx.value)}`,
        });
      } else if (url.username || url.password) {
        ctx.issues.push({
          code: "custom",
          input: ctx.value,
          message: "must not contain credentials; put the token in HF_TOKEN",
        });
      }
    }).transform((raw) => raw.replace(/\/+$/, "")).optional(),
  ).transform((v) => v ?? null);
}

/**
 * Every environment variable Rounds reads, each with its own check and default (docs/configuration.md lists
 * them; tests/config_test.ts fails when one is undocumented). Rules that span variables follow in loadConfig.
 */
export const ENV_SCHEMA = z.object({
  PORT: integer(8000, 1, 65535),
  HOST: text({
    test: (v) => /^[A-Za-z0-9.:\-\[\]]+$/.test(v),
    message: (v) => `must be a host name or IP address, got ${got(v)}`,
  }).transform((v) => v ?? "127.0.0.1"),
  DATABASE_URL: text({
    test: (v) => /^postgres(ql)?:\/\/[^\s]+$/.test(v),
    message: (v) => `must be a postgres:// or postgresql:// URL, got ${got(redactUrl(v))}`,
  }),
  DATABASE_POOL_SIZE: integer(10, 1, 1000),
  DATABASE_PREPARED_STATEMENTS: oneOf(["on", "off"], "on"),
  DATA_DIR: text().transform((v) => v ?? "./.data"),
  DENO_DEPLOYMENT_ID: text(),
  HF_TOKEN: text(),
  INFERENCE_URL: httpUrl(),
  MODEL: text({
    test: (v) => /^[\w.\-\/:@]+$/.test(v),
    message: (v) => `must be a model id such as "org/name", got ${got(v)}`,
  }),
  MODELS_FILE: text(),
  CLINICAL_VOCABULARY: text(),
  INFERENCE_TEMPLATE: text({
    test: (v) => parseTemplateName(v) !== null,
    message: (v) =>
      `must be one of ${TEMPLATE_NAMES.join(", ")} or jinja:<path to tokenizer_config.json>, got ${got(v)}`,
  }),
  INFERENCE_API: oneOf(INFERENCE_APIS, "openai"),
  INFERENCE_SERVER: text({
    test: (v) => parseServerFamilyName(v) !== null,
    message: (v) =>
      `must be one of ${SERVER_FAMILY_NAMES.join(", ")} (or unset, to ask the server), got ${got(v)}`,
  }),
  INFERENCE_CONTEXT_SIZE: integer(null, 256, 1_048_576),
  INFERENCE_TOKENIZER: text(),
  INFERENCE_MAX_NEW_TOKENS: integer(512, 1, 32_768),
  INFERENCE_TEMPERATURE: decimal(0.7, 0, 2),
  INFERENCE_TOP_P: decimal(0.95, 0.01, 1),
  EMBEDDING_URL: httpUrl(),
  EMBEDDING_MODEL: text(),
  EMBEDDING_API: z.preprocess(
    (v) => typeof blank(v) === "string" ? (blank(v) as string).toLowerCase() : undefined,
    z.string().refine((v) => EMBEDDING_API_NAMES.includes(v as EmbeddingApiName), {
      error: (i) =>
        `must be one of ${EMBEDDING_API_NAMES.join(", ")} (or unset, to follow the path of EMBEDDING_URL), ` +
        `got ${got(i.input)}`,
    }).optional(),
  ).transform((v) => (v as EmbeddingApiName | undefined) ?? null),
  EMBEDDING_API_KEY: text(),
  RERANK_URL: httpUrl(),
  RERANK_MODEL: text(),
  RERANK_API: z.preprocess(
    (v) => typeof blank(v) === "string" ? (blank(v) as string).toLowerCase() : undefined,
    z.string().refine((v) => RERANK_API_NAMES.includes(v as RerankApiName), {
      error: (i) =>
        `must be one of ${RERANK_API_NAMES.join(", ")} (or unset, to follow the path of RERANK_URL), ` +
        `got ${got(i.input)}`,
    }).optional(),
  ).transform((v) => (v as RerankApiName | undefined) ?? null),
  RERANK_API_KEY: text(),
  RERANK_TOP: integer(20, 2, 100),
  RETRIEVAL_K: integer(4, 0, 20),
  PUBMED: oneOf(PUBMED_MODES, "off"),
  PUBMED_URL: httpUrl(),
  PUBMED_RESULTS: integer(3, 1, 10),
  PUBMED_TIMEOUT_MS: integer(6000, 500, 30000),
  NCBI_API_KEY: text(),
  NCBI_TOOL: text(),
  NCBI_EMAIL: text({
    test: (v) => /^[^\s@]+@[^\s@]+$/.test(v),
    message: (v) => `must be an email address, got ${got(v)}`,
  }),
  RETRIEVAL_MIN_SCORE: decimal(null, 0, 1),
  SHUTDOWN_TIMEOUT_SECONDS: integer(null, 0, 3600),
  STREAM_GRACE_SECONDS: integer(15, 0, 3600),
  EVENT_LOOP_WARN_MS: integer(200, 0, 60_000),
  LOG_FORMAT: oneOf(["text", "json"], "text"),
  UPLOAD_MAX_MB: integer(50, 1, 1024),
  UPLOADERS: oneOf(["admins", "educators"], "admins"),
  SYSTEM_PROMPT: text({
    test: (v) => v.length <= 4000,
    message: (v) => `must be at most 4000 characters, got ${v.length}`,
  }),
  PHI_REDACTION: oneOf(PHI_REDACTION_MODES, "inference"),
  TRUST_PROXY: oneOf(
    ["true", "false", "0", "1", "2", "3", "4", "5"],
    "false",
    "true, false, or how many proxies are in front of Rounds (0 to 5)",
  ),
  SESSION_IDLE_MINUTES: integer(15, 1, 24 * 60),
  SESSION_MAX_HOURS: integer(12, 1, 24 * 30),
  RATE_LIMIT_MESSAGES_PER_MINUTE: integer(20, 1, 10_000),
  DAILY_TOKEN_BUDGET: integer(200_000, 0, 1_000_000_000),
  MAX_CONCURRENT_STREAMS: integer(2, 1, 100_000),
  OIDC_ISSUER: httpUrl(),
  OIDC_CLIENT_ID: text(),
  OIDC_CLIENT_SECRET: text(),
  OIDC_REDIRECT_URI: httpUrl(),
  OIDC_LABEL: text().transform((v) => v ?? "single sign-on"),
  OIDC_CREATE_USERS_AS: oneOf(
    ["clinician", "educator"],
    null,
    "clinician or educator (admins are made by hand)",
  ),
});

/** The environment as ENV_SCHEMA reads it. */
export type RoundsEnv = z.infer<typeof ENV_SCHEMA>;

/**
 * Reads each variable through its schema: every problem is reported (a bad variable falls back to its default so
 * the rules between variables can still be checked), named `NAME what is wrong`.
 */
function readEnv(env: Env, problems: string[]): RoundsEnv {
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(ENV_SCHEMA.shape)) {
    const parsed = schema.safeParse(env[name], { reportInput: true });
    if (parsed.success) values[name] = parsed.data;
    else {
      problems.push(...parsed.error.issues.map((issue) => `${name} ${issue.message}`));
      values[name] = schema.parse(undefined);
    }
  }
  return values as RoundsEnv;
}

/** Reads and validates the configuration from an environment map; throws ConfigError listing every problem. */
export function loadConfig(env: Env): Readonly<Config> {
  const problems: string[] = [];
  const e = readEnv(env, problems);

  if (e.DATABASE_URL === null && e.DENO_DEPLOYMENT_ID !== null) {
    problems.push(
      "DATABASE_URL must be set on Deno Deploy: the embedded PGlite needs a persistent disk, which Deploy " +
        "does not have. Use a managed Postgres with pgvector (Neon, Supabase)",
    );
  }
  const inferenceUrl = e.INFERENCE_URL;
  const model = e.MODEL;
  if (e.MODELS_FILE !== null && (blank(env.INFERENCE_URL) !== undefined || blank(env.MODEL) !== undefined)) {
    problems.push(
      "MODELS_FILE cannot be combined with INFERENCE_URL or MODEL: configure the models in one place",
    );
  }
  let template: TemplateName = inferenceUrl === null && model !== null ? "chat" : "llama2-meddialog";
  const templateChosen = e.INFERENCE_TEMPLATE === null ? null : parseTemplateName(e.INFERENCE_TEMPLATE);
  if (templateChosen !== null) {
    if (inferenceUrl === null && templateChosen !== "chat" && model !== null) {
      problems.push(
        `INFERENCE_TEMPLATE ${got(templateChosen)} needs INFERENCE_URL: Hugging Face Inference Providers ` +
          `(MODEL alone) only offer the chat API, so use INFERENCE_TEMPLATE=chat`,
      );
    } else {
      template = templateChosen;
    }
  }
  const contextSize = e.INFERENCE_CONTEXT_SIZE;
  const defaults: GenerationDefaults = {
    maxNewTokens: e.INFERENCE_MAX_NEW_TOKENS,
    temperature: e.INFERENCE_TEMPERATURE,
    topP: e.INFERENCE_TOP_P,
  };
  if (contextSize !== null && defaults.maxNewTokens >= contextSize) {
    problems.push(
      `INFERENCE_MAX_NEW_TOKENS (${defaults.maxNewTokens}) must be smaller than INFERENCE_CONTEXT_SIZE ` +
        `(${contextSize}): the prompt needs room too`,
    );
  }
  if (e.EMBEDDING_API !== null && e.EMBEDDING_API !== "hf" && e.EMBEDDING_URL === null) {
    problems.push(`EMBEDDING_URL must be set with EMBEDDING_API=${e.EMBEDDING_API} (the server's address)`);
  }
  if (e.RERANK_URL === null && (e.RERANK_API !== null || e.RERANK_MODEL !== null)) {
    problems.push("RERANK_URL must be set with RERANK_API or RERANK_MODEL (the reranker's address)");
  }
  const security: SecurityConfig = {
    sessionIdleMs: e.SESSION_IDLE_MINUTES * 60_000,
    sessionAbsoluteMs: e.SESSION_MAX_HOURS * 3_600_000,
    messagesPerMinute: e.RATE_LIMIT_MESSAGES_PER_MINUTE,
    dailyTokenBudget: e.DAILY_TOKEN_BUDGET,
    maxConcurrentStreams: e.MAX_CONCURRENT_STREAMS,
    trustProxy: e.TRUST_PROXY === "true" ? 1 : e.TRUST_PROXY === "false" ? 0 : Number(e.TRUST_PROXY),
    phiRedaction: e.PHI_REDACTION,
  };

  const oidcIssuer = e.OIDC_ISSUER;
  if (oidcIssuer !== null && e.OIDC_CLIENT_ID === null) {
    problems.push("OIDC_CLIENT_ID must be set with OIDC_ISSUER (the client id registered with the provider)");
  }
  if (oidcIssuer === null && (e.OIDC_CLIENT_ID !== null || e.OIDC_CLIENT_SECRET !== null)) {
    problems.push("OIDC_ISSUER must be set to use OIDC_CLIENT_ID / OIDC_CLIENT_SECRET");
  }
  if (
    oidcIssuer !== null && oidcIssuer.startsWith("http://") &&
    !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\])[:/]?/.test(oidcIssuer)
  ) {
    problems.push(
      `OIDC_ISSUER must use https:// (plain http only for a provider on localhost), got ${oidcIssuer}`,
    );
  }
  const oidc: OidcConfig | null = oidcIssuer !== null && e.OIDC_CLIENT_ID !== null
    ? {
      // As given: the provider's issuer identifier must match exactly, trailing slash included (Auth0 has one).
      issuer: env.OIDC_ISSUER!.trim(),
      clientId: e.OIDC_CLIENT_ID,
      clientSecret: e.OIDC_CLIENT_SECRET,
      redirectUri: e.OIDC_REDIRECT_URI,
      label: e.OIDC_LABEL,
      autoCreateRole: e.OIDC_CREATE_USERS_AS,
    }
    : null;

  if (problems.length > 0) throw new ConfigError(problems);

  const inference: InferenceEnv | null = inferenceUrl !== null || model !== null
    ? {
      url: inferenceUrl,
      model,
      template,
      api: e.INFERENCE_API,
      server: e.INFERENCE_SERVER === null ? null : parseServerFamilyName(e.INFERENCE_SERVER),
      contextSize,
      tokenizer: e.INFERENCE_TOKENIZER,
      defaults: Object.freeze(defaults),
    }
    : null;
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    databasePreparedStatements: e.DATABASE_PREPARED_STATEMENTS === "on",
    dataDir: e.DATA_DIR,
    hfToken: e.HF_TOKEN,
    inference: inference && Object.freeze(inference),
    modelsFile: e.MODELS_FILE,
    embeddingUrl: e.EMBEDDING_URL,
    embeddingModel: e.EMBEDDING_MODEL,
    embeddingApi: e.EMBEDDING_API,
    embeddingApiKey: e.EMBEDDING_API_KEY,
    rerankUrl: e.RERANK_URL,
    rerankModel: e.RERANK_MODEL,
    rerankApi: e.RERANK_API,
    rerankApiKey: e.RERANK_API_KEY,
    rerankTop: e.RERANK_TOP,
    pubmed: {
      mode: e.PUBMED,
      baseUrl: e.PUBMED_URL ? `${e.PUBMED_URL}/` : NCBI_EUTILS,
      apiKey: e.NCBI_API_KEY,
      tool: e.NCBI_TOOL ?? "rounds",
      email: e.NCBI_EMAIL,
      results: e.PUBMED_RESULTS,
      timeoutMs: e.PUBMED_TIMEOUT_MS,
    },
    retrievalK: e.RETRIEVAL_K,
    retrievalMinScore: e.RETRIEVAL_MIN_SCORE,
    // Deno Deploy kills an instance 5 s after SIGINT: its default fits inside that.
    shutdownTimeoutMs: (e.SHUTDOWN_TIMEOUT_SECONDS ?? (e.DENO_DEPLOYMENT_ID === null ? 10 : 4)) * 1000,
    systemPrompt: e.SYSTEM_PROMPT,
    clinicalVocabulary: e.CLINICAL_VOCABULARY,
    streamGraceMs: e.STREAM_GRACE_SECONDS * 1000,
    eventLoopWarnMs: e.EVENT_LOOP_WARN_MS,
    logFormat: e.LOG_FORMAT,
    uploadMaxBytes: e.UPLOAD_MAX_MB * 1024 * 1024,
    uploaders: e.UPLOADERS,
    security: Object.freeze(security),
    oidc: oidc && Object.freeze(oidc),
  });
}

/** Parses a template name, returning null when it is not one Rounds knows. */
export function parseTemplateName(raw: string): TemplateName | null {
  if ((TEMPLATE_NAMES as readonly string[]).includes(raw)) return raw as TemplateName;
  if (raw.startsWith("jinja:") && raw.length > "jinja:".length) return raw as TemplateName;
  return null;
}

/** Parses a server family name (a few common spellings too); null when it is not one Rounds knows. */
export function parseServerFamilyName(raw: string): ServerFamilyName | null {
  const name = raw.trim().toLowerCase();
  const aliases: Record<string, ServerFamilyName> = {
    "llama.cpp": "llama.cpp",
    llamacpp: "llama.cpp",
    "llama-server": "llama.cpp",
    vllm: "vllm",
    sglang: "sglang",
    tgi: "tgi",
    "text-generation-inference": "tgi",
    ollama: "ollama",
    openai: "openai",
  };
  return aliases[name] ?? null;
}

/** Hides the password in a connection URL so it can be logged or shown in an error. */
export function redactUrl(raw: string): string {
  return raw.replace(/^([a-z][a-z0-9+.\-]*:\/\/[^:\/@\s]*):[^@\/\s]*@/i, "$1:***@");
}
