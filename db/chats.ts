/**
 * Chat sessions: create, list, read, rename, settings, clear and delete.
 */
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import type { Debrief } from "../cases/practice_session.ts";
import type { Db } from "./client.ts";
import { isUuid } from "./ids.ts";
import { rows } from "./migrate.ts";
import { chatSessions, messages } from "./schema.ts";
import { builtOnce } from "./statements.ts";

/** A stored chat session. */
export type Chat = typeof chatSessions.$inferSelect;

/** A session as the session list shows it. */
export interface ChatSummary {
  id: string;
  title: string;
  updatedAt: Date;
  messageCount: number;
}

/** The title a session has until its first message names it. */
export const DEFAULT_TITLE = "New session";

/** Longest title kept; longer ones are cut at a word boundary. */
export const MAX_TITLE_LENGTH = 120;

/** Creates a session. */
export async function createChat(
  db: Db,
  input: { ownerId: string | null; title?: string | null; model?: string | null },
): Promise<Chat> {
  const [row] = await db.insert(chatSessions).values({
    ownerId: input.ownerId,
    title: input.title?.trim() ? clipTitle(input.title) : DEFAULT_TITLE,
    model: input.model ?? null,
  }).returning();
  return row;
}

/** A user's sessions, most recently active first. */
export async function listChats(
  db: Db,
  options: {
    ownerId: string | null;
    limit?: number;
    /** Only sessions whose title or any message holds these words (each, in any order; case ignored). */
    search?: string;
  },
): Promise<ChatSummary[]> {
  const words = (options.search ?? "").normalize("NFKC").toLowerCase().split(/\s+/).filter(Boolean).slice(
    0,
    8,
  );
  const matches = words.map((word) => {
    const pattern = `%${word.replace(/[\\%_]/g, (c) => "\\" + c)}%`;
    return sql`(lower(${chatSessions.title}) like ${pattern} or exists (select 1 from messages m
      where m.session_id = "chat_sessions"."id" and lower(m.content) like ${pattern}))`;
  });
  const rows = await db.select({
    id: chatSessions.id,
    title: chatSessions.title,
    updatedAt: chatSessions.updatedAt,
    // Spelled out: drizzle leaves columns unqualified here, and "id" would bind to messages.id.
    messageCount: sql<
      number
    >`(select count(*)::int from messages m where m.session_id = "chat_sessions"."id")`,
  }).from(chatSessions).where(
    and(
      options.ownerId === null ? isNull(chatSessions.ownerId) : eq(chatSessions.ownerId, options.ownerId),
      ...matches,
    ),
  ).orderBy(desc(chatSessions.updatedAt), desc(chatSessions.id)).limit(
    options.limit ?? 200,
  );
  return rows.map((r) => ({ ...r, messageCount: Number(r.messageCount) }));
}

/** One session, or null when the id names none. */
export async function getChat(db: Db, id: string): Promise<Chat | null> {
  if (!isUuid(id)) return null;
  const [row] = await chatStatement(db).execute({ id });
  return row ?? null;
}

/** getChat's select (on every request about a chat, and again as its answer is prepared). */
const chatStatement = builtOnce((db) =>
  db.select().from(chatSessions).where(eq(chatSessions.id, sql.placeholder("id"))).prepare("get_chat")
);

/** Renames a session; null when it does not exist. */
export async function renameChat(db: Db, id: string, title: string): Promise<Chat | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.update(chatSessions).set({ title: clipTitle(title), updatedAt: sql`now()` })
    .where(eq(chatSessions.id, id)).returning();
  return row ?? null;
}

/** Per-session model and sampling settings (null values mean the model's defaults). */
export interface ChatSettings {
  model: string | null;
  temperature: number | null;
  topP: number | null;
  maxNewTokens: number | null;
}

/** Stores validated settings; null when the session does not exist. */
export async function updateChatSettings(
  db: Db,
  id: string,
  settings: ChatSettings,
): Promise<Chat | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.update(chatSessions).set(settings).where(eq(chatSessions.id, id)).returning();
  return row ?? null;
}

/** Deletes every message of a session except a reply still being written; returns how many went. */
export async function clearChat(db: Db, id: string): Promise<number> {
  if (!isUuid(id)) return 0;
  const deleted = await db.delete(messages).where(and(
    eq(messages.sessionId, id),
    sql`not exists (select 1 from ${messages} m2 where m2.session_id = ${id} and m2.status in ('pending', 'streaming'))`,
  )).returning({ id: messages.id });
  return deleted.length;
}

/** Deletes a session and its messages; false when it did not exist. */
export async function deleteChat(db: Db, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const deleted = await db.delete(chatSessions).where(eq(chatSessions.id, id)).returning({
    id: chatSessions.id,
  });
  return deleted.length > 0;
}

/** A title from free text: one line, at most MAX_TITLE_LENGTH characters, cut at a word boundary. */
export function clipTitle(text: string, max = MAX_TITLE_LENGTH): string {
  const line = text.replace(/\s+/g, " ").trim();
  if (line.length <= max) return line || DEFAULT_TITLE;
  const cut = line.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  return `${space > max / 2 ? cut.slice(0, space) : cut}…`;
}

/**
 * Starts a practice session on a case version: the session, and the patient's opening line as its first
 * message, in one transaction.
 */
export async function createPracticeChat(
  db: Db,
  input: { ownerId: string | null; caseId: string; caseVersion: number; title: string; openingLine: string },
): Promise<Chat> {
  return await db.transaction(async (tx) => {
    const [session] = await tx.insert(chatSessions).values({
      ownerId: input.ownerId,
      title: clipTitle(input.title),
      kind: "practice",
      caseId: input.caseId,
      caseVersion: input.caseVersion,
    }).returning();
    await tx.insert(messages).values({
      sessionId: session.id,
      role: "assistant",
      content: input.openingLine,
      status: "completed",
      finishReason: "opening_line",
    });
    return session;
  });
}

/** Stores a practice session's debrief (replacing an earlier one). False when the session is gone. */
export async function saveDebrief(db: Db, sessionId: string, debrief: Debrief): Promise<boolean> {
  if (!isUuid(sessionId)) return false;
  const updated = await db.update(chatSessions).set({ debrief, updatedAt: sql`now()` })
    .where(and(eq(chatSessions.id, sessionId), eq(chatSessions.kind, "practice")))
    .returning({ id: chatSessions.id });
  return updated.length > 0;
}

/**
 * Chats still titled with their first question as typed, though identifiers were found in it (titles from
 * before they were made from the redacted text): their id, title and that question.
 */
export async function chatsTitledWithIdentifiers(
  db: Db,
): Promise<{ id: string; title: string; content: string }[]> {
  const result = await db.execute(sql`
    select c.id, c.title, m.content from chat_sessions c
    join lateral (
      select content, redactions from messages
      where session_id = c.id and role = 'user' order by seq limit 1
    ) m on true
    where c.kind = 'chat' and m.redactions is not null`);
  return rows<{ id: string; title: string; content: string }>(result);
}

/** Sets a chat's title as it is (no clipping: the caller made it), without touching its updated time. */
export async function setChatTitle(db: Db, id: string, title: string): Promise<void> {
  await db.update(chatSessions).set({ title }).where(eq(chatSessions.id, id));
}
