/**
 * Who may touch which object, and the audit trail of who did. Each route declares its own guards and audit label
 * where it is defined (`app.post(path, audit(...), ownChat, handler)`), so adding a route is one edit in one place:
 *
 * - `ownChat`: the chat named by `:id` belongs to the signed-in user; another user's answers 404, exactly like one
 *   that does not exist. The row is handed to the handler (`guardedChat(c)`) instead of being read twice.
 * - `caseFor(right)`: the case named by `:id` (or `:ref`, `…/<id>.json`) is visible to the user, and they hold
 *   `right` over it. A visible case they may not change answers 403 (it is no secret), an invisible one 404.
 * - `role(roles, who)`: only these roles (403 for the others).
 * - `audit(action, object)`: records the request and its outcome (the HTTP status) after it ran. Put it first in
 *   the chain so that a guard's refusal is recorded too.
 *
 * tests/guards_test.ts walks the app's routes and fails when a chat or case route has no guard, or a write has no
 * audit label.
 */
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { type AuditEvent, recordAudit } from "../db/audit.ts";
import { caseAccess } from "../db/cases.ts";
import { type Db, loggableMessage } from "../db/client.ts";
import { isUuid } from "../db/ids.ts";
import type { UserRole } from "../db/schema.ts";
import { type Chat, getChat } from "../db/chats.ts";
import { clientAddress, signedInUser } from "./auth.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The chat a /sessions/:id route acts on, read and owner-checked by ownChat. */
    chat: Chat;
  }
}

/** Roles that write cases. */
export const CASE_WRITERS: readonly UserRole[] = ["educator", "admin"];

const NO_CHAT = "This session does not exist. It may have been deleted.";
const NO_CASE = "This case is not in the library. It may have been deleted.";

/**
 * What a user may do to a case they can see:
 * - `read`: see it, export it, print it, practise it (anyone it is visible to);
 * - `duplicate`: make their own copy (educators and admins);
 * - `change`: edit, restore, share, delete, and open the forms that do so (its owner or an admin).
 */
export type CaseRight = "read" | "duplicate" | "change";

/** The object an audited route acts on: its type, and the route parameter naming it. */
export interface AuditedObject {
  type: "session" | "message" | "case" | "user" | "training" | "document";
  /** Without one, the object is the one the response sends the browser to (a created chat or case). */
  param?: string;
}

/** What kind of guard a middleware is (tests/guards_test.ts reads it off the app's routes). */
export type GuardKind = "chat" | "case" | "role" | "audit";
const KIND = Symbol("rounds.guard");

function tagged(kind: GuardKind, handler: MiddlewareHandler): MiddlewareHandler {
  return Object.assign(handler, { [KIND]: kind });
}

/** The guard kind of a route handler, or undefined for an ordinary handler. */
export function guardKind(handler: unknown): GuardKind | undefined {
  return (handler as { [KIND]?: GuardKind } | null)?.[KIND];
}

/** What the guards need. */
export interface AccessDeps {
  db: Db;
  trustProxy: number;
}

/** The guards of one app, handed to each route group. */
export interface Guards {
  ownChat: MiddlewareHandler;
  caseFor(right: CaseRight): MiddlewareHandler;
  role(roles: readonly UserRole[], who: string): MiddlewareHandler;
  audit(action: string | ((c: Context) => string), object?: AuditedObject): MiddlewareHandler;
  /** An audit entry a route writes itself, when the action depends on what it found (admin changes). */
  record(
    c: Context,
    event: { action: string; objectType: AuditedObject["type"]; objectId: string; outcome?: string },
  ): Promise<void>;
}

/** The owner-checked chat of a /sessions/:id route; 404 if ownChat did not pass it (fails closed). */
export function guardedChat(c: Context): Chat {
  const chat = c.get("chat");
  if (!chat) throw new HTTPException(404, { message: NO_CHAT });
  return chat;
}

/** Splits `:ref` (`<id>`, `<id>.json`, `<id>.md`) into the case id and the export format. */
export function caseRef(ref: string): { id: string; format: "json" | "md" | null } {
  const match = /^(.*?)(?:\.(json|md))?$/s.exec(ref)!;
  return { id: match[1], format: (match[2] as "json" | "md" | undefined) ?? null };
}

/** Builds the guards over one database. */
export function createGuards(deps: AccessDeps): Guards {
  const record = (c: Context, event: Omit<AuditEvent, "actor" | "userId" | "address">) => {
    const user = c.get("auth")?.user;
    return recordAudit(deps.db, {
      ...event,
      userId: user?.id ?? null,
      actor: user?.email ?? "anonymous",
      address: clientAddress(c, deps.trustProxy),
      requestId: c.get("requestId"),
    });
  };

  const ownChat = tagged("chat", async (c, next) => {
    const id = c.req.param("id") ?? "";
    const user = signedInUser(c);
    const chat = isUuid(id) ? await getChat(deps.db, id) : null;
    if (!chat || chat.ownerId !== user.id) {
      if (chat) {
        await record(c, { action: "access.denied", objectType: "session", objectId: id, outcome: "404" });
      }
      throw new HTTPException(404, { message: NO_CHAT });
    }
    c.set("chat", chat);
    await next();
  });

  const caseGuards = new Map<CaseRight, MiddlewareHandler>();
  const caseFor = (right: CaseRight): MiddlewareHandler => {
    const existing = caseGuards.get(right);
    if (existing) return existing;
    const guard = tagged("case", async (c, next) => {
      const { id } = caseRef(c.req.param("id") ?? c.req.param("ref") ?? "");
      if (!isUuid(id)) throw new HTTPException(404, { message: NO_CASE });
      const user = signedInUser(c);
      const access = await caseAccess(deps.db, id);
      const visible = access !== null &&
        (access.ownerId === user.id || access.shared || access.ownerId === null);
      if (!visible) {
        if (access) {
          await record(c, { action: "access.denied", objectType: "case", objectId: id, outcome: "404" });
        }
        throw new HTTPException(404, { message: NO_CASE });
      }
      const writer = CASE_WRITERS.includes(user.role);
      const allowed = right === "read" ||
        user.role === "admin" ||
        // Changing needs the author who is still a writer: an educator made a clinician keeps read access only.
        (right === "duplicate" ? writer : writer && access.ownerId === user.id);
      if (!allowed) {
        throw new HTTPException(403, {
          message: writer
            ? "Only the case's author (or an administrator) can change it. Duplicate it to make your own version."
            : "Clinicians can read and practise cases; writing them is for educators.",
        });
      }
      await next();
    });
    caseGuards.set(right, guard);
    return guard;
  };

  const role = (roles: readonly UserRole[], who: string) =>
    tagged("role", async (c, next) => {
      if (!roles.includes(signedInUser(c).role)) {
        throw new HTTPException(403, {
          message: `Only ${who} can do this. Ask an administrator if you need to.`,
        });
      }
      await next();
    });

  const audit = (label: string | ((c: Context) => string), object?: AuditedObject) =>
    tagged("audit", async (c, next) => {
      await next();
      // A 404 is either nothing there or someone else's object, which the guard records as access.denied.
      if (!c.get("auth")?.user || c.res.status === 404) return;
      let objectId = object?.param ? c.req.param(object.param) ?? null : null;
      if (objectId && object?.type === "case") objectId = caseRef(objectId).id;
      // A created object is named by where the response sends the browser.
      const location = c.res.headers.get("location") ?? c.res.headers.get("hx-redirect");
      if (object && !object.param && location) {
        objectId = /^\/(?:sessions|cases)\/([0-9a-f-]{36})/.exec(location)?.[1] ?? null;
      }
      const action = typeof label === "string" ? label : label(c);
      try {
        await record(c, {
          action,
          objectType: object?.type ?? null,
          objectId,
          outcome: String(c.res.status),
        });
      } catch (error) {
        console.error(`audit entry for ${action} failed:`, loggableMessage(error));
      }
    });

  return { ownChat, caseFor, role, audit, record: (c, event) => record(c, event) };
}
