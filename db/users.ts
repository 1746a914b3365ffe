/**
 * Users: accounts, roles, disabling. Sign-ins are in `sign_ins.ts`, the per-user limits in `limits.ts`.
 */
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { isUuid } from "./ids.ts";
import { rows } from "./migrate.ts";
import { revokeUserSignIns } from "./sign_ins.ts";
import { cases, chatSessions, type UserRole, users } from "./schema.ts";

/** A stored user. */
export type User = typeof users.$inferSelect;

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
    if (row && disabled) await revokeUserSignIns(tx, id);
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
    if (updated.length > 0) await revokeUserSignIns(tx, id);
    return updated.length > 0;
  });
}

/**
 * Replaces a hash with a stronger one of the same password (at sign-in, after a cost rise): no one is signed
 * out, and nothing changes when the password was changed meanwhile.
 */
export async function upgradePasswordHash(db: Db, id: string, from: string, to: string): Promise<void> {
  if (!isUuid(id)) return;
  await db.update(users).set({ passwordHash: to }).where(and(eq(users.id, id), eq(users.passwordHash, from)));
}

/** Active admins (the last one cannot be disabled or demoted). */
export async function countActiveAdmins(db: Db): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(users)
    .where(and(eq(users.role, "admin"), isNull(users.disabledAt)));
  return Number(row.n);
}
