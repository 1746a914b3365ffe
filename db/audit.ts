/**
 * The audit log: append and read. There is deliberately no update or delete here (and the database refuses
 * both, see migration 0009).
 */
import { and, desc, eq, gte, inArray, like, lt, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { isUuid } from "./ids.ts";
import { auditLog, cases, documents, users } from "./schema.ts";
import { builtOnce } from "./statements.ts";

/** One stored audit entry. */
export type AuditEntry = typeof auditLog.$inferSelect;

/** What happened: who, what, to which object, from where, with what outcome. */
export interface AuditEvent {
  userId?: string | null;
  actor: string;
  action: string;
  objectType?: string | null;
  objectId?: string | null;
  address?: string | null;
  outcome?: string | null;
  /** The HTTP request that did it (X-Request-Id); absent for tasks and background work. */
  requestId?: string | null;
}

/** Appends one entry. */
export async function recordAudit(db: Db, event: AuditEvent): Promise<void> {
  await auditStatement(db).execute({
    userId: event.userId ?? null,
    actor: event.actor.slice(0, 320),
    action: event.action,
    objectType: event.objectType ?? null,
    objectId: event.objectId?.slice(0, 200) ?? null,
    address: event.address?.slice(0, 100) ?? null,
    outcome: event.outcome?.slice(0, 100) ?? null,
    requestId: event.requestId?.slice(0, 64) ?? null,
  });
}

/** recordAudit's insert (after most requests that change or read patient data). */
const auditStatement = builtOnce((db) =>
  db.insert(auditLog).values({
    userId: sql.placeholder("userId"),
    actor: sql.placeholder("actor"),
    action: sql.placeholder("action"),
    objectType: sql.placeholder("objectType"),
    objectId: sql.placeholder("objectId"),
    address: sql.placeholder("address"),
    outcome: sql.placeholder("outcome"),
    requestId: sql.placeholder("requestId"),
  }).prepare("record_audit")
);

/** Filters for the admin page; every one optional. */
export interface AuditFilter {
  userId?: string;
  /** An action, or a prefix ending in "." ("case." for every case action). */
  action?: string;
  objectType?: string;
  objectId?: string;
  /** Entries of one HTTP request (its X-Request-Id, as an error page shows it). */
  requestId?: string;
  since?: Date;
  until?: Date;
  /** Entries older than this id (the next page). */
  before?: number;
}

/** Entries matching a filter, newest first. */
export async function listAudit(db: Db, filter: AuditFilter, limit = 100): Promise<AuditEntry[]> {
  const conditions: SQL[] = [];
  if (filter.userId && isUuid(filter.userId)) conditions.push(eq(auditLog.userId, filter.userId));
  if (filter.action) {
    conditions.push(
      filter.action.endsWith(".")
        ? like(auditLog.action, `${filter.action.replace(/[%_\\]/g, "\\$&")}%`)
        : eq(auditLog.action, filter.action),
    );
  }
  if (filter.objectType) conditions.push(eq(auditLog.objectType, filter.objectType));
  if (filter.objectId) conditions.push(eq(auditLog.objectId, filter.objectId));
  if (filter.requestId) conditions.push(eq(auditLog.requestId, filter.requestId));
  if (filter.since) conditions.push(gte(auditLog.at, filter.since));
  if (filter.until) conditions.push(lt(auditLog.at, filter.until));
  if (filter.before) conditions.push(lt(auditLog.id, filter.before));
  return await db.select().from(auditLog).where(conditions.length ? and(...conditions) : undefined)
    .orderBy(desc(auditLog.id)).limit(limit);
}

/**
 * What the objects of some entries are called now: a case's title, an account's email; keyed "type:id".
 * Chats are not named: their titles come from clinicians' questions, which administrators do not read.
 * Objects deleted since have no name.
 */
export async function auditObjectNames(db: Db, entries: AuditEntry[]): Promise<Map<string, string>> {
  const ids = (type: string) => [
    ...new Set(
      entries.filter((e) => e.objectType === type && e.objectId && isUuid(e.objectId)).map((e) =>
        e.objectId!
      ),
    ),
  ];
  const [caseIds, userIds, documentIds] = [ids("case"), ids("user"), ids("document")];
  const [caseRows, userRows, documentRows] = await Promise.all([
    caseIds.length
      ? db.select({ id: cases.id, name: cases.title }).from(cases).where(inArray(cases.id, caseIds))
      : [],
    userIds.length
      ? db.select({ id: users.id, name: users.email }).from(users).where(inArray(users.id, userIds))
      : [],
    documentIds.length
      ? db.select({ id: documents.id, name: documents.fileName }).from(documents)
        .where(inArray(documents.id, documentIds))
      : [],
  ]);
  const names = new Map<string, string>();
  for (const r of caseRows) names.set(`case:${r.id}`, r.name);
  for (const r of userRows) names.set(`user:${r.id}`, r.name);
  for (const r of documentRows) names.set(`document:${r.id}`, r.name);
  return names;
}
