/**
 * The new-account forms (an administrator adding a user; the first run's setup of the first administrator), as
 * one zod schema: a valid email (normalised), a name of at most 120 characters, a role, and a password that
 * meets the rules of `passwords.ts` (typed twice at setup). Problems come back in the order the form shows its
 * fields, in words an administrator can act on.
 */
import { z } from "zod";
import { USER_ROLES, type UserRole } from "../db/schema.ts";
import { normaliseEmail } from "../db/users.ts";
import { passwordProblem } from "./passwords.ts";

/** What the form held, trimmed to what may be shown again (never the password). */
export interface AccountValues {
  email: string;
  name: string;
  role: UserRole;
}

/** A valid new account. */
export interface NewAccount {
  email: string;
  name: string;
  role: UserRole;
  password: string;
}

const text = z.preprocess((v) => (typeof v === "string" ? v : ""), z.string());

/** The schema; `confirm` adds the repeated password (setup), `role` the role picker (admin). */
export function accountSchema(options: { confirm: boolean; role: boolean }) {
  return z.object({
    email: text.transform((raw, ctx) => {
      const email = normaliseEmail(raw);
      if (!email) ctx.addIssue({ code: "custom", message: "Enter a valid email address" });
      return email ?? "";
    }),
    name: text.transform((raw) => raw.trim().slice(0, 120)),
    ...(options.role
      ? {
        role: text.refine((raw) => USER_ROLES.includes(raw as UserRole), {
          error: `Choose a role: ${USER_ROLES.join(", ")}`,
        }),
      }
      : {}),
    password: text.superRefine((raw, ctx) => {
      const problem = passwordProblem(raw);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
    confirm: text,
  }).superRefine((form, ctx) => {
    // With the rest of the form valid: a password made of the account's own e-mail or name.
    const problem = passwordProblem(form.password, { email: form.email, name: form.name });
    if (problem) ctx.addIssue({ code: "custom", path: ["password"], message: problem });
    if (options.confirm && !problem && form.password !== form.confirm) {
      ctx.addIssue({ code: "custom", path: ["confirm"], message: "The two passwords differ" });
    }
  });
}

/** Reads a posted form: the account, or the problems; the values to show again either way. */
export function readAccountForm(
  form: Record<string, unknown>,
  options: { confirm: boolean; role: boolean },
): { values: AccountValues; account: NewAccount | null; errors: string[] } {
  const raw = (name: string) => (typeof form[name] === "string" ? form[name] as string : "");
  const role = raw("role") as UserRole;
  const values: AccountValues = {
    email: raw("email").slice(0, 254),
    name: raw("name").slice(0, 120),
    role: USER_ROLES.includes(role) ? role : options.role ? "clinician" : "admin",
  };
  const parsed = accountSchema(options).safeParse(form);
  if (!parsed.success) return { values, account: null, errors: parsed.error.issues.map((i) => i.message) };
  const { email, name, password } = parsed.data;
  return {
    values,
    account: { email, name, role: options.role ? values.role : "admin", password },
    errors: [],
  };
}
