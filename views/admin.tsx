/**
 * Administration pages: users, the audit log, the training data from clinicians' feedback, and answer quality.
 */
import { type AnswerFigures, FIGURE_ROWS } from "../chat/answer_scores.ts";
import { CsrfField } from "./csrf.tsx";
import { renderPage } from "./layout.tsx";
import type { PageContext } from "./page.ts";

/** What each audited action is, in words (the filter still takes the names in the hover text). */
const ACTION_LABELS: Record<string, string> = {
  "access.denied": "Refused: not theirs",
  "audit.read": "Read the audit log",
  "case.add_examples": "Added the example cases",
  "case.delete": "Deleted a case",
  "case.duplicate": "Duplicated a case",
  "case.export": "Exported a case",
  "case.generate": "Generated a case",
  "case.import": "Imported a case",
  "case.read": "Opened a case",
  "case.read_version": "Opened an old version of a case",
  "case.restore": "Restored a version of a case",
  "case.share": "Changed a case's sharing",
  "case.update": "Edited a case",
  "document.delete": "Deleted a document",
  "document.reingest": "Ingested a document again",
  "document.upload": "Uploaded a document",
  "login.failed": "Sign-in failed",
  "login.limited": "Sign-in blocked: too many attempts",
  "login.succeeded": "Signed in",
  "logout": "Signed out",
  "message.continue": "Continued a reply",
  "message.create": "Sent a message",
  "message.failed": "A reply failed",
  "message.feedback": "Rated or corrected a reply",
  "message.read": "Followed a reply",
  "message.regenerate": "Regenerated a reply",
  "practice.debrief": "Ended a practice and got the debrief",
  "practice.read": "Read a debrief",
  "practice.start": "Started a practice",
  "session.clear": "Cleared a chat",
  "session.create": "Started a chat",
  "session.delete": "Deleted a chat",
  "session.export": "Exported a chat",
  "training.export": "Downloaded training data",
  "session.search": "Searched their chats",
  "session.read": "Opened a chat",
  "session.rename": "Renamed a chat",
  "session.settings": "Changed a chat's settings",
  "session.stop": "Stopped a reply",
  "user.create": "Created an account",
  "user.disable": "Disabled an account",
  "user.enable": "Enabled an account",
  "user.role": "Changed an account's role",
  "user.signout": "Signed an account out everywhere",
};

const OBJECT_LABELS: Record<string, string> = {
  session: "Chat",
  message: "Reply",
  case: "Case",
  user: "Account",
  training: "Training file",
  document: "Document",
};

/** An entry's outcome in words: an HTTP status says how the request went; other outcomes are shown as kept. */
function outcomeLabel(outcome: string | null): string {
  if (!outcome) return "";
  if (!/^\d{3}$/.test(outcome)) return outcome;
  const status = Number(outcome);
  const words = status < 400
    ? "done"
    : status === 401
    ? "not signed in"
    : status === 403
    ? "refused"
    : status === 404
    ? "not found"
    : status === 409
    ? "conflict"
    : status === 413
    ? "too large"
    : status === 422
    ? "invalid input"
    : status === 429
    ? "limit reached"
    : status >= 500
    ? "server error"
    : "refused";
  return `${words} (${status})`;
}

/** A user as the admin page lists them. */
export interface AdminUserRow {
  id: string;
  email: string;
  name: string | null;
  role: "clinician" | "educator" | "admin";
  disabledAt: Date | null;
  lastLoginAt: Date | null;
  createdAt: Date;
}

/** The add-user form's values and problems. */
export interface NewUserForm {
  email: string;
  name: string;
  role: "clinician" | "educator" | "admin";
  errors: string[];
}

const ROLES = ["clinician", "educator", "admin"] as const;
const ROLE_HELP = {
  clinician: "chats with the assistant; reads and practises shared cases",
  educator: "also writes, shares and exports teaching cases",
  admin: "also manages users and reads the audit log",
};

function when(date: Date | null): string {
  return date ? date.toISOString().replace("T", " ").slice(0, 16) + " UTC" : "never";
}

function AdminTabs(props: { current: "users" | "audit" | "training" | "evals" }) {
  const current = (tab: typeof props.current) => props.current === tab ? "page" : undefined;
  return (
    <nav class="tabs" aria-label="Administration">
      <a href="/admin/users" aria-current={current("users")}>Users</a>
      <a href="/admin/audit" aria-current={current("audit")}>Audit log</a>
      <a href="/admin/training" aria-current={current("training")}>Training data</a>
      <a href="/admin/evals" aria-current={current("evals")}>Answer quality</a>
    </nav>
  );
}

/** Users: the list with per-user actions, and the add-user form. */
export function usersPage(
  page: PageContext,
  view: { users: AdminUserRow[]; me: string; form: NewUserForm; saved: string | null },
): string {
  return renderPage(
    page,
    "Users",
    <section class="admin">
      <h1>Administration</h1>
      <AdminTabs current="users" />
      {view.saved ? <p class="notice success" role="status">{view.saved}</p> : null}
      <div class="table-scroll" tabindex={0} role="region" aria-label="Users">
        <table class="users data-table">
          <caption>{view.users.length} account{view.users.length === 1 ? "" : "s"}</caption>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Last sign-in</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {view.users.map((u) => (
              <tr class={u.disabledAt ? "disabled" : undefined}>
                <td>{u.email}{u.id === view.me ? <small>(you)</small> : null}</td>
                <td>{u.name ?? ""}</td>
                <td>
                  <form method="post" action={`/admin/users/${u.id}/role`} class="inline-form">
                    <CsrfField />
                    <label class="sr-only" for={`role-${u.id}`}>Role of {u.email}</label>
                    <select name="role" id={`role-${u.id}`}>
                      {ROLES.map((r) => <option value={r} selected={r === u.role}>{r}</option>)}
                    </select>
                    <button type="submit" class="secondary">Change</button>
                  </form>
                </td>
                <td>{u.disabledAt ? `Disabled ${when(u.disabledAt)}` : "Active"}</td>
                <td>{when(u.lastLoginAt)}</td>
                <td class="actions">
                  {u.id === view.me ? null : (
                    <form
                      method="post"
                      action={`/admin/users/${u.id}/${u.disabledAt ? "enable" : "disable"}`}
                      class="inline-form"
                      data-confirm={u.disabledAt
                        ? undefined
                        : `Disable ${u.email}? They are signed out at once and cannot sign in until enabled again.`}
                    >
                      <CsrfField />
                      <button type="submit" class={u.disabledAt ? "secondary" : "danger"}>
                        {u.disabledAt ? "Enable" : "Disable"}
                      </button>
                    </form>
                  )}
                  {u.disabledAt
                    ? null
                    : (
                      <form method="post" action={`/admin/users/${u.id}/signout`} class="inline-form">
                        <CsrfField />
                        <button type="submit" class="secondary">Sign out everywhere</button>
                      </form>
                    )}
                  <a href={`/admin/audit?user=${encodeURIComponent(u.email)}`}>Activity</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2 id="add-user">Add a user</h2>
      {view.form.errors.length > 0
        ? (
          <ul class="field-errors" role="alert">
            {view.form.errors.map((e) => <li>{e}</li>)}
          </ul>
        )
        : null}
      <form method="post" action="/admin/users" class="auth-form" aria-labelledby="add-user">
        <CsrfField />
        <label>
          Email
          <input type="email" name="email" value={view.form.email} required autocomplete="off" />
        </label>
        <label>
          Name
          <input type="text" name="name" value={view.form.name} maxlength={120} autocomplete="off" />
        </label>
        <fieldset>
          <legend>Role</legend>
          {ROLES.map((r) => (
            <label class="choice">
              <input type="radio" name="role" value={r} checked={r === view.form.role} /> {r}{" "}
              <small>({ROLE_HELP[r]})</small>
            </label>
          ))}
        </fieldset>
        <label>
          First password <small>(at least 12 characters; tell it to them in person)</small>
          <input type="password" name="password" minlength={12} required autocomplete="new-password" />
        </label>
        <button type="submit">Add the user</button>
      </form>
    </section>,
  );
}

/** One audit entry as listed. */
export interface AuditRow {
  id: number;
  at: Date;
  actor: string;
  action: string;
  objectType: string | null;
  objectId: string | null;
  address: string | null;
  outcome: string | null;
  requestId?: string | null;
}

/** The audit log with its filters. */
export function auditPage(
  page: PageContext,
  view: {
    entries: AuditRow[];
    /** What each entry's object is called now, keyed "type:id". */
    names?: Map<string, string>;
    query: {
      user: string;
      action: string;
      type: string;
      object: string;
      request: string;
      from: string;
      to: string;
    };
    unknownUser: boolean;
    nextBefore: number | null;
  },
): string {
  const q = view.query;
  const next = view.nextBefore === null ? null : "/admin/audit?" + new URLSearchParams({
    ...Object.fromEntries(Object.entries(q).filter(([, v]) => v)),
    before: String(view.nextBefore),
  });
  return renderPage(
    page,
    "Audit log",
    <section class="admin">
      <h1>Administration</h1>
      <AdminTabs current="audit" />
      <p class="muted">
        Every read and change of sessions and cases, every export, sign-in and admin action. Entries cannot be
        changed or deleted.
      </p>
      <form class="audit-filter" method="get" action="/admin/audit">
        <label>
          User (email) <input type="search" name="user" value={q.user} />
        </label>
        <label>
          Action <input type="search" name="action" value={q.action} placeholder="case. or login.failed" />
        </label>
        <label>
          Object type
          <select name="type">
            {["", "session", "message", "case", "user"].map((t) => (
              <option value={t} selected={t === q.type}>{t || "any"}</option>
            ))}
          </select>
        </label>
        <label>
          Object id <input type="search" name="object" value={q.object} />
        </label>
        <label>
          Request id <input type="search" name="request" value={q.request} />
        </label>
        <label>
          From <input type="date" name="from" value={q.from} />
        </label>
        <label>
          To <input type="date" name="to" value={q.to} />
        </label>
        <button type="submit">Filter</button>
        <a href="/admin/audit">Clear</a>
      </form>
      {view.unknownUser ? <p class="notice warning">There is no user {q.user}.</p> : null}
      {view.entries.length === 0
        ? <p class="empty">No entries match these filters.</p>
        : (
          <div class="table-scroll" tabindex={0} role="region" aria-label="Audit log">
            <table class="audit data-table">
              <thead>
                <tr>
                  <th scope="col">When (UTC)</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">Object</th>
                  <th scope="col">From</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody>
                {view.entries.map((e) => (
                  <tr>
                    <td>{e.at.toISOString().replace("T", " ").slice(0, 19)}</td>
                    <td>{e.actor}</td>
                    <td>
                      <span title={e.action}>{ACTION_LABELS[e.action] ?? e.action}</span>
                    </td>
                    <td>
                      {e.objectType && e.objectId
                        ? (
                          <a
                            href={`/admin/audit?object=${encodeURIComponent(e.objectId)}`}
                            title={`Every entry for this ${
                              (OBJECT_LABELS[e.objectType] ?? e.objectType).toLowerCase()
                            }`}
                          >
                            {OBJECT_LABELS[e.objectType] ?? e.objectType}:{" "}
                            {view.names?.get(`${e.objectType}:${e.objectId}`) ?? `${e.objectId.slice(0, 8)}…`}
                          </a>
                        )
                        : ""}
                    </td>
                    <td>{e.address ?? ""}</td>
                    <td>
                      {outcomeLabel(e.outcome)}
                      {e.requestId
                        ? (
                          <>
                            {" "}
                            <a
                              class="request-id"
                              href={`/admin/audit?request=${encodeURIComponent(e.requestId)}`}
                              title={`Request ${e.requestId}: every entry it made`}
                            >
                              request {e.requestId.slice(0, 8)}
                            </a>
                          </>
                        )
                        : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      {next
        ? (
          <p>
            <a href={next}>Older entries</a>
          </p>
        )
        : null}
    </section>,
  );
}

/** What the training-data page shows: the export's counts for the chosen format, and the files to download. */
export interface TrainingView {
  formats: { value: string; label: string }[];
  /** The chosen format's value ("" for the default). */
  format: string;
  /** Held out, in percent. */
  testPercent: number;
  references: boolean;
  /** Records per file ("sft-train.jsonl" …), in file order. */
  files: { name: string; label: string; records: number; href: string }[];
  conversations: number;
  duplicates: number;
  skipped: [string, number][];
  /** A choice that could not be used, in words. */
  error: string | null;
}

/** A file name that may wrap after its hyphens and dots only (on a phone), never mid-word. */
function breakable(name: string) {
  return name.split(/(?<=[-.])/).map((part, i) => i ? [<wbr />, part] : part);
}

/** Training data: clinicians' feedback as JSON Lines for the next fine-tune. */
export function trainingPage(page: PageContext, view: TrainingView): string {
  const total = view.files.reduce((n, f) => n + f.records, 0);
  return renderPage(
    page,
    "Training data",
    <section class="admin">
      <h1>Administration</h1>
      <AdminTabs current="training" />
      <p class="muted">
        Answers clinicians marked good, their written corrections, and a bad version of an answer beside a
        good one, as training data for the next fine-tune (JSON Lines in the shapes TRL's trainers read).
        Names, dates, numbers and other identifiers are replaced with placeholders; duplicates are left out;
        whole conversations are held out for testing. How to train on it, and to serve the result:
        docs/training.md in the Rounds repository.
      </p>
      <form class="audit-filter" method="get" action="/admin/training">
        <label>
          Format
          <select name="format">
            {view.formats.map((f) => (
              <option value={f.value} selected={f.value === view.format}>{f.label}</option>
            ))}
          </select>
        </label>
        <label>
          Held out (%)
          <input type="number" name="test" min="0" max="50" step="1" value={String(view.testPercent)} />
        </label>
        <label class="checkbox">
          <input type="checkbox" name="sources" value="on" checked={view.references} />
          Include the quoted sources in prompts
        </label>
        <input type="hidden" name="chosen" value="1" />
        <button type="submit">Update</button>
      </form>
      {view.error ? <p class="notice warning" role="alert">{view.error}</p> : null}
      {total === 0
        ? (
          <p class="empty">
            No training data yet. When clinicians mark an answer good (thumbs up) or write a correction under
            it, it appears here. A dataset file can be converted with{" "}
            <code>deno task export training --dataset</code>.
          </p>
        )
        : (
          <div class="table-scroll" tabindex={0} role="region" aria-label="Training data files">
            <table class="data-table training-files">
              <thead>
                <tr>
                  <th scope="col">File</th>
                  <th scope="col">What it holds</th>
                  <th scope="col">Records</th>
                </tr>
              </thead>
              <tbody>
                {view.files.map((f) => (
                  <tr>
                    <td>
                      {f.records > 0
                        ? <a href={f.href} download={f.name}>{breakable(f.name)}</a>
                        : breakable(f.name)}
                    </td>
                    <td>{f.label}</td>
                    <td>{f.records}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      <p class="muted">
        From {view.conversations} conversation{view.conversations === 1 ? "" : "s"} with feedback
        {view.duplicates
          ? `; ${view.duplicates} duplicate record${view.duplicates === 1 ? "" : "s"} left out`
          : ""}.
      </p>
      {view.skipped.length
        ? (
          <ul class="muted">
            {view.skipped.map(([reason, n]) => <li>Not used ({n}): {reason}</li>)}
          </ul>
        )
        : null}
    </section>,
  );
}

/** One run of `deno task eval answers`, as the answer-quality page lists it. */
export interface AnswerEvalRow {
  id: string;
  createdAt: Date;
  questionSet: string;
  questions: number;
  figures: AnswerFigures[];
}

/** Answer quality: the latest evaluation runs, each model's figures side by side. */
export function evalsPage(page: PageContext, view: { runs: AnswerEvalRow[] }): string {
  return renderPage(
    page,
    "Answer quality",
    <section class="admin">
      <h1>Administration</h1>
      <AdminTabs current="evals" />
      <p class="muted">
        How the configured models answer a question set through the whole pipeline (retrieval, template,
        model), scored by word overlap with reference answers, citations, grounding in the quoted sources, and
        safety signs. The scores are lexical: they compare models and templates on the same questions; they do
        not judge clinical correctness. Runs come from <code>deno task eval answers</code>.
      </p>
      {view.runs.length === 0
        ? (
          <p class="empty">
            No evaluation has been run yet. Run <code>deno task eval answers</code>{" "}
            on the server (or with the same DATABASE_URL) to compare the configured models; the figures appear
            here.
          </p>
        )
        : view.runs.map((run) => (
          <section class="eval-run">
            <h2 id={`run-${run.id}`}>
              {when(run.createdAt)}: {run.questions} question{run.questions === 1 ? "" : "s"},{" "}
              {run.questionSet}
            </h2>
            <div class="table-scroll" tabindex={0} role="region" aria-labelledby={`run-${run.id}`}>
              <table class="data-table eval-figures">
                <thead>
                  <tr>
                    <th scope="col">Figure</th>
                    {run.figures.map((f) => <th scope="col">{f.label}</th>)}
                  </tr>
                </thead>
                <tbody>
                  {FIGURE_ROWS.map(([label, cell]) => (
                    <tr>
                      <th scope="row">{label}</th>
                      {run.figures.map((f) => <td>{cell(f)}</td>)}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        ))}
    </section>,
  );
}
