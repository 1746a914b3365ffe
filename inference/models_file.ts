/**
 * MODELS_FILE's format, as one zod schema: what each model entry may hold, with the words an operator sees when
 * an entry is wrong (`MODELS_FILE models.json: models[1].defaults.top_p must be a number between 0.01 and 1,
 * got 3`). Unknown fields are refused by name, so a misspelt `temprature` is not silently ignored.
 * Checks that span fields (a URL or a model; the template a model without URL can use; limits against the
 * context) follow the schema in `checkModelEntry`.
 */
import { z } from "zod";
import {
  DEFAULT_CONTEXT_SIZE,
  INFERENCE_APIS,
  parseServerFamilyName,
  SERVER_FAMILY_NAMES,
  TEMPLATE_NAMES,
} from "../config.ts";

const got = (value: unknown) => JSON.stringify(value);

/** A string field; "" and null count as absent. */
const text = (required = false) => {
  const value = z.string({
    error: (issue) => issue.input === undefined ? "is required" : `must be a string, got ${got(issue.input)}`,
  });
  return z.preprocess((v) => (v === "" || v === null ? undefined : v), required ? value : value.optional());
};

/** A number in [min, max] (whole when `integer`); null counts as absent. */
const between = (min: number, max: number, integer: boolean) => {
  const message = (issue: { input?: unknown }) =>
    `must be ${integer ? "an integer" : "a number"} between ${min} and ${max}, got ${got(issue.input)}`;
  return z.preprocess(
    (v) => (v === null ? undefined : v),
    z.number({ error: message })
      .refine((v) => (!integer || Number.isInteger(v)) && v >= min && v <= max, { error: message })
      .optional(),
  );
};

/** Largest context size a model entry may declare. */
const MAX_CONTEXT = 1_048_576;

const DEFAULTS_SHAPE = {
  temperature: between(0, 2, false),
  top_p: between(0.01, 1, false),
  max_new_tokens: between(1, MAX_CONTEXT, true),
};

/** One entry of `{"models": [...]}`. */
export const MODEL_ENTRY = z.strictObject({
  id: text(true).pipe(
    z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, {
      error: (issue) => `must be letters, digits, ".", "_" or "-", got ${got(issue.input)}`,
    }),
  ),
  label: text(),
  url: text().pipe(
    z.string().regex(/^https?:\/\/\S+$/, {
      error: (issue) => `must be an http:// or https:// URL, got ${got(issue.input)}`,
    }).optional(),
  ),
  model: text(),
  template: text().pipe(
    z.string().refine((v) => TEMPLATE_NAMES.includes(v as never) || /^jinja:./.test(v), {
      error: (issue) =>
        `must be one of ${TEMPLATE_NAMES.join(", ")} or jinja:<path>, got ${got(issue.input)}`,
    }).optional(),
  ),
  api: text().pipe(
    z.enum(INFERENCE_APIS, {
      error: (issue) => `must be one of ${INFERENCE_APIS.join(", ")}, got ${got(issue.input)}`,
    }).optional(),
  ),
  server: text().pipe(
    z.string().refine((v) => parseServerFamilyName(v) !== null, {
      error: (issue) =>
        `must be one of ${SERVER_FAMILY_NAMES.join(", ")} (or absent, to ask the server), got ${
          got(issue.input)
        }`,
    }).optional(),
  ),
  context_size: between(256, MAX_CONTEXT, true),
  tokenizer: text(),
  defaults: z.preprocess(
    (v) => (v === null ? undefined : v),
    z.strictObject(DEFAULTS_SHAPE, { error: (issue) => `must be an object, got ${got(issue.input)}` })
      .optional(),
  ),
  max_new_tokens_limit: between(1, MAX_CONTEXT, true),
  adapter_id: text(),
  token_env: text().pipe(
    z.string().regex(/^[A-Z_][A-Z0-9_]*$/, {
      error: (issue) => `must name an environment variable, got ${got(issue.input)}`,
    }).optional(),
  ),
});

/** A model entry as the schema reads it. */
export type ModelEntry = z.infer<typeof MODEL_ENTRY>;

/** The whole file. */
export const MODELS_FILE_SCHEMA = z.object({
  models: z.array(z.unknown(), { error: 'expected {"models": [ ... ]} with at least one model' })
    .min(1, { error: 'expected {"models": [ ... ]} with at least one model' }),
});

/** What is wrong with an entry, and where: `field` is the dotted path ("" for the entry itself). */
export interface EntryProblem {
  field: string;
  message: string;
}

/** Reads one entry: the value, or every problem the schema found. */
export function readModelEntry(
  entry: unknown,
): { ok: true; value: ModelEntry } | { ok: false; problems: EntryProblem[] } {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    return { ok: false, problems: [{ field: "", message: `must be an object, got ${got(entry)}` }] };
  }
  const parsed = MODEL_ENTRY.safeParse(entry, { reportInput: true });
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = parsed.error.issues.map((issue): EntryProblem => {
    const field = issue.path.join(".");
    if (issue.code === "unrecognized_keys") {
      const known = Object.keys(field === "defaults" ? DEFAULTS_SHAPE : MODEL_ENTRY.shape);
      return {
        field,
        message: `has unknown field${issue.keys.length > 1 ? "s" : ""} ${
          issue.keys.map((k) => got(k)).join(", ")
        } (known: ${known.join(", ")})`,
      };
    }
    return { field, message: issue.message };
  });
  return { ok: false, problems };
}

/**
 * The checks that span fields, on an entry the schema accepted: a URL or a model id; a template the route can
 * use; the token limits against the context.
 */
export function checkModelEntry(entry: ModelEntry): EntryProblem[] {
  const problems: EntryProblem[] = [];
  const problem = (field: string, message: string) => problems.push({ field, message });
  if (!entry.url && !entry.model) {
    problem("url", "or model is required (a URL, or a model id for Hugging Face Inference Providers)");
  }
  if (!entry.url && entry.template && entry.template !== "chat") {
    problem(
      "template",
      `must be "chat" for a model without url (Inference Providers only offer the chat API)`,
    );
  }
  const context = entry.context_size ?? DEFAULT_CONTEXT_SIZE;
  const maxNew = entry.defaults?.max_new_tokens;
  if (maxNew !== undefined && maxNew > context - 1) {
    problem("defaults.max_new_tokens", `must be a number between 1 and ${context - 1}, got ${maxNew}`);
  }
  const limit = entry.max_new_tokens_limit;
  if (limit !== undefined && limit > context - 1) {
    problem("max_new_tokens_limit", `must be an integer between 1 and ${context - 1}, got ${limit}`);
  } else if (limit !== undefined && maxNew !== undefined && limit < maxNew) {
    problem("max_new_tokens_limit", `(${limit}) is below defaults.max_new_tokens (${maxNew})`);
  }
  return problems;
}
