/**
 * Sign-ins: the server-side record behind a session cookie (table auth_sessions), distinct from a chat (a
 * "session" in the URLs, `chats.ts`). Revoking one ends the user's access and their open streams.
 */
import { and, eq, gt, inArray, isNull, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { authSessions, users } from "./schema.ts";
import type { User } from "./users.ts";
import { builtOnce } from "./statements.ts";

/** What request handling needs to know about the signed-in user. */
export interface SignedIn {
  user: Pick<User, "id" | "email" | "name" | "role">;
  /** The auth session's id (the SHA-256 of the cookie's token). */
  signInId: string;
  csrfToken: string;
  lastSeenAt: Date;
}

/** Records a new auth session for a user and stamps their last login. */
export async function createSignIn(
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
export async function findSignedIn(db: Db, signInId: string, idleMs: number): Promise<SignedIn | null> {
  const [row] = await signedInStatement(db).execute({
    signInId,
    idle: `${Math.round(idleMs / 1000)} seconds`,
  });
  if (!row) return null;
  const { csrfToken, lastSeenAt, ...user } = row;
  return { user, signInId, csrfToken, lastSeenAt };
}

/** findSignedIn's select (on every signed-in request). */
const signedInStatement = builtOnce((db) =>
  db.select({
    id: users.id,
    email: users.email,
    name: users.name,
    role: users.role,
    csrfToken: authSessions.csrfToken,
    lastSeenAt: authSessions.lastSeenAt,
  }).from(authSessions).innerJoin(users, eq(users.id, authSessions.userId)).where(and(
    eq(authSessions.id, sql.placeholder("signInId")),
    isNull(authSessions.revokedAt),
    isNull(users.disabledAt),
    gt(authSessions.expiresAt, sql`now()`),
    gt(authSessions.lastSeenAt, sql`now() - ${sql.placeholder("idle")}::interval`),
  )).prepare("find_signed_in")
);

/** Marks a session as seen now (idle expiry restarts). */
export async function touchSignIn(db: Db, signInId: string): Promise<void> {
  await db.update(authSessions).set({ lastSeenAt: sql`now()` }).where(eq(authSessions.id, signInId));
}

/** Revokes one session (logout). */
export async function revokeSignIn(db: Db, signInId: string): Promise<void> {
  await db.update(authSessions).set({ revokedAt: sql`now()` })
    .where(and(eq(authSessions.id, signInId), isNull(authSessions.revokedAt)));
}

/** Revokes every session of a user; returns their ids. */
export async function revokeUserSignIns(db: Db, userId: string): Promise<string[]> {
  const revoked = await db.update(authSessions).set({ revokedAt: sql`now()` })
    .where(and(eq(authSessions.userId, userId), isNull(authSessions.revokedAt)))
    .returning({ id: authSessions.id });
  return revoked.map((r) => r.id);
}

/** Of the given session ids, those still valid (not revoked, not expired, user enabled). */
export async function liveSignIns(db: Db, ids: string[]): Promise<Set<string>> {
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
