/**
 * The models an operator configured: from INFERENCE_URL / MODEL, or several from MODELS_FILE. Never from the UI.
 */
import { dirname, resolve } from "node:path";
import {
  type Config,
  DEFAULT_CONTEXT_SIZE,
  type GenerationDefaults,
  parseServerFamilyName,
  parseTemplateName,
  type TemplateName,
} from "../config.ts";
import {
  constraintFor,
  createEndpointClient,
  type EndpointClient,
  type EndpointTarget,
  type GenerationRequest,
} from "./endpoint.ts";
import { createOutboundGate, type OutboundGate, released, UngatedRequestError } from "../safety/gate.ts";
import { estimateCounter, localTokenCounter, serverTokenCounter, type TokenCounter } from "./tokenizer.ts";
import { checkModelEntry, MODELS_FILE_SCHEMA, readModelEntry } from "./models_file.ts";
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
  /** Every prompt passes it on the way out; the clients send only what it released (safety/gate.ts). */
  readonly gate: OutboundGate;
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
      // What clinicians see: the model, not the server's address (operators find that on the admin page).
      label: inference.model ?? inference.template,
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
  return createRegistry(specs, {
    fetch: io.fetch,
    readTextFile: io.readTextFile,
    redactPhi: config.security.phiRedaction !== "off",
  });
}

/** A client that sends only requests the redaction gate released: nothing reaches the model around it. */
function gatedClient(client: EndpointClient): EndpointClient {
  return Object.assign(Object.create(client) as EndpointClient, {
    stream(request: GenerationRequest, signal: AbortSignal) {
      if (!released(request)) throw new UngatedRequestError();
      return client.stream(request, signal);
    },
  });
}

/** A registry over specs already built (tests build them directly). */
export function createRegistry(
  specs: ModelSpec[],
  options: {
    fetch?: typeof fetch;
    readTextFile?: (path: string) => Promise<string>;
    /** Replace identifiers in every prompt (PHI_REDACTION not "off"); on unless told otherwise. */
    redactPhi?: boolean;
  } = {},
): ModelRegistry {
  const clients = new Map<string, EndpointClient>();
  const counters = new Map<string, Promise<TokenCounter>>();
  const registry: ModelRegistry = {
    list: () => specs,
    get: (id) => (id === null ? specs[0] ?? null : specs.find((s) => s.id === id) ?? null),
    gate: createOutboundGate({ redact: options.redactPhi ?? true }),
    client(spec) {
      let client = clients.get(spec.id);
      if (!client) {
        client = gatedClient(createEndpointClient(spec.target, { fetch: options.fetch }));
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
  const file = MODELS_FILE_SCHEMA.safeParse(raw);
  if (!file.success) throw new ModelsError([`MODELS_FILE ${path}: ${file.error.issues[0].message}`]);
  const problems: string[] = [];
  const specs: ModelSpec[] = [];
  const ids = new Set<string>();
  for (const [index, raw] of file.data.models.entries()) {
    const where = `MODELS_FILE ${path}: models[${index}]`;
    const read = readModelEntry(raw);
    const found = read.ok ? checkModelEntry(read.value) : read.problems;
    if (read.ok && ids.has(read.value.id)) {
      found.push({ field: "id", message: `${JSON.stringify(read.value.id)} is used by an earlier model` });
    }
    if (read.ok) ids.add(read.value.id);
    problems.push(...found.map(({ field, message }) => `${where}${field ? `.${field}` : ""} ${message}`));
    if (!read.ok || found.length > 0 || problems.length > 0) continue;
    const e = read.value;
    const templateName = parseTemplateName(e.template ?? (e.url ? "llama2-meddialog" : "chat"))!;
    const contextSize = e.context_size ?? DEFAULT_CONTEXT_SIZE;
    const defaults: GenerationDefaults = {
      temperature: e.defaults?.temperature ?? 0.7,
      topP: e.defaults?.top_p ?? 0.95,
      maxNewTokens: e.defaults?.max_new_tokens ?? 512,
    };
    const tokenEnv = e.token_env ?? "HF_TOKEN";
    let template: PromptTemplate;
    try {
      template = await resolveTemplate(templateName, dirname(resolve(path)), io, `${where}.template`);
    } catch (error) {
      problems.push(...(error as ModelsError).problems);
      continue;
    }
    specs.push({
      id: e.id,
      label: e.label ?? e.id,
      templateName,
      template,
      target: {
        url: e.url?.replace(/\/+$/, "") ?? null,
        model: e.model ?? null,
        api: e.api ?? "openai",
        adapterId: e.adapter_id ?? null,
        token: io.env[tokenEnv]?.trim() || null,
        server: e.server === undefined ? null : parseServerFamilyName(e.server),
        tokenEnv,
      },
      contextSize: e.context_size ?? null,
      tokenizer: e.tokenizer === undefined
        ? null
        : e.tokenizer === "llama2"
        ? e.tokenizer
        : resolve(dirname(resolve(path)), e.tokenizer),
      defaults,
      maxNewTokensLimit: e.max_new_tokens_limit ??
        Math.max(defaults.maxNewTokens, Math.floor(contextSize / 2)),
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
