/**
 * Accounts: users, signed-in sessions, rate-limit counters and the daily token budget. Everything that must
 * hold across instances lives here, in the database.
 */
import { and, asc, eq, gt, inArray, isNull, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { isUuid } from "./ids.ts";
import { rows } from "./migrate.ts";
import { authSessions, cases, chatSessions, rateLimits, tokenUsage, type UserRole, users } from "./schema.ts";

/** A stored user. */
export type User = typeof users.$inferSelect;

/** What request handling needs to know about the signed-in user. */
export interface SignedIn {
  user: Pick<User, "id" | "email" | "name" | "role">;
  /** The auth session's id (the SHA-256 of the cookie's token). */
  sessionId: string;
  csrfToken: string;
  lastSeenAt: Date;
}

/** Lower-cases and trims an email address; null when it does not look like one. */
export function normaliseEmail(raw: string): string | null {
  const email = raw.trim().toLowerCase();
  return /^[^\s@]{1,64}@[^\s@]{1,255}$/.test(email) && email.length <= 254 ? email : null;
}

/** True once any user exists (users are never deleted, so a true answer never changes). */
export async function hasUsers(db: Db): Promise<boolean> {
  const found = rows<{ one: number }>(await db.execute(sql`select 1 as one from ${users} limit 1`));
  return found.length > 0;
}

/** Creates a user; null when the email is taken. */
export async function createUser(
  db: Db,
  input: { email: string; name?: string | null; role: UserRole; passwordHash: string },
): Promise<User | null> {
  const [row] = await db.insert(users).values({
    email: input.email,
    name: input.name?.trim() || null,
    role: input.role,
    passwordHash: input.passwordHash,
  }).onConflictDoNothing().returning();
  return row ?? null;
}

/**
 * Creates the first admin, only while no user exists (two racing set-ups make one admin), and hands it the
 * sessions and cases written before accounts existed. Null when a user already exists.
 */
export async function createFirstAdmin(
  db: Db,
  input: { email: string; name?: string | null; passwordHash: string },
): Promise<User | null> {
  return await db.transaction(async (tx) => {
    await tx.execute(sql`lock table ${users} in exclusive mode`);
    if (await hasUsers(tx)) return null;
    const [admin] = await tx.insert(users).values({
      email: input.email,
      name: input.name?.trim() || null,
      role: "admin",
      passwordHash: input.passwordHash,
    }).returning();
    await tx.update(chatSessions).set({ ownerId: admin.id }).where(isNull(chatSessions.ownerId));
    await tx.update(cases).set({ ownerId: admin.id }).where(
      and(isNull(cases.ownerId), sql`${cases.origin} <> 'example'`),
    );
    return admin;
  });
}

/** A user by email, or null. */
export async function findUserByEmail(db: Db, email: string): Promise<User | null> {
  const [row] = await db.select().from(users).where(eq(users.email, email));
  return row ?? null;
}

/** A user by id, or null. */
export async function getUser(db: Db, id: string): Promise<User | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.select().from(users).where(eq(users.id, id));
  return row ?? null;
}

/** Every user, by email. */
export async function listUsers(db: Db): Promise<User[]> {
  return await db.select().from(users).orderBy(asc(users.email));
}

/** Disables or re-enables a user; disabling revokes every session at once. Null when there is no such user. */
export async function setUserDisabled(db: Db, id: string, disabled: boolean): Promise<User | null> {
  if (!isUuid(id)) return null;
  return await db.transaction(async (tx) => {
    const [row] = await tx.update(users).set({
      disabledAt: disabled ? sql`now()` : null,
      updatedAt: sql`now()`,
    }).where(eq(users.id, id)).returning();
    if (row && disabled) await revokeUserSessions(tx, id);
    return row ?? null;
  });
}

/** Changes a user's role. Null when there is no such user. */
export async function setUserRole(db: Db, id: string, role: UserRole): Promise<User | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.update(users).set({ role, updatedAt: sql`now()` }).where(eq(users.id, id))
    .returning();
  return row ?? null;
}

/** Replaces a user's password hash and signs them out everywhere. */
export async function setPasswordHash(db: Db, id: string, passwordHash: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  return await db.transaction(async (tx) => {
    const updated = await tx.update(users).set({ passwordHash, updatedAt: sql`now()` })
      .where(eq(users.id, id)).returning({ id: users.id });
    if (updated.length > 0) await revokeUserSessions(tx, id);
    return updated.length > 0;
  });
}

/** Active admins (the last one cannot be disabled or demoted). */
export async function countActiveAdmins(db: Db): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(users)
    .where(and(eq(users.role, "admin"), isNull(users.disabledAt)));
  return Number(row.n);
}

/** Records a new auth session for a user and stamps their last login. */
export async function createAuthSession(
  db: Db,
  input: {
    id: string;
    userId: string;
    csrfToken: string;
    absoluteMs: number;
    address: string | null;
    userAgent: string | null;
  },
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.insert(authSessions).values({
      id: input.id,
      userId: input.userId,
      csrfToken: input.csrfToken,
      expiresAt: sql`now() + ${`${Math.round(input.absoluteMs / 1000)} seconds`}::interval`,
      address: input.address,
      userAgent: input.userAgent?.slice(0, 300) ?? null,
    });
    await tx.update(users).set({ lastLoginAt: sql`now()` }).where(eq(users.id, input.userId));
  });
}

/**
 * The signed-in user behind a session id, or null when the session is unknown, revoked, past its absolute
 * expiry, idle for longer than `idleMs`, or its user is disabled.
 */
export async function findSignedIn(db: Db, sessionId: string, idleMs: number): Promise<SignedIn | null> {
  const [row] = await db.select({
    id: users.id,
    email: users.email,
    name: users.name,
    role: users.role,
    csrfToken: authSessions.csrfToken,
    lastSeenAt: authSessions.lastSeenAt,
  }).from(authSessions).innerJoin(users, eq(users.id, authSessions.userId)).where(and(
    eq(authSessions.id, sessionId),
    isNull(authSessions.revokedAt),
    isNull(users.disabledAt),
    gt(authSessions.expiresAt, sql`now()`),
    gt(authSessions.lastSeenAt, sql`now() - ${`${Math.round(idleMs / 1000)} seconds`}::interval`),
  ));
  if (!row) return null;
  const { csrfToken, lastSeenAt, ...user } = row;
  return { user, sessionId, csrfToken, lastSeenAt };
}

/** Marks a session as seen now (idle expiry restarts). */
export async function touchAuthSession(db: Db, sessionId: string): Promise<void> {
  await db.update(authSessions).set({ lastSeenAt: sql`now()` }).where(eq(authSessions.id, sessionId));
}

/** Revokes one session (logout). */
export async function revokeAuthSession(db: Db, sessionId: string): Promise<void> {
  await db.update(authSessions).set({ revokedAt: sql`now()` })
    .where(and(eq(authSessions.id, sessionId), isNull(authSessions.revokedAt)));
}

/** Revokes every session of a user; returns their ids. */
export async function revokeUserSessions(db: Db, userId: string): Promise<string[]> {
  const revoked = await db.update(authSessions).set({ revokedAt: sql`now()` })
    .where(and(eq(authSessions.userId, userId), isNull(authSessions.revokedAt)))
    .returning({ id: authSessions.id });
  return revoked.map((r) => r.id);
}

/** Of the given session ids, those still valid (not revoked, not expired, user enabled). */
export async function liveAuthSessions(db: Db, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const live = await db.select({ id: authSessions.id }).from(authSessions)
    .innerJoin(users, eq(users.id, authSessions.userId))
    .where(and(
      inArray(authSessions.id, ids),
      isNull(authSessions.revokedAt),
      isNull(users.disabledAt),
      gt(authSessions.expiresAt, sql`now()`),
    ));
  return new Set(live.map((r) => r.id));
}

/** The start of the current fixed window of `seconds`, in SQL. */
function windowStart(seconds: number): SQL {
  return sql`to_timestamp(floor(extract(epoch from now()) / ${seconds}) * ${seconds})`;
}

/**
 * Counts one event against a fixed window and returns the count so far in it, with the seconds until the
 * window ends. One statement, so concurrent requests on any instance count exactly.
 */
export async function countEvent(
  db: Db,
  key: string,
  windowMs: number,
): Promise<{ count: number; resetInSeconds: number }> {
  const seconds = Math.max(1, Math.round(windowMs / 1000));
  const [row] = rows<{ count: number; reset_in: number }>(
    await db.execute(sql`
      with w as (select ${windowStart(seconds)} as start)
      insert into ${rateLimits} (key, window_start, count)
      select ${key}, w.start, 1 from w
      on conflict (key, window_start) do update set count = ${rateLimits.count} + 1
      returning count, ceil(extract(epoch from (window_start + ${`${seconds} seconds`}::interval - now())))::int
        as reset_in`),
  );
  return { count: Number(row.count), resetInSeconds: Math.max(1, Number(row.reset_in)) };
}

/** The count in the current window without adding to it. */
export async function peekEvents(db: Db, key: string, windowMs: number): Promise<number> {
  const seconds = Math.max(1, Math.round(windowMs / 1000));
  const [row] = rows<{ count: number | null }>(
    await db.execute(sql`
      select sum(count)::int as count from ${rateLimits}
      where key = ${key} and window_start = ${windowStart(seconds)}`),
  );
  return Number(row?.count ?? 0);
}

/** Forgets a key's counts (a successful login clears the account's failures). */
export async function clearEvents(db: Db, key: string): Promise<void> {
  await db.delete(rateLimits).where(eq(rateLimits.key, key));
}

/** Removes rate-limit windows older than a day. */
export async function pruneRateLimits(db: Db): Promise<void> {
  await db.delete(rateLimits).where(sql`${rateLimits.windowStart} < now() - interval '1 day'`);
}

function utcDay(): string {
  return new Date().toISOString().slice(0, 10);
}

/** Adds a reply's output tokens to its session owner's count for today. */
export async function addTokensForSession(db: Db, sessionId: string, tokens: number): Promise<void> {
  if (tokens <= 0 || !isUuid(sessionId)) return;
  await db.execute(sql`
    insert into ${tokenUsage} (user_id, day, tokens)
    select owner_id, ${utcDay()}, ${tokens} from ${chatSessions} where id = ${sessionId} and owner_id is not null
    on conflict (user_id, day) do update set tokens = ${tokenUsage.tokens} + excluded.tokens`);
}

/** What the per-user send limits found, in one round trip. */
export interface SendAllowance {
  /** Replies being written now in the user's sessions (on any instance). */
  active: number;
  /** Output tokens today. */
  tokensToday: number;
  /** This message's count in the rate window, or null when it was refused before being counted. */
  rate: { count: number; resetInSeconds: number } | null;
}

/**
 * Checks the per-user limits for starting a reply in one statement: replies being written, today's tokens, and
 * (only when those allow it, so a refused message does not use up the allowance) counts the message against
 * the per-minute window.
 */
export async function sendAllowance(
  db: Db,
  userId: string,
  limits: { maxActive: number; dailyTokens: number; windowMs: number },
): Promise<SendAllowance> {
  const seconds = Math.max(1, Math.round(limits.windowMs / 1000));
  const key = `messages:${userId}`;
  const [row] = rows<{ active: number; used: number; count: number | null; reset_in: number | null }>(
    await db.execute(sql`
      with active as (
        select count(*)::int as n from messages m join ${chatSessions} s on s.id = m.session_id
        where s.owner_id = ${userId} and m.status in ('pending', 'streaming')
      ),
      used as (
        select coalesce((select tokens from ${tokenUsage} where user_id = ${userId} and day = ${utcDay()}), 0) as t
      ),
      counted as (
        insert into ${rateLimits} (key, window_start, count)
        select ${key}, ${windowStart(seconds)}, 1
        from active, used
        where active.n < ${limits.maxActive} and (${limits.dailyTokens} = 0 or used.t < ${limits.dailyTokens})
        on conflict (key, window_start) do update set count = ${rateLimits.count} + 1
        returning count,
          ceil(extract(epoch from (window_start + ${`${seconds} seconds`}::interval - now())))::int as reset_in
      )
      select active.n as active, used.t as used, counted.count, counted.reset_in
      from active cross join used left join counted on true`),
  );
  return {
    active: Number(row.active),
    tokensToday: Number(row.used),
    rate: row.count === null
      ? null
      : { count: Number(row.count), resetInSeconds: Math.max(1, Number(row.reset_in)) },
  };
}
