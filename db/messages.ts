/**
 * Messages: the exchange a clinician starts, generation checkpoints and terminal states, feedback.
 */
import { and, asc, desc, eq, inArray, lt, sql } from "drizzle-orm";
import type { RedFlag } from "../safety/red_flags.ts";
import type { Db } from "./client.ts";
import { isUuid } from "./ids.ts";
import { chatSessions, messages, type MessageStatus, type StoredRedactions } from "./schema.ts";
import { rows } from "./migrate.ts";
import { clipTitle, DEFAULT_TITLE } from "./chats.ts";
import { activeRepliesOf, utcDay } from "./limits.ts";
import { decodeRow } from "./statements.ts";

/** A stored message. */
export type Message = typeof messages.$inferSelect;

/** Statuses of a reply that is still being written. */
export const ACTIVE_STATUSES = ["pending", "streaming"] as const satisfies readonly MessageStatus[];

/** True once a message will not change by itself any more. */
export function isTerminal(message: Pick<Message, "status">): boolean {
  return message.status !== "pending" && message.status !== "streaming";
}

/** A user message and the assistant reply that answers it. */
export interface Exchange {
  user: Message;
  assistant: Message;
}

/** A message as a conversation's turns are made from it (turnsOf). */
export type TurnRow = Pick<Message, "id" | "seq" | "role" | "content" | "replyTo"> & { superseded?: boolean };

/** What startExchange did. */
export type StartExchangeResult =
  /** Stored; `earlier` is the chat's messages before it (superseded ones left out), read under the chat's lock. */
  | ({ kind: "created"; earlier: TurnRow[] } & Exchange)
  /** The same client_id was posted before: nothing new was written. */
  | ({ kind: "duplicate" } & Exchange)
  /** Another reply is still being written in this session. */
  | { kind: "busy"; active: Message }
  /** The owner has `maxActive` replies being written already (in any of their sessions, on any instance). */
  | { kind: "limited"; active: number | null }
  /** The owner has used the day's output tokens (`limits.dailyTokens`). */
  | { kind: "over_budget"; tokensToday: number }
  /** Counted, and past `limits.rate.max` messages in the window. */
  | { kind: "rate_limited"; count: number; resetInSeconds: number }
  | { kind: "no_session" };

/**
 * Checks the owner's limits and stores the user's message and an empty assistant reply, in one round trip, before
 * any GPU time is spent. The session row is locked so that two requests cannot start two replies at once; a
 * repeated client_id returns the exchange it created the first time, whatever the limits say now. A stored
 * exchange comes back with the conversation before it, complete (no reply in it is being written).
 */
export async function startExchange(
  db: Db,
  input: {
    sessionId: string;
    content: string;
    clientId: string | null;
    model: string | null;
    /** Emergencies the message describes (shown as a banner), and identifiers redacted from it. */
    redFlags?: RedFlag[] | null;
    redactions?: StoredRedactions | null;
    /** What titles a chat that has none yet (its first question with identifiers replaced); else the content. */
    title?: string;
    /** Most replies the session's owner may have being written at once (MAX_CONCURRENT_STREAMS). */
    maxActive?: number;
    /**
     * The owner's other limits: output tokens a day (0: none), and messages in a window counted under `key` (a
     * message refused before it is counted: a repeat, a cap, the budget, a busy chat).
     */
    limits?: { dailyTokens: number; rate: { key: string; windowMs: number; max: number } };
  },
): Promise<StartExchangeResult> {
  if (!isUuid(input.sessionId)) return { kind: "no_session" };
  // One round trip on the path of every question (it is before the model sees it): the database function locks,
  // checks the limits, stores and returns the turns before the question (migrations/0021_start_exchange_turns.sql).
  // The ids are made here, so the stored rows need not come back.
  const title = clipTitle(input.title ?? input.content, 60);
  const user = {
    id: crypto.randomUUID(),
    sessionId: input.sessionId,
    role: "user" as const,
    content: input.content,
    status: "completed" as const,
    clientId: input.clientId,
    redFlags: input.redFlags ?? null,
    redactions: input.redactions ?? null,
    replyTo: null,
    model: null,
  };
  const assistantId = crypto.randomUUID();
  const rate = input.limits?.rate;
  const [stored] = rows<{
    outcome: "no_session" | "repeat" | "limited" | "budget" | "busy" | "rate" | "created";
    active: number | null;
    tokens_today: string | number | null;
    rate_count: number | null;
    reset_in: number | null;
    user_seq: string | number | null;
    assistant_seq: string | number | null;
    stored_at: unknown;
    turns: unknown;
  }>(
    await db.execute(sql`select * from start_exchange(
      ${input.sessionId}::uuid, ${input.clientId}::text, ${input.maxActive ?? null}::int,
      ${input.limits?.dailyTokens ?? 0}::int, ${utcDay()}::text, ${rate?.key ?? null}::text,
      ${rate ? Math.max(1, Math.round(rate.windowMs / 1000)) : 60}::int, ${rate?.max ?? 0}::int,
      ${title}::text, ${DEFAULT_TITLE}::text, ${user.id}::uuid, ${assistantId}::uuid, ${input.content}::text,
      ${input.model}::text, ${jsonOrNull(user.redFlags)}::jsonb, ${jsonOrNull(user.redactions)}::jsonb)`),
  );
  switch (stored.outcome) {
    case "no_session":
      return { kind: "no_session" };
    case "limited":
      return { kind: "limited", active: stored.active };
    case "budget":
      return { kind: "over_budget", tokensToday: Number(stored.tokens_today) };
    case "rate":
      return {
        kind: "rate_limited",
        count: Number(stored.rate_count),
        resetInSeconds: Math.max(1, Number(stored.reset_in)),
      };
  }
  if (stored.outcome === "created") {
    const at = stored.stored_at instanceof Date ? stored.stored_at : new Date(String(stored.stored_at));
    const written = {
      finishReason: null,
      error: null,
      outputTokens: 0,
      stopRequested: false,
      superseded: false,
    };
    const unrated = { feedback: null, correction: null, evidence: null, evidenceNote: null };
    const turns = typeof stored.turns === "string" ? JSON.parse(stored.turns) : stored.turns;
    return {
      kind: "created",
      earlier: (turns as TurnRow[]).map((row) => ({ ...row, seq: Number(row.seq) })),
      user: {
        ...user,
        ...written,
        ...unrated,
        seq: Number(stored.user_seq),
        createdAt: at,
        updatedAt: at,
      } satisfies Message,
      assistant: {
        id: assistantId,
        sessionId: input.sessionId,
        role: "assistant",
        content: "",
        status: "pending",
        clientId: null,
        redFlags: null,
        redactions: null,
        replyTo: user.id,
        model: input.model,
        ...written,
        ...unrated,
        seq: Number(stored.assistant_seq),
        createdAt: at,
        updatedAt: at,
      } satisfies Message,
    };
  }
  // Refused: read what the repeat or the busy session is, outside the hot path.
  return await previousExchange(db, input.sessionId, input.clientId);
}

/** A jsonb parameter: JSON text, or SQL null (not the JSON value null). */
function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

/** After a refused start: the exchange a repeated client id started, or the reply still being written. */
async function previousExchange(
  db: Db,
  sessionId: string,
  clientId: string | null,
): Promise<StartExchangeResult> {
  if (clientId) {
    const [previous] = await db.select().from(messages).where(and(
      eq(messages.sessionId, sessionId),
      eq(messages.clientId, clientId),
      eq(messages.role, "user"),
    ));
    if (previous) {
      const [reply] = await db.select().from(messages)
        .where(and(eq(messages.replyTo, previous.id), eq(messages.superseded, false)))
        .orderBy(desc(messages.seq)).limit(1);
      if (reply) return { kind: "duplicate", user: previous, assistant: reply };
    }
  }
  const [active] = await db.select().from(messages).where(and(
    eq(messages.sessionId, sessionId),
    inArray(messages.status, ACTIVE_STATUSES),
  )).limit(1);
  return active ? { kind: "busy", active } : { kind: "no_session" };
}

/** What a regenerate or continue request did. */
export type RestartResult =
  | ({ kind: "started" } & Exchange)
  | { kind: "busy"; active: Message }
  | { kind: "limited" }
  | { kind: "not_found" }
  | { kind: "not_allowed"; reason: string };

/**
 * Starts a new reply to the same question: the old one is kept, marked superseded. Only the latest reply of a
 * session can be regenerated (later turns were written in answer to it).
 */
export async function beginRegenerate(
  db: Db,
  input: {
    sessionId: string;
    messageId: string;
    model: string | null;
    clientId: string | null;
    maxActive?: number;
  },
): Promise<RestartResult> {
  return await restart(db, input, async (tx, old, user) => {
    await tx.update(messages).set({ superseded: true, updatedAt: sql`now()` }).where(eq(messages.id, old.id));
    return await insertPendingReply(tx, { ...input, replyTo: user.id });
  });
}

/**
 * Continues a reply that stopped early (length limit, interruption or Stop): the same message goes back to
 * pending and the new text is appended to it.
 */
export async function beginContinue(
  db: Db,
  input: { sessionId: string; messageId: string; maxActive?: number },
): Promise<RestartResult> {
  return await restart(db, input, async (tx, old) => {
    if (old.status === "completed" && old.finishReason !== "length") {
      return { reason: "This reply is complete; only a reply cut short can be continued" };
    }
    if (old.status === "error" || old.content.length === 0) {
      return { reason: "This reply has no text to continue from; regenerate it instead" };
    }
    const [assistant] = await tx.update(messages).set({
      status: "pending",
      finishReason: null,
      error: null,
      stopRequested: false,
      updatedAt: sql`now()`,
    }).where(eq(messages.id, old.id)).returning();
    return assistant;
  });
}

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/**
 * Whether an owner, whose row this transaction has locked, may start another reply: fewer than `maxActive`
 * being written in all their sessions. A statement of its own, after the lock: it sees every reply a
 * transaction that held the lock before committed.
 */
async function ownerHasRoom(tx: Tx, ownerId: string, maxActive: number): Promise<boolean> {
  const [row] = rows<{ n: number }>(
    await tx.execute(sql`select ${activeRepliesOf(ownerId)} as n`),
  );
  return Number(row.n) < maxActive;
}

/** The empty assistant message a generation writes into. */
async function insertPendingReply(
  tx: Tx,
  reply: { sessionId: string; replyTo: string; model: string | null; clientId?: string | null },
): Promise<Message> {
  const [assistant] = await tx.insert(messages).values({
    sessionId: reply.sessionId,
    role: "assistant",
    status: "pending",
    replyTo: reply.replyTo,
    model: reply.model,
    clientId: reply.clientId ?? null,
  }).returning();
  return assistant;
}

async function restart(
  db: Db,
  input: { sessionId: string; messageId: string; maxActive?: number },
  change: (tx: Tx, old: Message, user: Message) => Promise<Message | { reason: string }>,
): Promise<RestartResult> {
  const { sessionId, messageId } = input;
  if (!isUuid(sessionId) || !isUuid(messageId)) return { kind: "not_found" };
  return await db.transaction(async (tx) => {
    const [session] = await tx.select().from(chatSessions).where(eq(chatSessions.id, sessionId)).for(
      "update",
    );
    if (!session) return { kind: "not_found" } as const;
    if (session.ownerId && input.maxActive !== undefined) {
      await tx.execute(sql`select id from users where id = ${session.ownerId} for no key update`);
      if (!(await ownerHasRoom(tx, session.ownerId, input.maxActive))) return { kind: "limited" } as const;
    }
    const [old] = await tx.select().from(messages).where(and(
      eq(messages.id, messageId),
      eq(messages.sessionId, sessionId),
      eq(messages.role, "assistant"),
    ));
    if (!old || old.superseded || !old.replyTo) return { kind: "not_found" } as const;
    const [active] = await tx.select().from(messages).where(and(
      eq(messages.sessionId, sessionId),
      inArray(messages.status, ACTIVE_STATUSES),
    )).limit(1);
    if (active) return { kind: "busy", active } as const;
    const [latest] = await tx.select({ id: messages.id }).from(messages)
      .where(and(eq(messages.sessionId, sessionId), eq(messages.superseded, false)))
      .orderBy(desc(messages.seq)).limit(1);
    if (latest?.id !== old.id) {
      return {
        kind: "not_allowed",
        reason: "Only the latest reply can be regenerated or continued",
      } as const;
    }
    const [user] = await tx.select().from(messages).where(eq(messages.id, old.replyTo));
    const result = await change(tx, old, user);
    if ("reason" in result) return { kind: "not_allowed", reason: result.reason } as const;
    await tx.update(chatSessions).set({ updatedAt: sql`now()` }).where(eq(chatSessions.id, sessionId));
    return { kind: "started", user, assistant: result } as const;
  });
}

/** The assistant reply a regenerate request with this client_id created, if any. */
export async function findReplyByClientId(
  db: Db,
  sessionId: string,
  clientId: string,
): Promise<Message | null> {
  if (!isUuid(sessionId)) return null;
  const [row] = await db.select().from(messages).where(and(
    eq(messages.sessionId, sessionId),
    eq(messages.clientId, clientId),
    eq(messages.role, "assistant"),
  ));
  return row ?? null;
}

/** Every message of a session in order, superseded replies included (views fold them). */
export async function listMessages(db: Db, sessionId: string): Promise<Message[]> {
  if (!isUuid(sessionId)) return [];
  return await db.select().from(messages).where(eq(messages.sessionId, sessionId)).orderBy(asc(messages.seq));
}

/** One message of a session, or null. */
export async function getMessage(db: Db, sessionId: string, messageId: string): Promise<Message | null> {
  if (!isUuid(sessionId) || !isUuid(messageId)) return null;
  const [row] = await db.select().from(messages)
    .where(and(eq(messages.id, messageId), eq(messages.sessionId, sessionId)));
  return row ?? null;
}

/** A completed question and answer, for the prompt's history. */
export interface Turn {
  user: string;
  assistant: string;
}

/**
 * The conversation before a user message, as question–answer pairs, oldest first. Superseded replies, replies
 * with no text, and questions without a usable reply are left out.
 */
export async function turnsBefore(db: Db, sessionId: string, beforeSeq: number): Promise<Turn[]> {
  const rows = await db.select().from(messages).where(and(
    eq(messages.sessionId, sessionId),
    lt(messages.seq, beforeSeq),
    eq(messages.superseded, false),
  )).orderBy(asc(messages.seq));
  return turnsOf(rows, beforeSeq);
}

/** {@link turnsBefore} over a conversation's messages already read (in order; superseded ones are skipped). */
export function turnsOf(rows: readonly TurnRow[], beforeSeq: number): Turn[] {
  const questions = new Map<string, string>();
  const turns: Turn[] = [];
  for (const row of rows) {
    if (row.seq >= beforeSeq || row.superseded) continue;
    if (row.role === "user") questions.set(row.id, row.content);
    else if (row.replyTo && row.content.trim() && questions.has(row.replyTo)) {
      turns.push({ user: questions.get(row.replyTo)!, assistant: row.content });
    }
  }
  return turns;
}

/**
 * The conversations clinicians left feedback in (a thumb or a correction on a reply), each with every message
 * in order, superseded replies included: the material of the training export (chat/training.ts). Practice
 * sessions are left out: their replies are a simulated patient's, not answers.
 */
export async function conversationsWithFeedback(db: Db): Promise<Map<string, Message[]>> {
  const found = await db.select().from(messages).where(inArray(
    messages.sessionId,
    db.selectDistinct({ id: messages.sessionId }).from(messages)
      .innerJoin(chatSessions, eq(chatSessions.id, messages.sessionId))
      .where(and(
        eq(chatSessions.kind, "chat"),
        eq(messages.role, "assistant"),
        sql`(${messages.feedback} is not null or btrim(coalesce(${messages.correction}, '')) <> '')`,
      )),
  )).orderBy(asc(messages.sessionId), asc(messages.seq));
  const byChat = new Map<string, Message[]>();
  for (const row of found) {
    const list = byChat.get(row.sessionId);
    if (list) list.push(row);
    else byChat.set(row.sessionId, [row]);
  }
  return byChat;
}

/**
 * Writes the reply's text so far (status `streaming`) and refreshes its heartbeat. Returns whether a Stop was
 * requested from any instance, or null when the message is no longer active (it was finished elsewhere).
 */
export async function checkpoint(
  db: Db,
  messageId: string,
  state: { content: string; outputTokens: number },
): Promise<{ stopRequested: boolean } | null> {
  const [row] = await db.update(messages).set({
    content: state.content,
    outputTokens: state.outputTokens,
    status: "streaming",
    updatedAt: sql`now()`,
  }).where(and(eq(messages.id, messageId), inArray(messages.status, ACTIVE_STATUSES)))
    .returning({ stopRequested: messages.stopRequested });
  return row ?? null;
}

/**
 * Checkpoints many live replies in one statement (the text arrives as one JSON parameter). With hundreds of
 * replies streaming, one UPDATE each per second was most of the database's work. Returns, per message still
 * active, whether another instance asked it to stop; a message that has ended since is left as it is.
 */
export async function checkpointMany(
  db: Db,
  items: { messageId: string; content: string; outputTokens: number }[],
): Promise<Map<string, { stopRequested: boolean }>> {
  if (items.length === 0) return new Map();
  const updated = rows<{ id: string; stop_requested: boolean }>(
    await db.execute(sql`
      update messages m
      set content = v.content, output_tokens = v."outputTokens", status = 'streaming', updated_at = now()
      from json_to_recordset(${JSON.stringify(items)}::json)
        as v("messageId" uuid, content text, "outputTokens" int)
      where m.id = v."messageId" and m.status in ('pending', 'streaming')
      returning m.id, m.stop_requested`),
  );
  return new Map(updated.map((row) => [row.id, { stopRequested: row.stop_requested }]));
}

/** The terminal state of a reply. */
export interface FinishState {
  content: string;
  outputTokens: number;
  status: Exclude<MessageStatus, "pending" | "streaming">;
  finishReason: string | null;
  error: string | null;
}

/**
 * Stores a reply's terminal state, and its chat's last activity, in one statement; returns the stored message.
 */
export async function finishMessage(db: Db, messageId: string, state: FinishState): Promise<Message> {
  const [row] = rows<Record<string, unknown>>(
    await db.execute(sql`
      with finished as (
        update ${messages} set content = ${state.content}, output_tokens = ${state.outputTokens}::int,
          status = ${state.status}, finish_reason = ${state.finishReason}, error = ${state.error},
          stop_requested = false, updated_at = now()
        where id = ${messageId}::uuid
        returning *
      ),
      touched as (update ${chatSessions} set updated_at = now() where id in (select session_id from finished))
      select * from finished`),
  );
  if (!row) throw new Error(`Cannot store the end of message ${messageId}: it is not stored`);
  return decodeRow(messages, row);
}

/** Flags every active reply of a session for stopping; returns their ids. */
export async function requestStop(db: Db, sessionId: string): Promise<string[]> {
  if (!isUuid(sessionId)) return [];
  const rows = await db.update(messages).set({ stopRequested: true })
    .where(and(eq(messages.sessionId, sessionId), inArray(messages.status, ACTIVE_STATUSES)))
    .returning({ id: messages.id });
  return rows.map((r) => r.id);
}

/** Message the sweep stores on a reply whose writer disappeared. */
export const ABANDONED_ERROR =
  "The server writing this reply stopped (a restart or crash) before it finished. The text written so far is kept; use Continue to finish it.";

/**
 * Marks replies left `pending`/`streaming` by a process that is gone as `interrupted`. A live writer refreshes
 * updated_at at least every few seconds, so anything quieter than staleAfterMs has no writer.
 */
export async function interruptAbandoned(db: Db, options: { staleAfterMs: number }): Promise<Message[]> {
  return await db.update(messages).set({
    status: "interrupted",
    finishReason: "server_restart",
    error: ABANDONED_ERROR,
    stopRequested: false,
    updatedAt: sql`now()`,
  }).where(and(
    inArray(messages.status, ACTIVE_STATUSES),
    sql`${messages.updatedAt} <= now() - make_interval(secs => ${options.staleAfterMs / 1000})`,
  )).returning();
}

/** Stores thumbs up/down and an optional correction on an assistant reply; null when there is no such reply. */
export async function setFeedback(
  db: Db,
  input: { sessionId: string; messageId: string; feedback: 1 | -1 | null; correction: string | null },
): Promise<Message | null> {
  if (!isUuid(input.sessionId) || !isUuid(input.messageId)) return null;
  const [row] = await db.update(messages).set({ feedback: input.feedback, correction: input.correction })
    .where(and(
      eq(messages.id, input.messageId),
      eq(messages.sessionId, input.sessionId),
      eq(messages.role, "assistant"),
    )).returning();
  return row ?? null;
}
