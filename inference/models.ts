/**
 * The models an operator configured: from INFERENCE_URL / MODEL, or several from MODELS_FILE. Never from the UI.
 */
import { dirname, resolve } from "node:path";
import {
  type Config,
  DEFAULT_CONTEXT_SIZE,
  type GenerationDefaults,
  INFERENCE_APIS,
  type InferenceApi,
  parseServerFamilyName,
  parseTemplateName,
  SERVER_FAMILY_NAMES,
  TEMPLATE_NAMES,
  type TemplateName,
} from "../config.ts";
import { constraintFor, createEndpointClient, type EndpointClient, type EndpointTarget } from "./endpoint.ts";
import { estimateCounter, localTokenCounter, serverTokenCounter, type TokenCounter } from "./tokenizer.ts";
import { BUILTIN_TEMPLATES, jinjaTemplate, type PromptTemplate, type TokenizerConfig } from "./templates.ts";

/** One configured model. */
export interface ModelSpec {
  /** Stable id stored with sessions and messages. */
  id: string;
  /** What the model picker shows. */
  label: string;
  templateName: TemplateName;
  template: PromptTemplate;
  target: EndpointTarget;
  /** The configured context size; null to take the server's (see contextSizeOf). */
  contextSize: number | null;
  /** A local tokenizer to count with ("llama2", or a tokenizer.json path); null uses the server's, if any. */
  tokenizer: string | null;
  defaults: GenerationDefaults;
  /** Largest max-new-tokens a session may ask for. */
  maxNewTokensLimit: number;
}

/** The configured models and their endpoint clients. */
export interface ModelRegistry {
  list(): ModelSpec[];
  /** The model with this id; the default model for null; null when unknown or none is configured. */
  get(id: string | null): ModelSpec | null;
  client(spec: ModelSpec): EndpointClient;
  /**
   * How to count the model's tokens: the configured local tokenizer, else the server's `/tokenize` (llama.cpp,
   * TGI, vLLM), else an estimate that errs high.
   */
  counter(spec: ModelSpec, signal?: AbortSignal): Promise<TokenCounter>;
}

/** Thrown when MODELS_FILE or a Jinja tokenizer config cannot be used; lists every problem. */
export class ModelsError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid model configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ModelsError";
  }
}

/** File access for loading (injectable in tests). */
export interface ModelsIo {
  readTextFile(path: string): Promise<string>;
  env: Record<string, string | undefined>;
  fetch?: typeof fetch;
}

/** Reads the models the configuration names. With none configured the registry is empty. */
export async function loadModels(config: Readonly<Config>, io: ModelsIo): Promise<ModelRegistry> {
  const specs: ModelSpec[] = [];
  if (config.modelsFile) {
    specs.push(...await readModelsFile(config.modelsFile, io));
  } else if (config.inference) {
    const inference = config.inference;
    const template = await resolveTemplate(inference.template, ".", io, "INFERENCE_TEMPLATE");
    specs.push({
      id: "default",
      label: inference.model ??
        `${inference.template} at ${inference.url ? new URL(inference.url).host : "?"}`,
      templateName: inference.template,
      template,
      target: {
        url: inference.url,
        model: inference.model,
        api: inference.api,
        adapterId: null,
        token: config.hfToken,
        server: inference.server,
        tokenEnv: "HF_TOKEN",
      },
      contextSize: inference.contextSize,
      tokenizer: inference.tokenizer,
      defaults: inference.defaults,
      maxNewTokensLimit: Math.max(
        inference.defaults.maxNewTokens,
        Math.floor((inference.contextSize ?? DEFAULT_CONTEXT_SIZE) / 2),
      ),
    });
  }
  return createRegistry(specs, { fetch: io.fetch, readTextFile: io.readTextFile });
}

/** A registry over specs already built (tests build them directly). */
export function createRegistry(
  specs: ModelSpec[],
  options: { fetch?: typeof fetch; readTextFile?: (path: string) => Promise<string> } = {},
): ModelRegistry {
  const clients = new Map<string, EndpointClient>();
  const counters = new Map<string, Promise<TokenCounter>>();
  const registry: ModelRegistry = {
    list: () => specs,
    get: (id) => (id === null ? specs[0] ?? null : specs.find((s) => s.id === id) ?? null),
    client(spec) {
      let client = clients.get(spec.id);
      if (!client) {
        client = createEndpointClient(spec.target, { fetch: options.fetch });
        clients.set(spec.id, client);
      }
      return client;
    },
    async counter(spec, signal) {
      const cached = counters.get(spec.id);
      if (cached) return await cached;
      if (spec.tokenizer) {
        const local = localTokenCounter(spec.tokenizer, {
          readTextFile: options.readTextFile ?? Deno.readTextFile,
        });
        counters.set(spec.id, local);
        // A tokenizer that cannot be read is not kept: the start-up check reports it, and a fixed file is read.
        local.catch(() => counters.delete(spec.id));
        return await local;
      }
      const client = registry.client(spec);
      const profile = await client.profile(signal);
      const family = profile.family;
      if (spec.target.url && (family === "llama.cpp" || family === "tgi" || family === "vllm")) {
        const server = Promise.resolve(serverTokenCounter({
          url: spec.target.url,
          token: spec.target.token,
          model: spec.target.model ?? (profile.models.length === 1 ? profile.models[0] : null),
          family,
        }, { fetch: options.fetch }));
        counters.set(spec.id, server);
        return await server;
      }
      // Until the server has answered, its family is a guess: count high now and ask again next time.
      if (client.lastFailure === null) counters.set(spec.id, Promise.resolve(estimateCounter()));
      return estimateCounter();
    },
  };
  return registry;
}

async function resolveTemplate(name: TemplateName, baseDir: string, io: ModelsIo, where: string) {
  if (!name.startsWith("jinja:")) return BUILTIN_TEMPLATES[name];
  const path = resolve(baseDir, name.slice("jinja:".length));
  let parsed: TokenizerConfig;
  try {
    parsed = JSON.parse(await io.readTextFile(path));
  } catch (error) {
    throw new ModelsError([`${where}: cannot read ${path} as JSON (${(error as Error).message})`]);
  }
  try {
    return jinjaTemplate(name, parsed);
  } catch (error) {
    throw new ModelsError([`${where}: ${(error as Error).message}`]);
  }
}

async function readModelsFile(path: string, io: ModelsIo): Promise<ModelSpec[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await io.readTextFile(path));
  } catch (error) {
    throw new ModelsError([`MODELS_FILE ${path}: cannot read it as JSON (${(error as Error).message})`]);
  }
  const list = (raw as { models?: unknown })?.models;
  if (!Array.isArray(list) || list.length === 0) {
    throw new ModelsError([`MODELS_FILE ${path}: expected {"models": [ ... ]} with at least one model`]);
  }
  const problems: string[] = [];
  const specs: ModelSpec[] = [];
  const ids = new Set<string>();
  for (const [index, entry] of list.entries()) {
    const where = `MODELS_FILE ${path}: models[${index}]`;
    const e = (entry ?? {}) as Record<string, unknown>;
    const problem = (field: string, message: string) => problems.push(`${where}.${field} ${message}`);
    const str = (field: string, required: boolean): string | null => {
      const value = e[field];
      if (value === undefined || value === null || value === "") {
        if (required) problem(field, "is required");
        return null;
      }
      if (typeof value !== "string") {
        problem(field, `must be a string, got ${JSON.stringify(value)}`);
        return null;
      }
      return value;
    };
    const num = (field: string, fallback: number, min: number, max: number, integer: boolean): number => {
      const value = e[field];
      if (value === undefined || value === null) return fallback;
      if (typeof value !== "number" || (integer && !Number.isInteger(value)) || value < min || value > max) {
        problem(
          field,
          `must be ${integer ? "an integer" : "a number"} between ${min} and ${max}, got ${
            JSON.stringify(value)
          }`,
        );
        return fallback;
      }
      return value;
    };

    const id = str("id", true);
    if (id && !/^[a-z0-9][a-z0-9._-]{0,63}$/i.test(id)) {
      problem("id", `must be letters, digits, ".", "_" or "-", got ${JSON.stringify(id)}`);
    }
    if (id && ids.has(id)) problem("id", `${JSON.stringify(id)} is used by an earlier model`);
    if (id) ids.add(id);
    const url = str("url", false);
    if (url && !/^https?:\/\/\S+$/.test(url)) {
      problem("url", `must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
    }
    const model = str("model", false);
    if (!url && !model) {
      problem("url", "or model is required (a URL, or a model id for Hugging Face Inference Providers)");
    }
    const templateRaw = str("template", false) ?? (url ? "llama2-meddialog" : "chat");
    const templateName = parseTemplateName(templateRaw);
    if (!templateName) {
      problem(
        "template",
        `must be one of ${TEMPLATE_NAMES.join(", ")} or jinja:<path>, got ${JSON.stringify(templateRaw)}`,
      );
    } else if (!url && templateName !== "chat") {
      problem(
        "template",
        `must be "chat" for a model without url (Inference Providers only offer the chat API)`,
      );
    }
    const apiRaw = str("api", false) ?? "openai";
    if (!(INFERENCE_APIS as readonly string[]).includes(apiRaw)) {
      problem("api", `must be one of ${INFERENCE_APIS.join(", ")}, got ${JSON.stringify(apiRaw)}`);
    }
    const configuredContext = e.context_size === undefined || e.context_size === null
      ? null
      : num("context_size", DEFAULT_CONTEXT_SIZE, 256, 1_048_576, true);
    const contextSize = configuredContext ?? DEFAULT_CONTEXT_SIZE;
    const serverRaw = str("server", false);
    const server = serverRaw === null ? null : parseServerFamilyName(serverRaw);
    if (serverRaw !== null && server === null) {
      problem(
        "server",
        `must be one of ${SERVER_FAMILY_NAMES.join(", ")} (or absent, to ask the server), got ${
          JSON.stringify(serverRaw)
        }`,
      );
    }
    const tokenizer = str("tokenizer", false);
    const d = (e.defaults ?? {}) as Record<string, unknown>;
    const defaults: GenerationDefaults = {
      temperature: 0.7,
      topP: 0.95,
      maxNewTokens: 512,
    };
    for (
      const [key, field, min, max, integer] of [
        ["temperature", "temperature", 0, 2, false],
        ["topP", "top_p", 0.01, 1, false],
        ["maxNewTokens", "max_new_tokens", 1, contextSize - 1, true],
      ] as const
    ) {
      const value = d[field];
      if (value === undefined) continue;
      if (typeof value !== "number" || (integer && !Number.isInteger(value)) || value < min || value > max) {
        problem(
          `defaults.${field}`,
          `must be a number between ${min} and ${max}, got ${JSON.stringify(value)}`,
        );
      } else defaults[key] = value;
    }
    const limit = num(
      "max_new_tokens_limit",
      Math.max(defaults.maxNewTokens, Math.floor(contextSize / 2)),
      1,
      contextSize - 1,
      true,
    );
    if (limit < defaults.maxNewTokens) {
      problem(
        "max_new_tokens_limit",
        `(${limit}) is below defaults.max_new_tokens (${defaults.maxNewTokens})`,
      );
    }
    const adapterId = str("adapter_id", false);
    const tokenEnv = str("token_env", false) ?? "HF_TOKEN";
    if (!/^[A-Z_][A-Z0-9_]*$/.test(tokenEnv)) {
      problem("token_env", `must name an environment variable, got ${JSON.stringify(tokenEnv)}`);
    }
    const label = str("label", false) ?? id ?? "";
    if (problems.length > 0 || !id || !templateName) continue;

    let template: PromptTemplate;
    try {
      template = await resolveTemplate(templateName, dirname(resolve(path)), io, `${where}.template`);
    } catch (error) {
      problems.push(...(error as ModelsError).problems);
      continue;
    }
    specs.push({
      id,
      label,
      templateName,
      template,
      target: {
        url: url?.replace(/\/+$/, "") ?? null,
        model,
        api: apiRaw as InferenceApi,
        adapterId,
        token: io.env[tokenEnv]?.trim() || null,
        server,
        tokenEnv,
      },
      contextSize: configuredContext,
      tokenizer: tokenizer === null || tokenizer === "llama2"
        ? tokenizer
        : resolve(dirname(resolve(path)), tokenizer),
      defaults,
      maxNewTokensLimit: limit,
    });
  }
  if (problems.length > 0) throw new ModelsError(problems);
  return specs;
}

/**
 * One start-up line per model about its server, asked now: the family and where it was learned, the context
 * size, the model name, how tokens are counted and how case output is held; or why the server cannot be asked
 * yet (loading, a refused key naming its variable, not answering). A server listing several models with none
 * chosen is a problem: the caller stops.
 */
export async function describeServers(
  registry: ModelRegistry,
): Promise<{ lines: string[]; problems: string[] }> {
  const lines: string[] = [];
  const problems: string[] = [];
  await Promise.all(
    registry.list().map(async (spec) => {
      if (spec.tokenizer) {
        try {
          await registry.counter(spec);
        } catch (error) {
          problems.push(`model ${spec.id}: ${(error as Error).message}`);
          return;
        }
      }
      const client = registry.client(spec);
      const profile = await client.profile(AbortSignal.timeout(5000)).catch(() => null);
      const where = spec.target.url ?? "Hugging Face Inference Providers";
      const failure = client.lastFailure;
      if (!profile || failure) {
        const why = failure?.state === "unauthorized"
          ? `refuses the key (${failure.detail}): check ${spec.target.tokenEnv ?? "HF_TOKEN"}`
          : failure?.state === "loading"
          ? `is loading or waking up (${failure.detail}); Rounds will ask again when it is needed`
          : `is not answering (${failure?.detail ?? "no answer"}); Rounds will ask again when it is needed`;
        lines.push(`model ${spec.id}: ${where} ${why}`);
        return;
      }
      if (!spec.target.model && !spec.target.adapterId && profile.models.length > 1) {
        problems.push(
          `${where} serves ${profile.models.length} models (${profile.models.slice(0, 8).join(", ")}): set ` +
            `MODEL (or "model" in MODELS_FILE) to the one Rounds should use`,
        );
      }
      const context = spec.contextSize !== null
        ? `context ${spec.contextSize} tokens (configured)`
        : profile.contextSize !== null
        ? `context ${profile.contextSize} tokens (from ${profile.contextFrom})`
        : `context ${DEFAULT_CONTEXT_SIZE} tokens (assumed: the server does not say; set INFERENCE_CONTEXT_SIZE)`;
      const name = spec.target.model ?? (profile.models.length === 1 ? profile.models[0] : null);
      let counter: TokenCounter;
      try {
        counter = await registry.counter(spec);
      } catch (error) {
        problems.push(`model ${spec.id}: ${(error as Error).message}`);
        return;
      }
      const route = spec.template.kind === "chat" ? "chat" : "raw";
      const constraint = constraintFor(profile.family, route);
      lines.push(
        `model ${spec.id}: ${where} is ${profile.family} (${profile.familyFrom}), ${context}` +
          `${name ? `, model ${name}` : ""}; tokens counted by ${counter.description}; ` +
          (constraint
            ? `case output held by ${constraint}`
            : `case output NOT held to the schema on this route`),
      );
    }),
  );
  return { lines, problems };
}
