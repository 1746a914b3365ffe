/**
 * The new-case form ("Generate a case"), as a zod schema: what an educator may ask for, with the words shown
 * beside each field when it is wrong. The route adds what needs the database (the snippet a case is inspired by).
 */
import { z } from "zod";
import { DIFFICULTIES, LEARNER_LEVELS } from "./schema.ts";

/** The form's fields, as typed (control characters stripped, trimmed). */
export interface NewCaseValues {
  specialty: string;
  difficulty: string;
  level: string;
  setting: string;
  focus: string;
  inspiredBy: string;
}

/** A field's problem. */
export type NewCaseErrors = Partial<Record<keyof NewCaseValues, string>>;

/** What may be asked for. */
export const NEW_CASE_FORM = z.object({
  specialty: z.string().min(1, { error: "Name a specialty, e.g. cardiology" })
    .max(80, { error: "At most 80 characters" }),
  setting: z.string().min(1, { error: "Name a setting, e.g. emergency department" })
    .max(120, { error: "At most 120 characters" }),
  difficulty: z.enum(DIFFICULTIES, { error: `Choose one of ${DIFFICULTIES.join(", ")}` }),
  level: z.enum(LEARNER_LEVELS, { error: `Choose one of ${LEARNER_LEVELS.join(", ")}` }),
  focus: z.string().max(1000, {
    error: (issue) => `At most 1,000 characters; this has ${String(issue.input).length}`,
  }),
  inspiredBy: z.string(),
});

/** The request the form makes, once valid. */
export type NewCaseRequest = z.infer<typeof NEW_CASE_FORM>;

/** Checks the form: the request, or the first problem of each field. */
export function readNewCaseForm(
  values: NewCaseValues,
): { request: NewCaseRequest | null; errors: NewCaseErrors } {
  const parsed = NEW_CASE_FORM.safeParse(values, { reportInput: true });
  if (parsed.success) return { request: parsed.data, errors: {} };
  const errors: NewCaseErrors = {};
  for (const issue of parsed.error.issues) errors[issue.path[0] as keyof NewCaseValues] ??= issue.message;
  return { request: null, errors };
}
