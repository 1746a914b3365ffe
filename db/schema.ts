/**
 * The database schema: the single source of truth. `deno task db:generate` writes migrations from it.
 */
import { sql } from "drizzle-orm";
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  index,
  integer,
  pgTable,
  real,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

/** Embedding dimension shared by the schema and every embedder. */
export const EMBEDDING_DIMENSIONS = 384;

/** Where a message is in its life; everything but `pending` and `streaming` is terminal. */
export const MESSAGE_STATUSES = [
  "pending",
  "streaming",
  "completed",
  "stopped",
  "interrupted",
  "error",
] as const;
/** A message status. */
export type MessageStatus = typeof MESSAGE_STATUSES[number];

/** Who wrote a message. */
export const MESSAGE_ROLES = ["user", "assistant"] as const;
/** A message role. */
export type MessageRole = typeof MESSAGE_ROLES[number];

const timestamps = {
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
};

/** A conversation between a clinician and the assistant. */
export const chatSessions = pgTable("chat_sessions", {
  id: uuid("id").primaryKey().defaultRandom(),
  title: text("title").notNull().default("New session"),
  /** Id of the configured model this session talks to; null means the default model. */
  model: text("model"),
  /** Sampling overrides for this session; null means the model's default. Validated against the model's limits. */
  temperature: real("temperature"),
  topP: real("top_p"),
  maxNewTokens: integer("max_new_tokens"),
  ...timestamps,
}, (t) => [
  index("chat_sessions_updated_at_idx").on(t.updatedAt.desc()),
]);

/** One turn of a conversation. Assistant messages carry their generation status and finish reason. */
export const messages = pgTable("messages", {
  id: uuid("id").primaryKey().defaultRandom(),
  /** Insertion order across the whole table: orders messages written in the same transaction. */
  seq: bigint("seq", { mode: "number" }).generatedAlwaysAsIdentity(),
  sessionId: uuid("session_id").notNull().references(() => chatSessions.id, { onDelete: "cascade" }),
  role: text("role", { enum: MESSAGE_ROLES }).notNull(),
  content: text("content").notNull().default(""),
  status: text("status", { enum: MESSAGE_STATUSES }).notNull().default("completed"),
  /** Why generation ended: `stop`, `length`, `eos_token`, `stop_sequence`, `user`, `disconnect`, `error`… */
  finishReason: text("finish_reason"),
  /** What went wrong, in words a clinician can act on, when status is `error` or `interrupted`. */
  error: text("error"),
  /** Idempotency key sent by the browser so a retried POST creates one message. */
  clientId: text("client_id"),
  /** For an assistant message: the user message it answers. */
  replyTo: uuid("reply_to").references((): AnyPgColumn => messages.id, { onDelete: "cascade" }),
  /** Id of the configured model that wrote an assistant message. */
  model: text("model"),
  /** Tokens the endpoint streamed for this message (all continuations included). */
  outputTokens: integer("output_tokens").notNull().default(0),
  /** Set by a Stop from any instance; the instance running the generation sees it at its next checkpoint. */
  stopRequested: boolean("stop_requested").notNull().default(false),
  /** An assistant reply replaced by "regenerate": kept, and shown as an earlier version. */
  superseded: boolean("superseded").notNull().default(false),
  /** Clinician feedback: 1 thumbs up, -1 thumbs down. */
  feedback: smallint("feedback"),
  /** The clinician's written correction of an assistant reply (raw material for the next fine-tune). */
  correction: text("correction"),
  ...timestamps,
}, (t) => [
  index("messages_session_seq_idx").on(t.sessionId, t.seq),
  uniqueIndex("messages_session_client_id_idx").on(t.sessionId, t.clientId),
  index("messages_streaming_idx").on(t.status).where(sql`${t.status} in ('pending', 'streaming')`),
  index("messages_reply_to_idx").on(t.replyTo),
  check("messages_role_check", sql`${t.role} in ('user', 'assistant')`),
  check("messages_feedback_check", sql`${t.feedback} in (-1, 1)`),
  check(
    "messages_status_check",
    sql`${t.status} in ('pending', 'streaming', 'completed', 'stopped', 'interrupted', 'error')`,
  ),
]);
