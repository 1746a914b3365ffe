/**
 * Per-user limits that must hold across instances: rate-limit windows, the daily token budget, and the check
 * made before a reply starts (`sendAllowance`).
 */
import { eq, type SQL, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { isUuid } from "./ids.ts";
import { rows } from "./migrate.ts";
import { chatSessions, messages, pacing, rateLimits, tokenUsage } from "./schema.ts";

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

/**
 * Waits for a turn of at most `perSecond` a second under a key, paced in the database so every instance shares
 * it: each caller takes the next free start time (turns 1.25/perSecond s apart) in one statement, and returns
 * no earlier than that time. Unlike counting per calendar second, no burst at the end of one second meets
 * another at the start of the next (NCBI counts any second). The margin absorbs up to a quarter of a turn
 * spent getting the statement's answer back.
 */
export async function takeTurn(db: Db, key: string, perSecond: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const gap = `${Math.ceil(1250 / perSecond)} milliseconds`;
  const [row] = rows<{ wait_ms: number }>(
    await db.execute(sql`
      insert into ${pacing} (key, next_at) values (${key}, now() + ${gap}::interval)
      on conflict (key) do update set next_at = greatest(${pacing.nextAt}, now()) + ${gap}::interval
      returning greatest(0, extract(epoch from (next_at - ${gap}::interval - now())) * 1000)::int as wait_ms`),
  );
  // Counted from when the answer arrived, not when the statement ran: the turn starts no earlier than its time.
  const wait = Number(row?.wait_ms ?? 0);
  if (wait <= 0) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, wait);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** The count so far in the current window of a key, without counting anything. */
export async function peekEvents(db: Db, key: string, windowMs: number): Promise<number> {
  const seconds = Math.max(1, Math.round(windowMs / 1000));
  const [row] = rows<{ count: number }>(
    await db.execute(sql`
      select coalesce((select count from ${rateLimits} where key = ${key} and window_start = ${
      windowStart(seconds)
    }), 0) as count`),
  );
  return Number(row.count);
}

/** Takes back one event counted in the current window (a sign-in that succeeded does not use the budget). */
export async function uncountEvent(db: Db, key: string, windowMs: number): Promise<void> {
  const seconds = Math.max(1, Math.round(windowMs / 1000));
  await db.execute(sql`
    update ${rateLimits} set count = greatest(${rateLimits.count} - 1, 0)
    where key = ${key} and window_start = ${windowStart(seconds)}`);
}

/** Forgets a key's counts (a successful login clears the account's failures). */
export async function clearEvents(db: Db, key: string): Promise<void> {
  await db.delete(rateLimits).where(eq(rateLimits.key, key));
}

/** Removes rate-limit windows older than a day. */
export async function pruneRateLimits(db: Db): Promise<void> {
  await db.delete(rateLimits).where(sql`${rateLimits.windowStart} < now() - interval '1 day'`);
}

/** The rate-limit key a user's messages are counted under (per minute). */
export function messageRateKey(userId: string): string {
  return `messages:${userId}`;
}

/** Today's date in UTC, the day a token budget counts. */
export function utcDay(): string {
  return new Date().toISOString().slice(0, 10);
}

/** Adds a reply's output tokens to its session owner's count for today. */
export async function addTokensForChat(db: Db, sessionId: string, tokens: number): Promise<void> {
  if (tokens <= 0 || !isUuid(sessionId)) return;
  await db.execute(sql`
    insert into ${tokenUsage} (user_id, day, tokens)
    select owner_id, ${utcDay()}, ${tokens} from ${chatSessions} where id = ${sessionId} and owner_id is not null
    on conflict (user_id, day) do update set tokens = ${tokenUsage.tokens} + excluded.tokens`);
}

/** Adds generated tokens (a case generation, a debrief) to a user's count for today. */
export async function addTokensForUser(db: Db, userId: string, tokens: number): Promise<void> {
  if (tokens <= 0 || !isUuid(userId)) return;
  await db.execute(sql`
    insert into ${tokenUsage} (user_id, day, tokens) values (${userId}, ${utcDay()}, ${tokens})
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
 * How many replies the owner has being written, as a subquery. It reads the partial index of replies being written
 * (messages_streaming_idx) once and joins their chats: joined the other way, the index was probed once for each of
 * the owner's chats, and on PGlite, which has no autovacuum, each probe walked the index's dead entries too
 * (replies finished since the last vacuum). After bench:request's 1,540 messages in 77 chats: 11.2 ms against 1.0.
 * migrations/0016_start_exchange.sql counts the same way inside start_exchange().
 */
export function activeRepliesOf(ownerId: string): SQL {
  return sql`(
    with streaming as materialized (
      select session_id from ${messages} where status in ('pending', 'streaming')
    )
    select count(*)::int from streaming m join ${chatSessions} s on s.id = m.session_id
    where s.owner_id = ${ownerId}
  )`;
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
  const key = messageRateKey(userId);
  const [row] = rows<
    { active: number; used: number; count: number | null; reset_in: number | null }
  >(
    await db.execute(sql`
      with active as (select ${activeRepliesOf(userId)} as n),
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
