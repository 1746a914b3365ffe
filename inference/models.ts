/**
 * The models an operator configured: from INFERENCE_URL / MODEL, or several from MODELS_FILE. Never from the UI.
 */
import { dirname, resolve } from "node:path";
import {
  type Config,
  type GenerationDefaults,
  INFERENCE_APIS,
  type InferenceApi,
  parseTemplateName,
  TEMPLATE_NAMES,
  type TemplateName,
} from "../config.ts";
import { createEndpointClient, type EndpointClient, type EndpointTarget } from "./endpoint.ts";
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
  contextSize: number;
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
      },
      contextSize: inference.contextSize,
      defaults: inference.defaults,
      maxNewTokensLimit: Math.max(inference.defaults.maxNewTokens, Math.floor(inference.contextSize / 2)),
    });
  }
  return createRegistry(specs, { fetch: io.fetch });
}

/** A registry over specs already built (tests build them directly). */
export function createRegistry(specs: ModelSpec[], options: { fetch?: typeof fetch } = {}): ModelRegistry {
  const clients = new Map<string, EndpointClient>();
  return {
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
  };
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
    const contextSize = num("context_size", 4096, 256, 1_048_576, true);
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
      },
      contextSize,
      defaults,
      maxNewTokensLimit: limit,
    });
  }
  if (problems.length > 0) throw new ModelsError(problems);
  return specs;
}
