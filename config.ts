/**
 * Configuration: every environment variable Rounds reads, validated once at start.
 *
 * Only main.ts and tasks/ read Deno.env; everything else receives a Config.
 */

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
  /** Take the client address from X-Forwarded-For (only behind a proxy that sets it). */
  trustProxy: boolean;
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
  /** Snippets quoted per answer; 0 turns grounding off. */
  retrievalK: number;
  /** Cosine similarity a snippet needs to count as evidence; null uses the embedder's calibrated default. */
  retrievalMinScore: number | null;
  /** How long shutdown waits for in-flight work before aborting it. */
  shutdownTimeoutMs: number;
  /** Replaces the built-in clinical-assistant system prompt when set. */
  systemPrompt: string | null;
  /** How long a generation keeps running after its last viewer disconnects, waiting for one to reattach. */
  streamGraceMs: number;
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

/** Reads and validates the configuration from an environment map; throws ConfigError listing every problem. */
export function loadConfig(env: Env): Readonly<Config> {
  const problems: string[] = [];
  const read = (name: string): string | null => {
    const value = env[name]?.trim();
    return value ? value : null;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === null) return fallback;
    const value = Number(raw);
    if (!/^[+-]?\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  };
  const decimal = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === null) return fallback;
    const value = Number(raw);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw) || value < min || value > max) {
      problems.push(`${name} must be a number between ${min} and ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  };
  const httpUrl = (name: string): string | null => {
    const raw = read(name);
    if (raw === null) return null;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      problems.push(`${name} must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      problems.push(`${name} must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
      return null;
    }
    if (url.username || url.password) {
      problems.push(`${name} must not contain credentials; put the token in HF_TOKEN`);
      return null;
    }
    return raw.replace(/\/+$/, "");
  };

  const port = integer("PORT", 8000, 1, 65535);
  const host = read("HOST") ?? "127.0.0.1";
  if (!/^[A-Za-z0-9.:\-\[\]]+$/.test(host)) {
    problems.push(`HOST must be a host name or IP address, got ${JSON.stringify(host)}`);
  }

  const databaseUrl = read("DATABASE_URL");
  if (databaseUrl !== null && !/^postgres(ql)?:\/\/[^\s]+$/.test(databaseUrl)) {
    problems.push(
      `DATABASE_URL must be a postgres:// or postgresql:// URL, got ${
        JSON.stringify(redactUrl(databaseUrl))
      }`,
    );
  }
  if (databaseUrl === null && read("DENO_DEPLOYMENT_ID") !== null) {
    problems.push(
      "DATABASE_URL must be set on Deno Deploy: the embedded PGlite needs a persistent disk, which Deploy " +
        "does not have. Use a managed Postgres with pgvector (Neon, Supabase)",
    );
  }
  const databasePoolSize = integer("DATABASE_POOL_SIZE", 10, 1, 1000);
  const dataDir = read("DATA_DIR") ?? "./.data";

  const inferenceUrl = httpUrl("INFERENCE_URL");
  const model = read("MODEL");
  const modelsFile = read("MODELS_FILE");
  if (modelsFile !== null && (read("INFERENCE_URL") !== null || model !== null)) {
    problems.push(
      "MODELS_FILE cannot be combined with INFERENCE_URL or MODEL: configure the models in one place",
    );
  }
  if (model !== null && !/^[\w.\-\/:@]+$/.test(model)) {
    problems.push(`MODEL must be a model id such as "org/name", got ${JSON.stringify(model)}`);
  }

  const templateRaw = read("INFERENCE_TEMPLATE");
  let template: TemplateName = inferenceUrl === null && model !== null ? "chat" : "llama2-meddialog";
  if (templateRaw !== null) {
    const parsed = parseTemplateName(templateRaw);
    if (parsed === null) {
      problems.push(
        `INFERENCE_TEMPLATE must be one of ${
          TEMPLATE_NAMES.join(", ")
        } or jinja:<path to tokenizer_config.json>, ` +
          `got ${JSON.stringify(templateRaw)}`,
      );
    } else if (inferenceUrl === null && parsed !== "chat" && model !== null) {
      problems.push(
        `INFERENCE_TEMPLATE ${
          JSON.stringify(parsed)
        } needs INFERENCE_URL: Hugging Face Inference Providers ` +
          `(MODEL alone) only offer the chat API, so use INFERENCE_TEMPLATE=chat`,
      );
    } else {
      template = parsed;
    }
  }
  const apiRaw = read("INFERENCE_API") ?? "openai";
  let api: InferenceApi = "openai";
  if ((INFERENCE_APIS as readonly string[]).includes(apiRaw)) api = apiRaw as InferenceApi;
  else {problems.push(
      `INFERENCE_API must be one of ${INFERENCE_APIS.join(", ")}, got ${JSON.stringify(apiRaw)}`,
    );}
  const contextSize = read("INFERENCE_CONTEXT_SIZE") === null
    ? null
    : integer("INFERENCE_CONTEXT_SIZE", DEFAULT_CONTEXT_SIZE, 256, 1_048_576);
  const serverRaw = read("INFERENCE_SERVER");
  let server: ServerFamilyName | null = null;
  if (serverRaw !== null) {
    server = parseServerFamilyName(serverRaw);
    if (server === null) {
      problems.push(
        `INFERENCE_SERVER must be one of ${SERVER_FAMILY_NAMES.join(", ")} (or unset, to ask the server), ` +
          `got ${JSON.stringify(serverRaw)}`,
      );
    }
  }
  const tokenizer = read("INFERENCE_TOKENIZER");
  const defaults: GenerationDefaults = {
    maxNewTokens: integer("INFERENCE_MAX_NEW_TOKENS", 512, 1, 32_768),
    temperature: decimal("INFERENCE_TEMPERATURE", 0.7, 0, 2),
    topP: decimal("INFERENCE_TOP_P", 0.95, 0.01, 1),
  };
  if (contextSize !== null && defaults.maxNewTokens >= contextSize) {
    problems.push(
      `INFERENCE_MAX_NEW_TOKENS (${defaults.maxNewTokens}) must be smaller than INFERENCE_CONTEXT_SIZE ` +
        `(${contextSize}): the prompt needs room too`,
    );
  }

  const embeddingUrl = httpUrl("EMBEDDING_URL");
  const embeddingModel = read("EMBEDDING_MODEL");
  const embeddingApiRaw = read("EMBEDDING_API");
  const embeddingApi = embeddingApiRaw === null ? null : embeddingApiRaw.toLowerCase() as EmbeddingApiName;
  if (embeddingApi !== null && !(EMBEDDING_API_NAMES as readonly string[]).includes(embeddingApi)) {
    problems.push(
      `EMBEDDING_API must be one of ${EMBEDDING_API_NAMES.join(", ")} (or unset, to follow the path of ` +
        `EMBEDDING_URL), got ${JSON.stringify(embeddingApiRaw)}`,
    );
  } else if (embeddingApi !== null && embeddingApi !== "hf" && embeddingUrl === null) {
    problems.push(`EMBEDDING_URL must be set with EMBEDDING_API=${embeddingApi} (the server's address)`);
  }
  const retrievalK = integer("RETRIEVAL_K", 4, 0, 20);
  const retrievalMinScore = read("RETRIEVAL_MIN_SCORE") === null
    ? null
    : decimal("RETRIEVAL_MIN_SCORE", 0, 0, 1);
  const shutdownTimeoutMs = integer("SHUTDOWN_TIMEOUT_SECONDS", 10, 0, 3600) * 1000;
  const streamGraceMs = integer("STREAM_GRACE_SECONDS", 15, 0, 3600) * 1000;
  const systemPrompt = read("SYSTEM_PROMPT");
  if (systemPrompt !== null && systemPrompt.length > 4000) {
    problems.push(`SYSTEM_PROMPT must be at most 4000 characters, got ${systemPrompt.length}`);
  }

  const phiRaw = read("PHI_REDACTION") ?? "inference";
  let phiRedaction: PhiRedactionMode = "inference";
  if ((PHI_REDACTION_MODES as readonly string[]).includes(phiRaw)) phiRedaction = phiRaw as PhiRedactionMode;
  else {
    problems.push(
      `PHI_REDACTION must be one of ${PHI_REDACTION_MODES.join(", ")}, got ${JSON.stringify(phiRaw)}`,
    );
  }
  const trustProxyRaw = read("TRUST_PROXY") ?? "false";
  if (!["true", "false", "1", "0"].includes(trustProxyRaw)) {
    problems.push(`TRUST_PROXY must be true or false, got ${JSON.stringify(trustProxyRaw)}`);
  }
  const security: SecurityConfig = {
    sessionIdleMs: integer("SESSION_IDLE_MINUTES", 15, 1, 24 * 60) * 60_000,
    sessionAbsoluteMs: integer("SESSION_MAX_HOURS", 12, 1, 24 * 30) * 3_600_000,
    messagesPerMinute: integer("RATE_LIMIT_MESSAGES_PER_MINUTE", 20, 1, 10_000),
    dailyTokenBudget: integer("DAILY_TOKEN_BUDGET", 200_000, 0, 1_000_000_000),
    maxConcurrentStreams: integer("MAX_CONCURRENT_STREAMS", 2, 1, 100_000),
    trustProxy: trustProxyRaw === "true" || trustProxyRaw === "1",
    phiRedaction,
  };

  const oidcIssuer = httpUrl("OIDC_ISSUER");
  const oidcClientId = read("OIDC_CLIENT_ID");
  const oidcRedirect = httpUrl("OIDC_REDIRECT_URI");
  const autoCreateRaw = read("OIDC_CREATE_USERS_AS");
  if (oidcIssuer !== null && oidcClientId === null) {
    problems.push("OIDC_CLIENT_ID must be set with OIDC_ISSUER (the client id registered with the provider)");
  }
  if (oidcIssuer === null && (oidcClientId !== null || read("OIDC_CLIENT_SECRET") !== null)) {
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
  if (autoCreateRaw !== null && autoCreateRaw !== "clinician" && autoCreateRaw !== "educator") {
    problems.push(
      `OIDC_CREATE_USERS_AS must be clinician or educator (admins are made by hand), got ${
        JSON.stringify(autoCreateRaw)
      }`,
    );
  }
  const oidc: OidcConfig | null = oidcIssuer !== null && oidcClientId !== null
    ? {
      // As given: the provider's issuer identifier must match exactly, trailing slash included (Auth0 has one).
      issuer: read("OIDC_ISSUER")!,
      clientId: oidcClientId,
      clientSecret: read("OIDC_CLIENT_SECRET"),
      redirectUri: oidcRedirect,
      label: read("OIDC_LABEL") ?? "single sign-on",
      autoCreateRole: autoCreateRaw as OidcConfig["autoCreateRole"],
    }
    : null;

  if (problems.length > 0) throw new ConfigError(problems);

  const inference: InferenceEnv | null = inferenceUrl !== null || model !== null
    ? {
      url: inferenceUrl,
      model,
      template,
      api,
      server,
      contextSize,
      tokenizer,
      defaults: Object.freeze(defaults),
    }
    : null;
  return Object.freeze({
    port,
    host,
    databaseUrl,
    databasePoolSize,
    dataDir,
    hfToken: read("HF_TOKEN"),
    inference: inference && Object.freeze(inference),
    modelsFile,
    embeddingUrl,
    embeddingModel,
    embeddingApi,
    embeddingApiKey: read("EMBEDDING_API_KEY"),
    retrievalK,
    retrievalMinScore,
    shutdownTimeoutMs,
    systemPrompt,
    streamGraceMs,
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
