/**
 * Administration pages: users and the audit log.
 */
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

function AdminTabs(props: { current: "users" | "audit" }) {
  return (
    <nav class="tabs" aria-label="Administration">
      <a href="/admin/users" aria-current={props.current === "users" ? "page" : undefined}>Users</a>
      <a href="/admin/audit" aria-current={props.current === "audit" ? "page" : undefined}>Audit log</a>
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
}

/** The audit log with its filters. */
export function auditPage(
  page: PageContext,
  view: {
    entries: AuditRow[];
    /** What each entry's object is called now, keyed "type:id". */
    names?: Map<string, string>;
    query: { user: string; action: string; type: string; object: string; from: string; to: string };
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
                    <td>{outcomeLabel(e.outcome)}</td>
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
