/**
 * Who may touch which object, and the audit trail of who did. Every route that takes a session or case id
 * passes through a guard here first: another user's object answers 404, exactly like one that does not exist.
 */
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { type AuditEvent, recordAudit } from "../db/audit.ts";
import { caseAccess } from "../db/cases.ts";
import type { Db } from "../db/client.ts";
import { isUuid } from "../db/ids.ts";
import type { UserRole } from "../db/schema.ts";
import { type ChatSession, getSession } from "../db/sessions.ts";
import { clientAddress, signedInUser } from "./auth.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The session a /sessions/:id route acts on, read and owner-checked by guardSession. */
    chatSession: ChatSession;
  }
}

/** Roles that write cases. */
export const CASE_WRITERS: readonly UserRole[] = ["educator", "admin"];

const NO_SESSION = "This session does not exist. It may have been deleted.";
const NO_CASE = "This case is not in the library. It may have been deleted.";

/** What the guards need. */
export interface AccessDeps {
  db: Db;
  trustProxy: boolean;
}

function audit(c: Context, deps: AccessDeps, event: Omit<AuditEvent, "actor" | "userId" | "address">) {
  const user = c.get("auth")?.user;
  return recordAudit(deps.db, {
    ...event,
    userId: user?.id ?? null,
    actor: user?.email ?? "anonymous",
    address: clientAddress(c, deps.trustProxy),
  });
}

/** The owner-checked session of a /sessions/:id route; 404 if guardSession did not pass it (fails closed). */
export function guardedSession(c: Context): ChatSession {
  const session = c.get("chatSession");
  if (!session) throw new HTTPException(404, { message: NO_SESSION });
  return session;
}

/** Chat sessions (and practice sessions) are visible to their owner only; admins included. */
export function guardSession(deps: AccessDeps): MiddlewareHandler {
  return async (c, next) => {
    const id = c.req.param("id") ?? "";
    const user = signedInUser(c);
    const session = isUuid(id) ? await getSession(deps.db, id) : null;
    if (!session || session.ownerId !== user.id) {
      if (session) {
        await audit(c, deps, {
          action: "access.denied",
          objectType: "session",
          objectId: id,
          outcome: "404",
        });
      }
      throw new HTTPException(404, { message: NO_SESSION });
    }
    // The handler uses the row read here instead of reading it again.
    c.set("chatSession", session);
    await next();
  };
}

/** Actions on a case anyone who can see it may take (the rest change the case and need its owner or an admin). */
const CASE_READER_ACTIONS = new Set(["practice"]);
/** Actions on a case an educator may take on any case they can see. */
const CASE_WRITER_ACTIONS = new Set(["duplicate"]);

/**
 * Cases: visible to their owner, and to everyone when shared or an example. Changing one needs its owner or an
 * admin; a visible case someone else owns answers 403 (it is no secret), an invisible one 404.
 */
export function guardCase(deps: AccessDeps): MiddlewareHandler {
  return async (c, next) => {
    const ref = c.req.param("ref") ?? c.req.param("id") ?? "";
    const id = ref.replace(/\.(json|md)$/, "");
    // /cases/new, /cases/import…: pages, not case ids; their own routes answer.
    if (!isUuid(id)) {
      if (/^[0-9a-f-]{30,}/i.test(id)) throw new HTTPException(404, { message: NO_CASE });
      return await next();
    }
    const user = signedInUser(c);
    const access = await caseAccess(deps.db, id);
    const visible = access !== null &&
      (access.ownerId === user.id || access.shared || access.ownerId === null);
    if (!visible) {
      if (access) {
        await audit(c, deps, { action: "access.denied", objectType: "case", objectId: id, outcome: "404" });
      }
      throw new HTTPException(404, { message: NO_CASE });
    }
    const action = c.req.path.split("/")[3] ?? "";
    const writes = c.req.method !== "GET" && c.req.method !== "HEAD";
    if (writes && !CASE_READER_ACTIONS.has(action)) {
      const mayWrite = user.role === "admin" ||
        (CASE_WRITER_ACTIONS.has(action) ? CASE_WRITERS.includes(user.role) : access.ownerId === user.id);
      if (!mayWrite) {
        throw new HTTPException(403, {
          message: CASE_WRITERS.includes(user.role)
            ? "Only the case's author (or an administrator) can change it. Duplicate it to make your own version."
            : "Clinicians can read and practise cases; writing them is for educators.",
        });
      }
    }
    // Editing forms are for those who may save them.
    if (!writes && (c.req.path.endsWith("/edit") || action === "delete")) {
      if (user.role !== "admin" && access.ownerId !== user.id) {
        throw new HTTPException(403, {
          message:
            "Only the case's author (or an administrator) can change it. Duplicate it to make your own.",
        });
      }
    }
    await next();
  };
}

/** What each route does, for the audit log: `METHOD path pattern` → action and the parameter naming the object. */
const AUDITED: Record<string, { action: string; type?: string; param?: string }> = {
  "GET /sessions/:id": { action: "session.read", type: "session", param: "id" },
  "POST /sessions": { action: "session.create", type: "session" },
  "POST /sessions/:id/messages": { action: "message.create", type: "session", param: "id" },
  "POST /sessions/:id/messages/:messageId/regenerate": {
    action: "message.regenerate",
    type: "message",
    param: "messageId",
  },
  "POST /sessions/:id/messages/:messageId/continue": {
    action: "message.continue",
    type: "message",
    param: "messageId",
  },
  "GET /sessions/:id/messages/:messageId/stream": {
    action: "message.read",
    type: "message",
    param: "messageId",
  },
  "POST /sessions/:id/messages/:messageId/feedback": {
    action: "message.feedback",
    type: "message",
    param: "messageId",
  },
  "POST /sessions/:id/stop": { action: "session.stop", type: "session", param: "id" },
  "POST /sessions/:id/settings": { action: "session.settings", type: "session", param: "id" },
  "POST /sessions/:id/rename": { action: "session.rename", type: "session", param: "id" },
  "POST /sessions/:id/clear": { action: "session.clear", type: "session", param: "id" },
  "POST /sessions/:id/delete": { action: "session.delete", type: "session", param: "id" },
  "DELETE /sessions/:id": { action: "session.delete", type: "session", param: "id" },
  "POST /sessions/:id/debrief": { action: "practice.debrief", type: "session", param: "id" },
  "GET /sessions/:id/debrief": { action: "practice.read", type: "session", param: "id" },
  "POST /cases": { action: "case.generate", type: "case" },
  "POST /cases/import": { action: "case.import", type: "case" },
  "POST /cases/examples": { action: "case.add_examples", type: "case" },
  "GET /cases/:ref": { action: "case.read", type: "case", param: "ref" },
  "GET /cases/:id/print": { action: "case.export", type: "case", param: "id" },
  "GET /cases/:id/versions/:version": { action: "case.read_version", type: "case", param: "id" },
  "POST /cases/:id/versions/:version/restore": { action: "case.restore", type: "case", param: "id" },
  "POST /cases/:id/duplicate": { action: "case.duplicate", type: "case", param: "id" },
  "POST /cases/:id/sections/:name": { action: "case.update", type: "case", param: "id" },
  "POST /cases/:id/share": { action: "case.share", type: "case", param: "id" },
  "POST /cases/:id/delete": { action: "case.delete", type: "case", param: "id" },
  "POST /cases/:id/practice": { action: "practice.start", type: "case", param: "id" },
  "GET /admin/audit": { action: "audit.read" },
};

/** Records every audited request a signed-in user makes, with its outcome (the HTTP status). */
export function auditTrail(deps: AccessDeps): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const user = c.get("auth")?.user;
    if (!user) return;
    const entry = AUDITED[`${c.req.method} ${c.req.routePath}`];
    // A 404 is either nothing there or someone else's object, which the guard records as access.denied.
    if (!entry || c.res.status === 404) return;
    let objectId = entry.param ? c.req.param(entry.param) ?? null : null;
    let action = entry.action;
    if (entry.param === "ref" && objectId) {
      if (/\.(json|md)$/.test(objectId)) action = "case.export";
      objectId = objectId.replace(/\.(json|md)$/, "");
    }
    // A created object is named by where the response sends the browser.
    const location = c.res.headers.get("location") ?? c.res.headers.get("hx-redirect");
    if (!objectId && location) {
      objectId = /^\/(?:sessions|cases)\/([0-9a-f-]{36})/.exec(location)?.[1] ?? null;
    }
    try {
      await audit(c, deps, {
        action,
        objectType: entry.type ?? null,
        objectId,
        outcome: String(c.res.status),
      });
    } catch (error) {
      console.error(`audit entry for ${action} failed:`, (error as Error).message);
    }
  };
}

/** Admin actions, logged by the admin routes themselves (they know the object and the change). */
export function auditAdmin(
  c: Context,
  deps: AccessDeps,
  event: { action: string; objectId: string; outcome?: string },
): Promise<void> {
  return audit(c, deps, { ...event, objectType: "user" });
}
