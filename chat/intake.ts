/**
 * Taking in a chat message, and a request to regenerate or continue a reply: the limits (length, per-user
 * rate, replies at once, daily tokens), idempotency (the same client id is the same message), red flags looked
 * for in what the clinician wrote, identifiers found and, by the PHI mode, replaced before storing, and the
 * exchange stored (the question and a pending reply) before any GPU time is spent. A refusal is a ChatRefusal
 * with the status and the words the clinician sees; routes only map it.
 */
import type { SecurityConfig } from "../config.ts";
import type { Db } from "../db/client.ts";
import {
  beginContinue,
  beginRegenerate,
  findReplyByClientId,
  getMessage,
  type Message,
  type RestartResult,
  startExchange,
  type TurnRow,
} from "../db/messages.ts";
import type { StoredRedactions } from "../db/schema.ts";
import { type Chat, chatsTitledWithIdentifiers, clipTitle, setChatTitle } from "../db/chats.ts";
import { messageRateKey, sendAllowance } from "../db/limits.ts";
import type { ModelRegistry, ModelSpec } from "../inference/models.ts";
import type { Job } from "../inference/runner.ts";
import { CLIENT_ID_PATTERN, MAX_MESSAGE_CHARS, stripControlCharacters } from "../safety/limits.ts";
import { redactPhi } from "../safety/phi.ts";
import { yieldToEventLoop } from "../slices.ts";
import { detectRedFlags } from "../safety/red_flags.ts";

/** A request the chat refuses: the HTTP status, and the message in words a clinician can act on. */
export class ChatRefusal extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 413 | 422 | 429 | 503,
    message: string,
    /** Seconds until trying again makes sense (429). */
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
    this.name = "ChatRefusal";
  }
}

/** What taking in messages needs. */
export interface IntakeDeps {
  db: Db;
  models: ModelRegistry;
  security: Pick<
    SecurityConfig,
    "messagesPerMinute" | "dailyTokenBudget" | "maxConcurrentStreams" | "phiRedaction"
  >;
  /** True while the server shuts down: nothing new is started. */
  draining(): boolean;
  /** Case generations and debriefs the user has running on this instance: they share the reply cap. */
  otherModelWork?: (userId: string) => number;
  /**
   * Begins preparing the answer to a message while its limits are checked and its exchange is stored
   * (chat/answer.ts:beginAnswer); what it returns goes to the engine with the job, or is dropped when the
   * message is refused. `earlier` gives the conversation before the message once it is stored (null when it is
   * refused).
   */
  beginAnswer?: (
    chat: Chat,
    message: { content: string; redacted?: string },
    earlier: Promise<TurnRow[] | null>,
  ) => unknown;
}

/** A reply to stream: the question, the reply, and the job for the engine when it has to be started. */
export interface Exchange {
  user: Message;
  assistant: Message;
  /** Null when the reply was started before (the same request again): follow it, do not start it. */
  job: Job | null;
}

const BUSY_MESSAGE = "A reply is still being written in this session. Wait for it to finish, or press Stop.";

/** The model a session talks to: its own if still configured, else the default. */
export function modelFor(models: ModelRegistry, chat: Pick<Chat, "model">): ModelSpec | null {
  return models.get(chat.model) ?? models.get(null);
}

function checkClientId(clientId: string | null): void {
  if (clientId !== null && !CLIENT_ID_PATTERN.test(clientId)) {
    throw new ChatRefusal(400, "client_id must be 8 to 64 letters, digits, '-' or '_'");
  }
}

function refuseWhileDraining(deps: IntakeDeps): void {
  if (deps.draining()) {
    throw new ChatRefusal(503, "The server is restarting. Your message was not sent; try again in a moment.");
  }
}

/** How many replies the user may have being written: the cap, less their generations and debriefs running. */
function capFor(deps: IntakeDeps, userId: string): number {
  return Math.max(0, deps.security.maxConcurrentStreams - (deps.otherModelWork?.(userId) ?? 0));
}

/** The refusal when the user's replies being written are at the cap (checked again as each one starts). */
function tooManyReplies(deps: IntakeDeps): ChatRefusal {
  return new ChatRefusal(
    429,
    `${deps.security.maxConcurrentStreams} of your replies are being written already (case generations and ` +
      `debriefs count too). Wait for one to finish, or stop it, then send again.`,
  );
}

/**
 * Per-user limits on starting a reply again (a regenerate or a continue), held in the database so they apply
 * across instances: replies being written at once, output tokens per day, messages per minute (counted only when
 * the others pass). A new message's limits are checked where it is stored (db/messages.ts:startExchange).
 */
async function checkSendLimits(deps: IntakeDeps, userId: string): Promise<void> {
  const { security } = deps;
  const allowance = await sendAllowance(deps.db, userId, {
    maxActive: capFor(deps, userId),
    dailyTokens: security.dailyTokenBudget,
    windowMs: 60_000,
  });
  if (allowance.active >= capFor(deps, userId)) throw tooManyReplies(deps);
  if (security.dailyTokenBudget > 0 && allowance.tokensToday >= security.dailyTokenBudget) {
    throw overBudget(deps);
  }
  const rate = allowance.rate!;
  if (rate.count > security.messagesPerMinute) throw tooManyThisMinute(deps, rate.resetInSeconds);
}

/** The refusal when the user has used today's token budget. */
function overBudget(deps: IntakeDeps): ChatRefusal {
  const midnight = new Date();
  midnight.setUTCHours(24, 0, 0, 0);
  return new ChatRefusal(
    429,
    `You have used today's budget of ${deps.security.dailyTokenBudget.toLocaleString("en")} generated ` +
      `tokens. It renews at midnight UTC; your Rounds administrator can raise it.`,
    Math.ceil((midnight.getTime() - Date.now()) / 1000),
  );
}

/** The refusal when the user has sent the most messages a minute allows. */
function tooManyThisMinute(deps: IntakeDeps, resetInSeconds: number): ChatRefusal {
  return new ChatRefusal(
    429,
    `You have sent ${deps.security.messagesPerMinute} messages this minute, the most Rounds allows. ` +
      `Wait ${resetInSeconds} s and send again (your text is still in the box).`,
    resetInSeconds,
  );
}

/** Takes in a clinician's message: checks it, stores it with a pending reply, and says whether to start it. */
export async function takeMessage(
  deps: IntakeDeps,
  request: { chat: Chat; userId: string; content: string; clientId: string },
): Promise<Exchange> {
  const { db, chat } = { db: deps.db, chat: request.chat };
  const content = stripControlCharacters(request.content).trim();
  const clientId = request.clientId.trim() || null;
  if (!content) throw new ChatRefusal(422, "Type a question before sending.");
  if (content.length > MAX_MESSAGE_CHARS) {
    throw new ChatRefusal(
      413,
      `Your message is ${content.length.toLocaleString("en")} characters; the limit is ` +
        `${
          MAX_MESSAGE_CHARS.toLocaleString("en")
        }. Shorten it and send again (your text is still in the box).`,
    );
  }
  checkClientId(clientId);
  const spec = modelFor(deps.models, chat);
  const mode = deps.security.phiRedaction;
  const long = content.length > 2000;
  const found = mode === "off" ? null : redactPhi(content);
  const redactions: StoredRedactions | null = found && found.redactions.length > 0 && mode !== "off"
    ? {
      mode,
      items: found.redactions.map((r) =>
        mode === "storage"
          ? { type: r.type, placeholder: r.placeholder }
          : { type: r.type, placeholder: r.placeholder, start: r.start, end: r.end }
      ),
    }
    : null;
  const stored = mode === "storage" && found ? found.text : content;
  // The answer begins while the limits are checked and the exchange is stored. A refused message (a repeat, a
  // limit, a busy chat) has cost a search then, as GET /knowledge/search costs one: nothing of it is kept.
  // The conversation before it comes back with the stored exchange (db/messages.ts:startExchange).
  let heard: (earlier: TurnRow[] | null) => void = () => {};
  const earlier = new Promise<TurnRow[] | null>((resolve) => (heard = resolve));
  const headStart = deps.beginAnswer?.(chat, { content: stored, redacted: found?.text }, earlier);
  // Emergencies are looked for in what the clinician wrote, whatever the model says, while the database reads
  // the conversation and searches (a third of a millisecond for a short question, before the search began). A
  // long message takes milliseconds to check and to redact: other users' requests are served in between.
  if (long) await yieldToEventLoop();
  const redFlags = detectRedFlags(content);
  const result = await startExchange(db, {
    sessionId: chat.id,
    content: stored,
    clientId,
    model: spec?.id ?? null,
    redFlags: redFlags.length > 0 ? redFlags : null,
    redactions,
    // The sidebar, the heading, the tab and the browser's history show the title: never the identifiers.
    title: (found ?? redactPhi(content)).text,
    maxActive: capFor(deps, request.userId),
    // Per-user limits held in the database, so they apply across instances; a repeat is answered whatever they say.
    limits: {
      dailyTokens: deps.security.dailyTokenBudget,
      rate: { key: messageRateKey(request.userId), windowMs: 60_000, max: deps.security.messagesPerMinute },
    },
  }).catch((error) => {
    heard(null);
    throw error;
  });
  heard(result.kind === "created" ? result.earlier : null);
  if (result.kind === "no_session") throw new ChatRefusal(404, "This session does not exist.");
  if (result.kind === "busy") throw new ChatRefusal(409, BUSY_MESSAGE);
  if (result.kind === "limited") throw tooManyReplies(deps);
  if (result.kind === "over_budget") throw overBudget(deps);
  if (result.kind === "rate_limited") throw tooManyThisMinute(deps, result.resetInSeconds);
  if (result.kind !== "created") return { user: result.user, assistant: result.assistant, job: null };
  refuseWhileDraining(deps);
  return {
    user: result.user,
    assistant: result.assistant,
    job: {
      sessionId: chat.id,
      user: result.user,
      assistant: result.assistant,
      mode: "answer",
      practice: chat.kind === "practice",
      headStart,
    },
  };
}

/**
 * Regenerates or continues a reply. The same request again (a reconnecting stream, a double click) follows the
 * reply it started instead of starting another.
 */
export async function restartReply(
  deps: IntakeDeps,
  request: {
    chat: Chat;
    userId: string;
    messageId: string;
    kind: "regenerate" | "continue";
    clientId: string;
    /** The browser is reconnecting to a stream it had (it sent Last-Event-ID). */
    reconnecting: boolean;
  },
): Promise<Exchange & { previous: Message }> {
  const { db, chat } = { db: deps.db, chat: request.chat };
  const previous = await getMessage(db, chat.id, request.messageId);
  if (!previous || previous.role !== "assistant") throw new ChatRefusal(404, "This reply does not exist.");
  const clientId = request.clientId.trim() || null;
  checkClientId(clientId);
  const user = previous.replyTo ? await getMessage(db, chat.id, previous.replyTo) : null;
  if (user && request.kind === "regenerate" && clientId) {
    const started = await findReplyByClientId(db, chat.id, clientId);
    if (started) return { user, assistant: started, job: null, previous };
  }
  if (user && request.kind === "continue" && request.reconnecting) {
    return { user, assistant: previous, job: null, previous };
  }
  refuseWhileDraining(deps);
  await checkSendLimits(deps, request.userId);
  const spec = modelFor(deps.models, chat);
  const result: RestartResult = request.kind === "regenerate"
    ? await beginRegenerate(db, {
      sessionId: chat.id,
      messageId: request.messageId,
      model: spec?.id ?? null,
      clientId,
      maxActive: capFor(deps, request.userId),
    })
    : await beginContinue(db, {
      sessionId: chat.id,
      messageId: request.messageId,
      maxActive: capFor(deps, request.userId),
    });
  if (result.kind === "not_found") throw new ChatRefusal(404, "This reply does not exist.");
  if (result.kind === "busy") throw new ChatRefusal(409, BUSY_MESSAGE);
  if (result.kind === "not_allowed") throw new ChatRefusal(409, result.reason);
  if (result.kind === "limited") throw tooManyReplies(deps);
  return {
    user: result.user,
    assistant: result.assistant,
    previous,
    job: {
      sessionId: chat.id,
      user: result.user,
      assistant: result.assistant,
      mode: request.kind === "continue" ? "continue" : "answer",
      practice: chat.kind === "practice",
    },
  };
}

/**
 * Titles made before titles were redacted: a chat still titled with its first question as typed, where
 * identifiers were found, gets the redacted title (at start; a title the clinician renamed is left alone).
 * Returns how many were fixed.
 */
export async function redactOldTitles(db: Db): Promise<number> {
  let fixed = 0;
  for (const chat of await chatsTitledWithIdentifiers(db)) {
    if (chat.title !== clipTitle(chat.content, 60)) continue;
    const title = clipTitle(redactPhi(chat.content).text, 60);
    if (title === chat.title) continue;
    await setChatTitle(db, chat.id, title);
    fixed++;
  }
  return fixed;
}
