/**
 * Practice sessions on the database: starting one from a case, the runner's roleplay hook (the patient's prompt
 * from the case version the session started on), and ending with a debrief that is stored with the session.
 */
import { redactTexts } from "../safety/phi.ts";
import { authored } from "../safety/gate.ts";
import { caseAccess, getCase, getVersion } from "../db/cases.ts";
import type { Db } from "../db/client.ts";
import { listMessages } from "../db/messages.ts";
import { type Chat, createPracticeChat, getChat, saveDebrief } from "../db/chats.ts";
import type { ModelRegistry } from "../inference/models.ts";
import { streamGeneration } from "../inference/completion.ts";
import { estimateTokens } from "../inference/tokenizer.ts";
import {
  type DebriefScore,
  feedbackPrompt,
  patientSystemPrompt,
  revealedFacts,
  scoreTranscript,
} from "./practice.ts";
import { type Case, parseCase } from "./schema.ts";

/** A stored debrief: the deterministic score, and the model's feedback kept apart from it. */
export interface Debrief {
  endedAt: string;
  caseTitle: string;
  score: DebriefScore;
  /** The model's narrative feedback, or why there is none. */
  feedback: { text: string; model: string } | { text: null; reason: string };
}

/** Starts a practice session on a case's current version. Null when the case does not exist. */
export async function startPractice(
  db: Db,
  caseId: string,
  ownerId: string | null,
): Promise<Chat | null> {
  const found = await getCase(db, caseId);
  if (!found) return null;
  const parsed = parseCase(found.current.data);
  if (!parsed.ok) throw new Error(`Stored case ${caseId} is invalid: ${parsed.errors[0].message}`);
  return await createPracticeChat(db, {
    ownerId,
    caseId,
    caseVersion: found.summary.currentVersion,
    title: `Practice: ${parsed.value.title}`,
    openingLine: parsed.value.script.openingLine,
  });
}

/**
 * Whether the learner who owns a practice session may still see its case: their own, shared, or an example.
 * A case unshared (or deleted) after the practice began takes its script and debrief with it.
 */
export async function practiceCaseVisible(db: Db, session: Chat): Promise<boolean> {
  if (session.kind !== "practice" || !session.caseId) return false;
  const access = await caseAccess(db, session.caseId);
  return access !== null && (access.shared || access.ownerId === null || access.ownerId === session.ownerId);
}

/** The case version a practice session plays, or null when it was deleted or is no longer shared with them. */
export async function practiceCase(db: Db, session: Chat): Promise<Case | null> {
  if (session.kind !== "practice" || !session.caseId || !session.caseVersion) return null;
  if (!(await practiceCaseVisible(db, session))) return null;
  const version = await getVersion(db, session.caseId, session.caseVersion);
  if (!version) return null;
  const parsed = parseCase(version.data);
  return parsed.ok ? parsed.value : null;
}

/** The runner's roleplay hook: the patient's system prompt, holding only the facts already asked about. */
export function practiceRoleplay(db: Db) {
  return async (session: Chat, learnerTurns: string[]): Promise<{ system: string } | null> => {
    const c = await practiceCase(db, session);
    if (!c) return null;
    return { system: patientSystemPrompt(c, revealedFacts(c, learnerTurns).map((r) => r.fact)) };
  };
}

/** The session's transcript: the learner's questions and the patient's answers, in order. */
async function transcript(db: Db, sessionId: string) {
  const rows = await listMessages(db, sessionId);
  return rows.filter((m) => !m.superseded && m.content.trim()).map((m) => ({
    role: m.role === "user" ? "learner" as const : "patient" as const,
    text: m.content,
  }));
}

/**
 * Ends a practice session: scores the transcript against the checklist, asks the model (when there is one) for
 * narrative feedback, and stores both. Null when the session is not a practice session or its case is gone.
 */
export async function endPractice(
  db: Db,
  models: ModelRegistry,
  sessionId: string,
  signal: AbortSignal,
  options: {
    redactPhi: boolean;
    /** Told what the feedback generated, in tokens, for the user's daily budget. */
    onTokens?: (tokens: number) => void | Promise<void>;
  } = { redactPhi: true },
): Promise<Debrief | null> {
  const session = await getChat(db, sessionId);
  if (!session) return null;
  const c = await practiceCase(db, session);
  if (!c) return null;
  const turns = await transcript(db, sessionId);
  const score = scoreTranscript(c, turns.filter((t) => t.role === "learner").map((t) => t.text));
  // The transcript goes to the model with identifiers replaced, as every chat turn does: one redactor for the
  // whole conversation, so a name keeps its placeholder throughout. Scoring above stays on this server.
  const redacted = options.redactPhi ? redactTexts(turns.map((t) => t.text)) : null;
  const outward = redacted ? turns.map((t, i) => ({ ...t, text: redacted[i].text })) : turns;
  const feedback = await narrative(models, c, outward, score, signal, options.onTokens);
  const debrief: Debrief = { endedAt: new Date().toISOString(), caseTitle: c.title, score, feedback };
  await saveDebrief(db, sessionId, debrief);
  return debrief;
}

async function narrative(
  models: ModelRegistry,
  c: Case,
  turns: { role: "learner" | "patient"; text: string }[],
  score: DebriefScore,
  signal: AbortSignal,
  onTokens?: (tokens: number) => void | Promise<void>,
): Promise<Debrief["feedback"]> {
  const spec = models.get(null);
  if (!spec) return { text: null, reason: "No model is configured, so there is no narrative feedback." };
  if (score.learnerTurns === 0) {
    return { text: null, reason: "The learner asked nothing, so there is nothing to comment on." };
  }
  const input = {
    system: authored(
      "You are an experienced clinical teacher giving formative feedback after a practice station.",
    ),
    history: [],
    question: feedbackPrompt(c, turns, score),
    keepSystem: true,
  };
  try {
    const chunks = streamGeneration(models, spec, input, {
      temperature: spec.defaults.temperature,
      topP: spec.defaults.topP,
      maxNewTokens: Math.min(400, spec.maxNewTokensLimit),
    }, { signal });
    let text = "";
    let reported: number | undefined;
    try {
      for await (const chunk of chunks) {
        text += chunk.text;
        if (chunk.outputTokens !== undefined) reported = chunk.outputTokens;
      }
    } finally {
      await onTokens?.(reported ?? estimateTokens(text));
    }
    text = text.trim();
    return text ? { text, model: spec.label } : { text: null, reason: "The model returned no feedback." };
  } catch (error) {
    return { text: null, reason: `The model's feedback could not be generated: ${(error as Error).message}` };
  }
}
