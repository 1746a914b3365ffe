/**
 * The database schema: the single source of truth. `deno task db:generate` writes migrations from it.
 */
import { sql } from "drizzle-orm";
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  vector,
} from "drizzle-orm/pg-core";
import type { Debrief } from "../cases/practice_session.ts";
import type { CaseFlag } from "../cases/consistency.ts";
import type { PhiType } from "../safety/phi.ts";
import type { RedFlag } from "../safety/red_flags.ts";
import type { AnswerFigures } from "../chat/answer_scores.ts";

/**
 * The dimension a new database's embedding columns start with: the built-in lexical embedder's. The columns then
 * follow the configured embedder (knowledge/embedder.ts prepareVectorStore switches an empty database, and
 * `deno task ingest --reembed` a full one), so a database's own dimension is read from its columns
 * (db/snippets.ts declaredDimensions), not from here.
 */
export const EMBEDDING_DIMENSIONS = 384;

/**
 * Identifiers found in a user message, as stored with it. "inference": the stored text is the original, and
 * start/end mark what the model did not see; "storage": the stored text has the placeholders, no offsets.
 */
export interface StoredRedactions {
  mode: "inference" | "storage";
  items: { type: PhiType; placeholder: string; start?: number; end?: number }[];
}

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

/** What a user may do: clinicians chat; educators also write and share cases; admins also manage users and audit. */
export const USER_ROLES = ["clinician", "educator", "admin"] as const;
/** A user role. */
export type UserRole = typeof USER_ROLES[number];

const timestamps = {
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
};

/** A person who can sign in. Never deleted (the audit log names them); disabled instead. */
export const users = pgTable("users", {
  id: uuid("id").primaryKey().defaultRandom(),
  /** Lower-cased; the sign-in name. */
  email: text("email").notNull(),
  name: text("name"),
  role: text("role", { enum: USER_ROLES }).notNull(),
  /** `scrypt$N$r$p$salt$hash` (base64); see safety/passwords.ts. */
  passwordHash: text("password_hash").notNull(),
  disabledAt: timestamp("disabled_at", { withTimezone: true }),
  lastLoginAt: timestamp("last_login_at", { withTimezone: true }),
  ...timestamps,
}, (t) => [
  uniqueIndex("users_email_idx").on(t.email),
  check("users_role_check", sql`${t.role} in ('clinician', 'educator', 'admin')`),
]);

/** A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, as the id. */
export const authSessions = pgTable("auth_sessions", {
  id: text("id").primaryKey(),
  userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
  /** Sent back with every state-changing request (form field or header). */
  csrfToken: text("csrf_token").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  /** Last request seen (written at most once a minute): idle expiry counts from here. */
  lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull().defaultNow(),
  /** Absolute expiry, whatever the activity. */
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  revokedAt: timestamp("revoked_at", { withTimezone: true }),
  address: text("address"),
  userAgent: text("user_agent"),
}, (t) => [index("auth_sessions_user_idx").on(t.userId)]);

/**
 * Who did what to which object, when and from where. Append-only: a trigger (migration 0009) rejects updates,
 * deletes and truncation, and the code has no path that tries. No foreign keys, so nothing cascades into it.
 */
export const auditLog = pgTable("audit_log", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
  at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
  userId: uuid("user_id"),
  /** The user's email at the time, or "cli" / "anonymous". */
  actor: text("actor").notNull(),
  /** "session.read", "case.update", "login.failed", "user.disable"… */
  action: text("action").notNull(),
  objectType: text("object_type"),
  objectId: text("object_id"),
  address: text("address"),
  /** HTTP status or a short outcome; never message text. */
  outcome: text("outcome"),
  /** The request's id (X-Request-Id), as its log line and error page show it; null for tasks and background work. */
  requestId: text("request_id"),
}, (t) => [
  index("audit_log_at_idx").on(t.at.desc()),
  index("audit_log_user_idx").on(t.userId, t.at.desc()),
  index("audit_log_object_idx").on(t.objectType, t.objectId),
]);

/** Fixed-window counters shared by every instance: login attempts, messages per minute. */
export const rateLimits = pgTable("rate_limits", {
  key: text("key").notNull(),
  windowStart: timestamp("window_start", { withTimezone: true }).notNull(),
  count: integer("count").notNull().default(0),
}, (t) => [primaryKey({ columns: [t.key, t.windowStart] })]);

/**
 * Paced calls shared by every instance: the time the next call under a key may start (NCBI's E-utilities take
 * 3 requests a second per caller). One row per key.
 */
export const pacing = pgTable("pacing", {
  key: text("key").primaryKey(),
  nextAt: timestamp("next_at", { withTimezone: true }).notNull(),
});

/** Output tokens generated for each user per UTC day, against the daily budget. */
export const tokenUsage = pgTable("token_usage", {
  userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
  day: text("day").notNull(),
  tokens: integer("tokens").notNull().default(0),
}, (t) => [primaryKey({ columns: [t.userId, t.day] })]);

/** A conversation between a clinician and the assistant. */
export const chatSessions = pgTable("chat_sessions", {
  id: uuid("id").primaryKey().defaultRandom(),
  /** Who may see it; null only for sessions from before accounts (the first admin inherits them). */
  ownerId: uuid("owner_id").references(() => users.id, { onDelete: "cascade" }),
  title: text("title").notNull().default("New session"),
  /** Id of the configured model this session talks to; null means the default model. */
  model: text("model"),
  /** Sampling overrides for this session; null means the model's default. Validated against the model's limits. */
  temperature: real("temperature"),
  topP: real("top_p"),
  maxNewTokens: integer("max_new_tokens"),
  /** "chat" with the assistant, or "practice": a learner interviews a simulated patient from a case. */
  kind: text("kind").notNull().default("chat"),
  /** The case a practice session plays, and its version then; the case may be deleted later. */
  caseId: uuid("case_id").references((): AnyPgColumn => cases.id, { onDelete: "set null" }),
  caseVersion: integer("case_version"),
  /** A practice session's debrief once ended: checklist scoring and the model's feedback. */
  debrief: jsonb("debrief").$type<Debrief>(),
  ...timestamps,
}, (t) => [
  index("chat_sessions_updated_at_idx").on(t.updatedAt.desc()),
  index("chat_sessions_owner_idx").on(t.ownerId, t.updatedAt.desc()),
  check("chat_sessions_kind_check", sql`${t.kind} in ('chat', 'practice')`),
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
  /** For a user message: the emergencies it describes (safety/red_flags.ts), shown as a banner. */
  redFlags: jsonb("red_flags").$type<RedFlag[]>(),
  /** For a user message: the identifiers replaced before the text left the server (types and placeholders). */
  redactions: jsonb("redactions").$type<StoredRedactions>(),
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
  /** For an assistant message: what retrieval found before generating (null when it did not run). */
  evidence: text("evidence", { enum: ["sources", "none_relevant", "empty"] }),
  /** For an assistant message: what the clinician should know about its evidence ("PubMed could not be…"). */
  evidenceNote: text("evidence_note"),
  ...timestamps,
}, (t) => [
  index("messages_session_seq_idx").on(t.sessionId, t.seq),
  uniqueIndex("messages_session_client_id_idx").on(t.sessionId, t.clientId),
  index("messages_streaming_idx").on(t.status).where(sql`${t.status} in ('pending', 'streaming')`),
  index("messages_reply_to_idx").on(t.replyTo),
  check("messages_role_check", sql`${t.role} in ('user', 'assistant')`),
  check("messages_feedback_check", sql`${t.feedback} in (-1, 1)`),
  check("messages_evidence_check", sql`${t.evidence} in ('sources', 'none_relevant', 'empty')`),
  check(
    "messages_status_check",
    sql`${t.status} in ('pending', 'streaming', 'completed', 'stopped', 'interrupted', 'error')`,
  ),
]);

/** How retrieval went for an assistant message: sources used, none relevant enough, or an empty knowledge base. */
export type EvidenceState = NonNullable<typeof messages.$inferSelect["evidence"]>;

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });
const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({ dataType: () => "bytea" });

/** Why a record of an uploaded document was skipped, as the document page lists them. */
export interface SkippedRecordNote {
  location: string;
  reason: string;
}

/**
 * A file uploaded on /knowledge/documents (a guideline PDF, a formulary, a dataset), kept so it can be ingested
 * again; its snippets point back to it and go with it.
 */
export const documents = pgTable("documents", {
  id: uuid("id").primaryKey().defaultRandom(),
  fileName: text("file_name").notNull(),
  /** The title its snippets are cited by ("Chest pain pathway"), for documents; null for datasets. */
  title: text("title"),
  /** The ingest format (knowledge/records.ts FORMATS). */
  format: text("format").notNull(),
  /** Source name its snippets carry: what the uploader typed, else (once read) the format's default. */
  source: text("source").notNull(),
  specialty: text("specialty"),
  /** CSV/Parquet column mapping given at upload. */
  columns: jsonb("columns").$type<Record<string, string>>(),
  sizeBytes: integer("size_bytes").notNull(),
  /** SHA-256 of the bytes: the same file uploaded twice is refused, pointing at the first. */
  sha256: text("sha256").notNull(),
  data: bytea("data").notNull(),
  uploadedBy: uuid("uploaded_by").references(() => users.id, { onDelete: "set null" }),
  status: text("status").$type<"queued" | "ingesting" | "ready" | "failed">().notNull().default("queued"),
  /** Increased by each re-ingest: the ingest run of one generation is resumed, never another's. */
  generation: integer("generation").notNull().default(1),
  /** Times an instance took it up since it was queued: a file that stops its instance is set aside after 3. */
  attempts: integer("attempts").notNull().default(0),
  /** Bytes of the file read by the ingest so far (for its progress bar). */
  bytesRead: integer("bytes_read").notNull().default(0),
  records: integer("records").notNull().default(0),
  added: integer("added").notNull().default(0),
  duplicates: integer("duplicates").notNull().default(0),
  skipped: integer("skipped").notNull().default(0),
  /** The first skipped records, with their reasons. */
  skippedNotes: jsonb("skipped_notes").$type<SkippedRecordNote[]>().notNull().default([]),
  /** Why the ingest failed, in words for the uploader. */
  error: text("error"),
  /** Set while an instance ingests it; a stale heartbeat means that instance stopped, and another resumes. */
  heartbeatAt: timestamp("heartbeat_at", { withTimezone: true }),
  ingestedAt: timestamp("ingested_at", { withTimezone: true }),
  ...timestamps,
}, (t) => [
  uniqueIndex("documents_sha256_idx").on(t.sha256),
  check("documents_status_check", sql`${t.status} in ('queued', 'ingesting', 'ready', 'failed')`),
]);

/**
 * A retrievable passage of the knowledge base: one dialogue exchange, MASHQA answer or abstract section (or a
 * chunk of a long one), with its embedding; its full-text vector is in snippet_search.
 */
export const snippets = pgTable("snippets", {
  id: uuid("id").primaryKey().defaultRandom(),
  /** Dataset name shown to users ("MedDialog", "PubMed", "Sample (MedDialog format)"…). */
  source: text("source").notNull(),
  /** Id within the source: "12#2" (dialogue 12, exchange 2), "PMID:123#METHODS". */
  sourceId: text("source_id").notNull(),
  url: text("url"),
  specialty: text("specialty"),
  title: text("title"),
  question: text("question"),
  answer: text("answer").notNull(),
  text: text("text").notNull(),
  /** SHA-256 of the normalised text: the same passage is stored once, whichever file or run brings it. */
  contentHash: text("content_hash").notNull(),
  /** Which embedder made the vector ("lexical-hash-v1", "tei:BAAI/bge-small-en-v1.5"). */
  embedder: text("embedder").notNull(),
  embedding: vector("embedding", { dimensions: EMBEDDING_DIMENSIONS }).notNull(),
  /** The uploaded document it came from; deleting the document deletes its snippets. */
  documentId: uuid("document_id").references((): AnyPgColumn => documents.id, { onDelete: "cascade" }),
  /** The page of a paginated document (cited "Title, p. 12"). */
  page: integer("page"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  index("snippets_document_idx").on(t.documentId),
  uniqueIndex("snippets_content_hash_idx").on(t.contentHash),
  index("snippets_embedding_idx").using("hnsw", t.embedding.op("vector_cosine_ops")).with({
    m: 24,
    ef_construction: 128,
  }),
  index("snippets_source_idx").on(t.source),
  index("snippets_specialty_idx").on(t.specialty),
  // A dialogue's exchanges ("12#1", "12#2", "12#2#2"…): a follow-up's sources keep the next one (knowledge/retrieve.ts).
  index("snippets_dialogue_idx").on(t.source, sql`split_part(${t.sourceId}, '#', 1)`),
]);

/**
 * Each snippet's full-text vector, in a table of its own: a search reads up to a few hundred of them, and in the
 * snippet's own row (with its text and its 1.5 KB vector) each was a page of its own, about 70 of a search's pages
 * read from disk on PGlite at 100,000 snippets; here 100,000 vectors take 89 MB, which stays in the buffer pool.
 * Written with the snippet (db/snippets.ts:storeBatch), deleted with it.
 */
export const snippetSearch = pgTable("snippet_search", {
  snippetId: uuid("snippet_id").primaryKey().references(() => snippets.id, { onDelete: "cascade" }),
  search: tsvector("search").notNull(),
}, (t) => [
  index("snippet_search_idx").using("gin", t.search),
]);

/**
 * How many snippets each full-text term occurs in (Postgres's ts_stat, refreshed after an ingest), and the
 * total under the term " total". Full-text search ranks only the documents that contain the query's rarer
 * terms: ranking everything that contains "pain" would rank most of a clinical corpus for every question.
 */
export const searchTerms = pgTable("search_terms", {
  term: text("term").primaryKey(),
  ndoc: integer("ndoc").notNull(),
});

/** The snippets an assistant reply was grounded on, in prompt order, with their retrieval scores. */
export const messageSources = pgTable("message_sources", {
  messageId: uuid("message_id").notNull().references(() => messages.id, { onDelete: "cascade" }),
  /** 1-based: the number the reply cites as [rank]. */
  rank: smallint("rank").notNull(),
  snippetId: uuid("snippet_id").references(() => snippets.id, { onDelete: "set null" }),
  /** Cosine similarity between the question and the snippet, 0–1. */
  score: real("score").notNull(),
}, (t) => [primaryKey({ columns: [t.messageId, t.rank] })]);

/** One ingest of one file: how far it got, so an interrupted run resumes, and what it found. */
export const ingestRuns = pgTable("ingest_runs", {
  id: uuid("id").primaryKey().defaultRandom(),
  /** Identifies the input: path, size, modification time, format and options. A changed file is a new run. */
  inputKey: text("input_key").notNull(),
  path: text("path").notNull(),
  format: text("format").notNull(),
  source: text("source"),
  /** Records fully stored (the next run of the same input skips this many). */
  recordsDone: integer("records_done").notNull().default(0),
  added: integer("added").notNull().default(0),
  duplicates: integer("duplicates").notNull().default(0),
  skipped: integer("skipped").notNull().default(0),
  completedAt: timestamp("completed_at", { withTimezone: true }),
  ...timestamps,
}, (t) => [
  index("ingest_runs_input_key_idx").on(t.inputKey, t.createdAt.desc()),
]);

/**
 * A teaching case in the library. Its content lives in `case_versions`; this row holds the current version's
 * number and what the library searches and filters on, copied from it.
 */
export const cases = pgTable("cases", {
  id: uuid("id").primaryKey().defaultRandom(),
  /** The educator who wrote it; null for the example cases (read-only to all but admins). */
  ownerId: uuid("owner_id").references(() => users.id, { onDelete: "set null" }),
  /** Shared cases are visible to every signed-in user; others only to their owner. */
  shared: boolean("shared").notNull().default(false),
  /** The version shown and edited; older ones stay in case_versions and can be restored. */
  currentVersion: integer("current_version").notNull(),
  title: text("title").notNull(),
  specialty: text("specialty").notNull(),
  difficulty: text("difficulty").notNull(),
  learnerLevel: text("learner_level").notNull(),
  tags: text("tags").array().notNull().default(sql`'{}'::text[]`),
  /** How the case came to be: "example", "generated", "imported", "duplicate". */
  origin: text("origin").notNull(),
  /** Errors and warnings the consistency checks found on the current version. */
  errorCount: integer("error_count").notNull().default(0),
  warningCount: integer("warning_count").notNull().default(0),
  /** The case's words for full-text search (title, complaint, diagnosis, objectives, tags). */
  searchText: text("search_text").notNull(),
  search: tsvector("search").generatedAlwaysAs(sql`to_tsvector('english', "search_text")`),
  /** For semantic search; made by the knowledge base's embedder. */
  embedder: text("embedder").notNull(),
  embedding: vector("embedding", { dimensions: EMBEDDING_DIMENSIONS }).notNull(),
  ...timestamps,
}, (t) => [
  index("cases_search_idx").using("gin", t.search),
  index("cases_updated_idx").on(t.updatedAt.desc()),
  index("cases_owner_idx").on(t.ownerId),
  check("cases_difficulty_check", sql`${t.difficulty} in ('introductory', 'intermediate', 'advanced')`),
]);

/** Every saved state of a case: each edit, import or restore appends one; none is ever changed. */
export const caseVersions = pgTable("case_versions", {
  caseId: uuid("case_id").notNull().references(() => cases.id, { onDelete: "cascade" }),
  version: integer("version").notNull(),
  /** The case, valid against cases/schema.ts when it was saved (read back through parseCase: schemas change). */
  data: jsonb("data").$type<unknown>().notNull(),
  /** Consistency flags found on this version. */
  flags: jsonb("flags").$type<CaseFlag[]>().notNull().default(sql`'[]'::jsonb`),
  /** What made this version: "Created from an example", "Edited vital signs", "Restored version 2". */
  note: text("note").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [primaryKey({ columns: [t.caseId, t.version] })]);

/** One-time start-up work already done (the example cases are added once; a library emptied by hand stays empty). */
export const seeds = pgTable("seeds", {
  name: text("name").primaryKey(),
  doneAt: timestamp("done_at", { withTimezone: true }).notNull().defaultNow(),
});

/** A run of `deno task eval answers`: each model's figures over a question set (no question or answer text). */
export const answerEvals = pgTable("answer_evals", {
  id: uuid("id").primaryKey().defaultRandom(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  /** What was asked: "held out of data/corpus", "questions file". */
  questionSet: text("question_set").notNull(),
  questions: integer("questions").notNull(),
  figures: jsonb("figures").$type<AnswerFigures[]>().notNull(),
}, (t) => [index("answer_evals_created_idx").on(t.createdAt.desc())]);
