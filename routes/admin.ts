/**
 * Administration: users (add, disable, enable, change role), the audit log and the training data from clinicians'
 * feedback; administrators only (the role guard below covers every /admin path).
 */
import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { type AuditFilter, auditObjectNames, listAudit } from "../db/audit.ts";
import type { Db } from "../db/client.ts";
import { USER_ROLES, type UserRole } from "../db/schema.ts";
import {
  countActiveAdmins,
  createUser,
  findUserByEmail,
  getUser,
  listUsers,
  normaliseEmail,
  setUserDisabled,
  setUserRole,
} from "../db/users.ts";
import { revokeUserSignIns } from "../db/sign_ins.ts";
import { readAccountForm } from "../safety/account_form.ts";
import { DEFAULT_COST, hashPassword, type ScryptCost } from "../safety/passwords.ts";
import { auditPage, evalsPage, type NewUserForm, trainingPage, usersPage } from "../views/admin.tsx";
import { latestAnswerEvals } from "../db/evals.ts";
import {
  chooseTemplate,
  type ExampleKind,
  exportFeedback,
  type Split,
  trainingWriter,
} from "../chat/training.ts";
import { BUILTIN_TEMPLATES } from "../inference/templates.ts";
import type { ModelRegistry } from "../inference/models.ts";
import type { PageContext } from "../views/page.ts";
import type { Guards } from "./guards.ts";
import { signedInUser, type StreamGuard } from "./auth.ts";

/** What the admin routes need. */
export interface AdminDeps {
  db: Db;
  guard: StreamGuard;
  guards: Guards;
  pageContext: (c: Context, path?: string) => PageContext;
  passwordCost?: ScryptCost;
  /** The configured models: the training export writes in their prompt formats. */
  models: ModelRegistry;
  /** The system prompt answers are served with (it opens the training prompts). */
  systemPrompt: string;
}

/** The training files, in the order the page lists them. */
const TRAINING_FILES: { kind: ExampleKind; split: Split; label: string }[] = [
  { kind: "sft", split: "train", label: "Answers to learn (supervised fine-tuning), for training" },
  { kind: "sft", split: "test", label: "Answers to learn, held out for testing" },
  {
    kind: "preference",
    split: "train",
    label: "Preferred and rejected answers (DPO and similar), for training",
  },
  { kind: "preference", split: "test", label: "Preferred and rejected answers, held out for testing" },
];

/** The training export's choices, from the page's query (defaults: the default model's format, 10% held out). */
function trainingChoices(q: Record<string, string>) {
  const percent = Number(q.test ?? 10);
  return {
    format: q.format ?? "",
    testPercent: Number.isFinite(percent) ? Math.min(50, Math.max(0, Math.round(percent))) : 10,
    references: q.chosen ? q.sources === "on" : true,
  };
}

const AUDIT_PAGE_SIZE = 100;

function field(form: Record<string, unknown>, name: string): string {
  const value = form[name];
  return typeof value === "string" ? value : "";
}

function parseDay(raw: string | undefined, endOfDay: boolean): Date | undefined {
  if (!raw || !/^\d{4}-\d{2}-\d{2}$/.test(raw)) return undefined;
  const day = new Date(`${raw}T00:00:00Z`);
  if (Number.isNaN(day.getTime())) return undefined;
  return endOfDay ? new Date(day.getTime() + 86_400_000) : day;
}

/** The admin routes. */
export function adminRoutes(deps: AdminDeps): Hono {
  const app = new Hono();
  const { db, guards } = deps;
  const adminsOnly = guards.role(["admin"], "administrators");
  app.use("/admin", adminsOnly);
  app.use("/admin/*", adminsOnly);

  const showUsers = async (c: Context, form: NewUserForm | null, status: 200 | 422 = 200) =>
    c.html(
      usersPage(deps.pageContext(c, "/admin"), {
        users: await listUsers(db),
        me: signedInUser(c).id,
        form: form ?? { email: "", name: "", role: "clinician", errors: [] },
        saved: c.req.query("saved") ?? null,
      }),
      status,
    );

  app.get("/admin", (c) => c.redirect("/admin/users", 303));
  app.get("/admin/users", (c) => showUsers(c, null));

  app.post("/admin/users", async (c) => {
    const { values, account, errors } = readAccountForm(await c.req.parseBody(), {
      role: true,
      confirm: false,
    });
    const view: NewUserForm = { ...values, errors };
    // Told at once with the form's other problems, whatever they are.
    const email = normaliseEmail(values.email);
    if (email && await findUserByEmail(db, email)) {
      view.errors.push(`There is already an account for ${email}`);
    }
    if (!account || view.errors.length > 0) return showUsers(c, view, 422);
    const { role } = account;
    const user = await createUser(db, {
      email: account.email,
      name: account.name,
      role,
      passwordHash: await hashPassword(account.password, deps.passwordCost ?? DEFAULT_COST),
    });
    if (!user) return showUsers(c, { ...view, errors: [`There is already an account for ${email}`] }, 422);
    await guards.record(c, { action: "user.create", objectType: "user", objectId: user.id, outcome: role });
    return c.redirect(`/admin/users?saved=${encodeURIComponent(`Added ${user.email} (${role})`)}`, 303);
  });

  app.post("/admin/users/:userId/:change{disable|enable|role|signout}", async (c) => {
    const target = await getUser(db, c.req.param("userId"));
    if (!target) throw new HTTPException(404, { message: "There is no such user." });
    const me = signedInUser(c);
    const change = c.req.param("change");
    const form = await c.req.parseBody();
    const lastAdmin = target.role === "admin" && !target.disabledAt && await countActiveAdmins(db) <= 1;
    let message: string;
    if (change === "disable") {
      if (target.id === me.id) {
        throw new HTTPException(409, { message: "You cannot disable your own account." });
      }
      if (lastAdmin) throw new HTTPException(409, { message: "This is the last active administrator." });
      const ids = await revokeUserSignIns(db, target.id);
      await setUserDisabled(db, target.id, true);
      deps.guard.revoke(ids);
      message = `Disabled ${target.email} and signed them out everywhere`;
    } else if (change === "enable") {
      await setUserDisabled(db, target.id, false);
      message = `Enabled ${target.email}`;
    } else if (change === "signout") {
      deps.guard.revoke(await revokeUserSignIns(db, target.id));
      message = `Signed ${target.email} out everywhere`;
    } else {
      const role = field(form, "role") as UserRole;
      if (!USER_ROLES.includes(role)) {
        throw new HTTPException(422, { message: `Choose a role: ${USER_ROLES.join(", ")}` });
      }
      if (lastAdmin && role !== "admin") {
        throw new HTTPException(409, {
          message: "This is the last active administrator; make another first.",
        });
      }
      await setUserRole(db, target.id, role);
      message = `${target.email} is now ${role === "admin" ? "an" : "a"} ${role}`;
    }
    await guards.record(c, {
      action: `user.${change}`,
      objectType: "user",
      objectId: target.id,
      outcome: change === "role" ? field(form, "role") : undefined,
    });
    return c.redirect(`/admin/users?saved=${encodeURIComponent(message)}`, 303);
  });

  app.get("/admin/audit", guards.audit("audit.read"), async (c) => {
    const q = c.req.query();
    const user = q.user ? await findUserByEmail(db, q.user.trim().toLowerCase()) : null;
    const before = Number(q.before);
    const filter: AuditFilter = {
      userId: user?.id,
      action: q.action?.trim() || undefined,
      objectType: q.type?.trim() || undefined,
      objectId: q.object?.trim() || undefined,
      requestId: q.request?.trim() || undefined,
      since: parseDay(q.from, false),
      until: parseDay(q.to, true),
      before: Number.isSafeInteger(before) && before > 0 ? before : undefined,
    };
    const entries = q.user && !user ? [] : await listAudit(db, filter, AUDIT_PAGE_SIZE + 1);
    const shown = entries.slice(0, AUDIT_PAGE_SIZE);
    return c.html(auditPage(deps.pageContext(c, "/admin"), {
      entries: shown,
      names: await auditObjectNames(db, shown),
      query: {
        user: q.user ?? "",
        action: q.action ?? "",
        type: q.type ?? "",
        object: q.object ?? "",
        request: q.request ?? "",
        from: q.from ?? "",
        to: q.to ?? "",
      },
      unknownUser: Boolean(q.user && !user),
      nextBefore: entries.length > AUDIT_PAGE_SIZE ? entries[AUDIT_PAGE_SIZE - 1].id : null,
    }));
  });

  /** Runs the export over the feedback in the database, handing each line of the files asked for to keep. */
  const runTrainingExport = async (
    q: Record<string, string>,
    keep: (kind: ExampleKind, split: Split, line: string) => void,
  ) => {
    const choices = trainingChoices(q);
    const chosen = chooseTemplate(choices.format || null, deps.models);
    if ("error" in chosen) {
      return { choices, error: chosen.error, counts: null, skipped: {}, conversations: 0 };
    }
    const writer = trainingWriter({
      template: chosen.template,
      testFraction: choices.testPercent / 100,
      seed: "rounds",
      write: keep,
    });
    const result = await exportFeedback(db, writer, {
      systemPrompt: deps.systemPrompt,
      references: choices.references,
    });
    return { choices, error: null, counts: writer.counts, ...result };
  };
  const query = (choices: ReturnType<typeof trainingChoices>) =>
    new URLSearchParams({
      ...(choices.format ? { format: choices.format } : {}),
      test: String(choices.testPercent),
      ...(choices.references ? { sources: "on" } : {}),
      chosen: "1",
    }).toString();

  app.get("/admin/training", async (c) => {
    const result = await runTrainingExport(c.req.query(), () => {});
    const { choices } = result;
    const formats = [
      { value: "", label: "The default model's format" },
      ...deps.models.list().map((m) => ({
        value: `model:${m.id}`,
        label: `${m.label}'s format (${m.templateName})`,
      })),
      ...Object.keys(BUILTIN_TEMPLATES).map((name) => ({
        value: name,
        label: name === "chat" ? "chat: conversational messages" : name,
      })),
    ];
    return c.html(
      trainingPage(deps.pageContext(c, "/admin"), {
        formats,
        format: choices.format,
        testPercent: choices.testPercent,
        references: choices.references,
        files: TRAINING_FILES.map(({ kind, split, label }) => ({
          name: `${kind}-${split}.jsonl`,
          label,
          records: result.counts?.written[kind][split] ?? 0,
          href: `/admin/training/${kind}-${split}.jsonl?${query(choices)}`,
        })),
        conversations: result.conversations,
        duplicates: result.counts?.duplicates ?? 0,
        skipped: Object.entries(result.skipped),
        error: result.error,
      }),
      result.error ? 422 : 200,
    );
  });

  app.get("/admin/evals", async (c) => {
    return c.html(evalsPage(deps.pageContext(c, "/admin"), { runs: await latestAnswerEvals(db, 20) }));
  });

  app.get(
    "/admin/training/:file",
    guards.audit("training.export", { type: "training", param: "file" }),
    async (c) => {
      const file = TRAINING_FILES.find((f) => `${f.kind}-${f.split}.jsonl` === c.req.param("file"));
      if (!file) throw new HTTPException(404, { message: "There is no such training file." });
      const lines: string[] = [];
      const result = await runTrainingExport(c.req.query(), (kind, split, line) => {
        if (kind === file.kind && split === file.split) lines.push(line);
      });
      if (result.error) throw new HTTPException(422, { message: result.error });
      return c.body(lines.join(""), 200, {
        "content-type": "application/x-ndjson; charset=utf-8",
        "content-disposition": `attachment; filename="rounds-${file.kind}-${file.split}.jsonl"`,
        "cache-control": "no-store",
      });
    },
  );

  return app;
}
