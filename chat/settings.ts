/**
 * The chat's sampling settings form, as a zod schema: the model (one this server has), temperature, top-p and
 * the reply length (up to the model's own limit). Each field keeps what the clinician typed, so the form can be
 * shown again with a message beside each wrong field.
 */
import { z } from "zod";
import type { ChatSettings } from "../db/chats.ts";
import type { ModelRegistry } from "../inference/models.ts";

/** The form's fields, as typed. */
export interface SettingsValues {
  model: string;
  temperature: string;
  topP: string;
  maxNewTokens: string;
}

/** A field's problem, in words a clinician can act on. */
export type SettingsErrors = Partial<Record<keyof SettingsValues, string>>;

/** A number typed into a form field, in [min, max] (whole when `integer`). */
function typedNumber(min: number, max: number, integer: boolean) {
  const message = `Must be ${integer ? "a whole number" : "a number"} from ${min} to ${max}`;
  return z.string().trim().refine((raw) => {
    const value = Number(raw);
    return raw !== "" && Number.isFinite(value) && value >= min && value <= max &&
      (!integer || Number.isInteger(value));
  }, { error: message }).transform(Number);
}

/** The schema of the form for one server's models (the reply-length limit is the chosen model's). */
export function settingsSchema(models: ModelRegistry, maxNewTokensLimit: number) {
  return z.object({
    model: z.string().trim().refine((id) => id === "" || models.get(id) !== null, {
      error: (issue) => `There is no model "${String(issue.input).trim()}" on this server`,
    }),
    temperature: typedNumber(0, 2, false),
    topP: typedNumber(0.01, 1, false),
    maxNewTokens: typedNumber(1, maxNewTokensLimit, true),
  });
}

/** Reads the form: the settings to store, or the errors by field. */
export function readSettings(
  models: ModelRegistry,
  form: Record<string, unknown>,
): { values: SettingsValues; settings: ChatSettings | null; errors: SettingsErrors } {
  const field = (name: string) => typeof form[name] === "string" ? (form[name] as string).trim() : "";
  const values: SettingsValues = {
    model: field("model"),
    temperature: field("temperature"),
    topP: field("topP"),
    maxNewTokens: field("maxNewTokens"),
  };
  const spec = values.model ? models.get(values.model) : models.get(null);
  const parsed = settingsSchema(models, spec?.maxNewTokensLimit ?? 4096).safeParse(values);
  if (!parsed.success) {
    const errors: SettingsErrors = {};
    for (const issue of parsed.error.issues) errors[issue.path[0] as keyof SettingsValues] ??= issue.message;
    return { values, settings: null, errors };
  }
  const { temperature, topP, maxNewTokens } = parsed.data;
  return { values, settings: { model: spec?.id ?? null, temperature, topP, maxNewTokens }, errors: {} };
}
