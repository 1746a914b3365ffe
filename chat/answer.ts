/**
 * Preparing the answer to a chat message: the conversation so far with identifiers replaced, the simulated
 * patient's role in a practice session, the evidence from the knowledge base (stored with the reply), the
 * sampling settings, and the prompt input. What it returns is all the generation engine (inference/runner.ts)
 * needs; the engine knows nothing of chats, users or the knowledge base.
 */
import { type Db, loggable, loggableMessage } from "../db/client.ts";
import { recordAudit } from "../db/audit.ts";
import { type Message, type Turn, type TurnRow, turnsBefore, turnsOf } from "../db/messages.ts";
import { getUser } from "../db/users.ts";
import { type Chat, getChat } from "../db/chats.ts";
import { saveMessageSources, sourcesOfMessages } from "../db/snippets.ts";
import { addTokensForChat } from "../db/limits.ts";
import { citationLabel } from "../knowledge/citation.ts";
import type { FittedPrompt, Sampling } from "../inference/completion.ts";
import type { ModelRegistry, ModelSpec } from "../inference/models.ts";
import type { Job, PreparedGeneration } from "../inference/runner.ts";
import { cutAtStop, type PromptInput } from "../inference/templates.ts";
import {
  type KnowledgeSettings,
  referenceBlocks,
  type RetrievalOptions,
  type RetrievalResult,
  retrieve,
  type Retrieved,
} from "../knowledge/retrieve.ts";
import { createRedactor, type PhiRedactor, redactAgainWhereLearned } from "../safety/phi.ts";
import { authored, redactedAlready } from "../safety/gate.ts";
import { isFollowUp, retrievalQuery } from "./follow_up.ts";
import { askPubmed, parseKeywords, PubmedError } from "../knowledge/pubmed.ts";
import { streamGeneration } from "../inference/completion.ts";
import { inSlices, SMALL_WORK_CHARS, yieldToEventLoop } from "../slices.ts";

/** What preparing an answer needs. */
export interface AnswerDeps {
  db: Db;
  models: ModelRegistry;
  systemPrompt: string;
  /** Grounding: the knowledge base is searched before each answer; absent means answers are not grounded. */
  knowledge?: KnowledgeSettings | null;
  /**
   * For practice sessions: the system prompt that makes the model play the patient, given the learner's
   * messages so far (the current one last). Null when the session's case is gone. Practice is never grounded
   * in the knowledge base.
   */
  roleplay?: (chat: Chat, learnerTurns: string[]) => Promise<{ system: string } | null>;
  /**
   * Replace identifiers (names, dates, numbers…; safety/phi.ts) with placeholders in everything sent to the
   * inference and embedding endpoints: the question, the history and the retrieval query.
   */
  redactPhi?: boolean;
}

/** What a practice session answers when it cannot play the patient. */
export const NO_PATIENT_REPLY =
  "The simulated patient cannot answer: no model is connected, or the case this practice was started from " +
  "was deleted or is no longer shared with you. The transcript so far is kept; ask your Rounds administrator " +
  "to connect a model, or the case's author to share it again.";

/** The reply stored when no model is configured (clinicians read it: no variable names). */
export const NO_MODEL_REPLY =
  "No model is connected on this server, so Rounds cannot write an answer. Your message has been saved. " +
  "Ask your Rounds administrator to connect a model.";

const EXCERPT_CHARS = 700;
/** Longest wait for the evidence: past it, the answer goes on ungrounded rather than keep the clinician waiting. */
const EVIDENCE_TIMEOUT_MS = 15_000;

/**
 * The retrieval-only reply when no model is configured: the closest doctor replies, quoted, numbered like the
 * source list under it, and plainly labelled as retrieved text.
 */
export function retrievalOnlyReply(result: RetrievalResult): string {
  const head =
    "No model is connected, so this is not a written answer: these are the closest doctor replies in the " +
    "knowledge base. They are retrieved text written for other patients, not an answer to your question and " +
    "not verified advice.";
  if (result.evidence === "empty") {
    return `${NO_MODEL_REPLY}\n\nThe knowledge base is empty, so there are no doctor replies to show either.`;
  }
  if (result.results.length === 0) {
    const best = result.bestScore === null ? "" : ` (the closest scored ${result.bestScore.toFixed(2)})`;
    return `${NO_MODEL_REPLY}\n\nNo doctor reply in the knowledge base is close enough to this question to show` +
      `${best}. Try describing it with other words.`;
  }
  const quoted = result.results.map(({ rank, snippet, score }) => {
    const excerpt = snippet.answer.length > EXCERPT_CHARS
      ? snippet.answer.slice(0, EXCERPT_CHARS).replace(/\s+\S*$/, "") + " …"
      : snippet.answer;
    const about = snippet.question ?? snippet.title;
    const lines = [`**[${rank}]** ${citationLabel(snippet)} · similarity ${score.toFixed(2)}`];
    if (about) lines.push(`> *Asked:* ${oneLine(about, 240)}`, ">");
    lines.push(`> ${oneLine(excerpt, EXCERPT_CHARS + 2)}`);
    return lines.join("\n");
  });
  return `${head}\n\n${quoted.join("\n\n")}`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max).replace(/\s+\S*$/, "") + " …" : flat;
}

/** The sampling settings a session uses: its overrides, within the model's limits, over the model's defaults. */
export function effectiveSettings(
  spec: ModelSpec,
  chat: Pick<Chat, "temperature" | "topP" | "maxNewTokens"> | null,
): Sampling {
  return {
    temperature: chat?.temperature ?? spec.defaults.temperature,
    topP: chat?.topP ?? spec.defaults.topP,
    maxNewTokens: Math.min(chat?.maxNewTokens ?? spec.defaults.maxNewTokens, spec.maxNewTokensLimit),
  };
}

/**
 * Searches the knowledge base for the question (with the questions before it when it is a follow-up, so "and the
 * dose?" keeps its subject: chat/follow_up.ts) and stores what was found with the reply. A continuation reuses the stored sources.
 * A failed search is logged and the answer goes on ungrounded: the stored evidence state stays empty.
 */
async function gatherEvidence(
  deps: AnswerDeps,
  job: Job,
  question: string,
  history: { user: string; assistant?: string }[],
  saves: Promise<void>[],
  begun?: Promise<RetrievalResult>,
): Promise<RetrievalResult | null> {
  const knowledge = deps.knowledge;
  if (!knowledge || knowledge.k <= 0) return null;
  if (job.mode === "continue") {
    const stored = (await sourcesOfMessages(deps.db, [job.assistant.id])).get(job.assistant.id) ?? [];
    const results: Retrieved[] = stored.flatMap((s) =>
      s.snippet ? [{ rank: s.rank, snippet: s.snippet, score: s.score, fused: 0 }] : []
    );
    return { evidence: job.assistant.evidence ?? "none_relevant", results, bestScore: null };
  }
  // A follow-up ("and the dose?") carries the subject of the questions it continues; a new subject starts clean,
  // so its sources are not the last topic's.
  const query = retrievalQuery(question, history.map((turn) => turn.user));
  try {
    const options = { ...searchOptions(knowledge), followUp: query !== question };
    let result = await (begun ?? retrieve(deps.db, knowledge.embedder, query, options));
    let note: string | null = null;
    const pubmed = knowledge.pubmed;
    if (pubmed && (pubmed.settings.mode === "always" || weakEvidence(result, knowledge.minScore))) {
      // PubMed's abstracts join the knowledge base; the search is made again so they rank with the rest.
      try {
        const spec = deps.models.get(job.assistant.model ?? null);
        const outcome = await askPubmed(
          deps.db,
          knowledge.embedder,
          pubmed,
          question,
          AbortSignal.timeout(pubmed.settings.timeoutMs),
          {
            // Names the earlier turns taught are replaced in the question too, whatever PHI_REDACTION says.
            earlier: history.flatMap((turn) => [turn.user, turn.assistant ?? ""]),
            vocabulary: knowledge.vocabulary,
            keywords: spec
              ? (text, signal) =>
                modelKeywords(
                  deps,
                  spec,
                  text,
                  AbortSignal.any([signal, AbortSignal.timeout(KEYWORDS_TIMEOUT_MS)]),
                )
              : undefined,
          },
        );
        if (outcome.found > 0) result = await retrieve(deps.db, knowledge.embedder, query, options);
        if (outcome.found === 0) note = "PubMed was searched too and found no article on this question.";
      } catch (error) {
        const why = error instanceof PubmedError ? error.message : "PubMed failed";
        if (!(error instanceof PubmedError)) {
          console.error(`PubMed for message ${job.assistant.id}:`, loggable(error));
        }
        note = `PubMed could not be searched (${why}): these sources are from the local knowledge base only.`;
      }
    }
    // Stored while the model works: the request need not wait for it (the engine does, before the reply ends).
    saves.push(saveMessageSources(deps.db, job.assistant.id, {
      state: result.evidence,
      sources: result.results.map((r) => ({ snippetId: r.snippet.id, score: r.score })),
      note,
    }));
    return result;
  } catch (error) {
    console.error(`retrieval for message ${job.assistant.id} failed:`, loggableMessage(error));
    return null;
  }
}

/** How the knowledge base is searched for an answer. */
function searchOptions(knowledge: KnowledgeSettings): RetrievalOptions {
  return {
    k: knowledge.k,
    minScore: knowledge.minScore,
    signal: AbortSignal.timeout(EVIDENCE_TIMEOUT_MS),
    vocabulary: knowledge.vocabulary,
    reranker: knowledge.reranker,
    rerankTop: knowledge.rerankTop,
  };
}

/** What the model is asked for PubMed keywords (the design's chatbot searched with the model's keywords). */
const KEYWORDS_INSTRUCTION =
  "List two to five PubMed search keywords (medical terms, no sentences) for the clinical question below, " +
  "separated by commas. Reply with the keywords only.";
/** The longest wait for the model's keywords: past it, the question's own terms are searched. */
const KEYWORDS_TIMEOUT_MS = 2500;

/** Keywords for a PubMed search from the model (the question is redacted, and passes the gate again). */
async function modelKeywords(
  deps: AnswerDeps,
  spec: ModelSpec,
  question: string,
  signal: AbortSignal,
): Promise<string[] | null> {
  let reply = "";
  const input: PromptInput = {
    system: authored(KEYWORDS_INSTRUCTION),
    history: [],
    question,
    keepSystem: true,
  };
  const sampling = { temperature: 0, topP: 1, maxNewTokens: 32 };
  for await (const chunk of streamGeneration(deps.models, spec, input, sampling, { signal })) {
    reply += chunk.text;
    if (reply.length > 400) break;
  }
  return parseKeywords(cutAtStop(reply, spec.template.stop));
}

/**
 * Local evidence too weak to stand alone (PUBMED=fallback asks PubMed then): fewer than two sources, or a best
 * one that only just passes the minimum similarity.
 */
export function weakEvidence(result: RetrievalResult, minScore: number): boolean {
  return result.results.length < 2 || result.results[0].score < Math.min(0.95, minScore * 2);
}

/**
 * A question searched before the conversation is read, as the search would have had it after: identifiers
 * replaced, here by a redactor of its own (placeholders may be numbered apart from the prompt's; the search
 * does not use them).
 */
function redactedAlone(deps: AnswerDeps, question: string): string {
  return deps.redactPhi ? redactedAlready(createRedactor().redact(question).text) : question;
}

/** A conversation's redactor and what each of its texts became. */
interface ConversationRedaction {
  redactor: PhiRedactor;
  /** Each text redacted, and how many name words the redactor had learned when it was last checked. */
  outward: Map<string, { text: string; learnedAt: number }>;
  chars: number;
}

/** Conversations redacted lately, least recently used first; bounded by the characters they hold. */
const conversations = new Map<string, ConversationRedaction>();
const CONVERSATION_CACHE_CHARS = 4_000_000;
let conversationChars = 0;

/**
 * The texts of a conversation, oldest first, with identifiers replaced consistently across them. Texts seen
 * before are not redacted again, so the cost of a reply is its new text (a conversation not seen since this
 * process started is redacted once, in slices that let other requests through); a text that holds a name
 * learned after it was redacted is redacted again.
 */
export async function redactConversation(chatId: string, texts: string[]): Promise<string[]> {
  let conversation = conversations.get(chatId);
  if (conversation) conversations.delete(chatId);
  else conversation = { redactor: createRedactor(), outward: new Map(), chars: 0 };
  conversations.set(chatId, conversation);
  const out: string[] = new Array(texts.length);
  const known = conversation;
  const { redactor } = known;
  const newChars = texts.reduce((n, text) => n + (known.outward.has(text) ? 0 : text.length), 0);
  // How many name words the redactor knew when each text was redacted or last checked (another request on the
  // same chat may have taught it more since).
  const learnedAt = new Array<number>(texts.length);
  await inSlices(texts.length, (i) => {
    const text = texts[i];
    let entry = known.outward.get(text);
    if (entry === undefined) {
      entry = { text: redactedAlready(redactor.redact(text).text), learnedAt: redactor.learnedNames.length };
      known.outward.set(text, entry);
    }
    out[i] = entry.text;
    learnedAt[i] = entry.learnedAt;
  }, { yieldFirst: newChars > SMALL_WORK_CHARS });
  // A name learned from a later text ("Mr Haddad is 80" after "haddad has new AF"): the earlier texts holding it
  // are redacted again, so the conversation never sends it in the clear. Until a round learns nothing (each
  // round that goes on needs a word the one before learned).
  await redactAgainWhereLearned(redactor, texts, learnedAt, (i) => {
    out[i] = redactedAlready(redactor.redact(texts[i]).text);
    known.outward.set(texts[i], { text: out[i], learnedAt: redactor.learnedNames.length });
  });
  // Every text has now been checked against every name known (nothing learned since the last check).
  const checkedAt = redactor.learnedNames.length;
  // Only the conversation's texts as they stand are kept: a superseded or edited text is not asked for again.
  const kept = new Map<string, { text: string; learnedAt: number }>();
  let chars = 0;
  texts.forEach((text, i) => {
    if (kept.has(text)) return;
    kept.set(text, { text: out[i], learnedAt: checkedAt });
    chars += text.length + out[i].length;
  });
  known.outward = kept;
  // Counted only while it is still held: another request may have let it go while this one yielded.
  if (conversations.get(chatId) === known) {
    conversationChars += chars - known.chars;
    known.chars = chars;
  }
  for (const [id, old] of conversations) {
    if (conversationChars <= CONVERSATION_CACHE_CHARS || id === chatId) break;
    conversations.delete(id);
    conversationChars -= old.chars;
  }
  return out;
}

/**
 * What is begun for a message while its limits are checked and its exchange is stored (chat/intake.ts calls it
 * just before; a refused message drops it): the chat as the route read it, and a new subject's search. The
 * engine hands it back to prepareAnswer with the job (`Job.headStart`).
 */
export interface HeadStart {
  chat: Chat;
  /** The chat's messages before this one, as they came back with it stored (null: it was refused). */
  earlier: Promise<TurnRow[] | null>;
  /** The question as searched, and its search; null when the search must wait for the conversation. */
  search: { question: string; result: Promise<RetrievalResult> } | null;
}

/**
 * Begins what an answer needs that does not depend on the stored exchange: a question with a subject of its own
 * (chat/follow_up.ts) is searched alone, so its search runs beside storing the question (on Postgres, on another
 * connection); a follow-up is searched with the questions it continues once they come back with it stored
 * (`earlier`, db/messages.ts:startExchange). Only where the question's text stays in this process (the built-in
 * embedder, no reranker) or redaction is off: redacted here, it has not learned the names of earlier turns, which
 * the conversation's redactor would replace in it. With PubMed on, its terms leave: the question must be redacted
 * knowing the conversation's names.
 */
export function beginAnswer(
  deps: AnswerDeps,
  chat: Chat,
  message: { content: string; redacted?: string },
  earlier: Promise<TurnRow[] | null>,
): HeadStart {
  return { chat, earlier, search: chat.kind === "practice" ? null : searchAhead(deps, message, earlier) };
}

/**
 * The question's search, begun before the exchange is stored (see beginAnswer): a new subject's at once, a
 * follow-up's as soon as the questions it continues are known (`earlier`); null for a question that must wait.
 */
function searchAhead(
  deps: AnswerDeps,
  message: { content: string; redacted?: string },
  earlier?: Promise<TurnRow[] | null>,
): HeadStart["search"] {
  const knowledge = deps.knowledge;
  const staysHere = !deps.redactPhi ||
    (knowledge?.embedder.local && !knowledge.reranker && !knowledge.pubmed);
  if (!knowledge || knowledge.k <= 0 || !staysHere) return null;
  // Intake redacted the message already, alone, as this would.
  const question = !deps.redactPhi
    ? message.content
    : message.redacted !== undefined
    ? redactedAlready(message.redacted)
    : redactedAlone(deps, message.content);
  const followUp = isFollowUp(question);
  if (followUp && !earlier) return null;
  // A long question is expanded and embedded after a yield: in the turn of the loop that checked and redacted
  // it, that held the loop ~10 ms longer (bench:heavy-user's 8,000-character questions).
  const result = (followUp
    ? earlier!.then((rows) => {
      if (!rows) throw new Error("The question was not stored: nothing to search for.");
      return followUpQuery(deps, question, rows);
    })
    : question.length > SMALL_WORK_CHARS
    ? yieldToEventLoop().then(() => question)
    : Promise.resolve(question))
    .then((query) =>
      retrieve(deps.db, knowledge.embedder, query, {
        ...searchOptions(knowledge),
        followUp: query !== question,
      })
    );
  // The message may yet be refused (a repeat, a limit, a busy chat): then nobody awaits the search, and its
  // failure is not an error. When it is answered, gatherEvidence reports the failure.
  result.catch(() => {});
  return { question, result };
}

/**
 * A follow-up's search text from the conversation that came back with it stored, as gatherEvidence makes it: the
 * questions it continues (the last three at most), each redacted alone like the question (the search does not
 * use placeholders). The turns arrive in the turn of the loop that took the stored question: long texts are
 * redacted, expanded and embedded in the next, as a long new subject is.
 */
async function followUpQuery(deps: AnswerDeps, question: string, rows: readonly TurnRow[]): Promise<string> {
  const asked = turnsOf(rows, Number.POSITIVE_INFINITY).slice(-3).map((turn) => turn.user);
  if (asked.reduce((n, text) => n + text.length, question.length) > SMALL_WORK_CHARS) {
    await yieldToEventLoop();
  }
  return retrievalQuery(question, asked.map((text) => redactedAlone(deps, text)));
}

/**
 * Everything the engine needs to answer a job: the model and its prompt input, or a reply written here (no
 * model configured, or a practice whose case is gone).
 */
export async function prepareAnswer(deps: AnswerDeps, job: Job): Promise<PreparedGeneration> {
  const { db } = deps;
  const saves: Promise<void>[] = [];
  const ahead = job.headStart as HeadStart | undefined;
  const begun = ahead?.chat.id === job.sessionId && job.mode === "answer" ? ahead : undefined;
  // Regenerating (or a message taken in without a head start): the new subject's search starts now, beside the
  // reads of the conversation.
  const search = begun
    ? begun.search
    : job.mode === "answer" && !job.practice
    ? searchAhead(deps, { content: job.user.content })
    : null;
  const early = search ? gatherEvidence(deps, job, search.question, [], saves, search.result) : null;
  const [chat, stored] = await Promise.all([
    begun ? begun.chat : getChat(db, job.sessionId),
    begun ? earlierTurns(db, job, begun.earlier) : turnsBefore(db, job.sessionId, job.user.seq),
  ]);
  const id = job.assistant.model ?? chat?.model ?? null;
  const spec = (id ? deps.models.get(id) : null) ?? deps.models.get(null);
  // One redactor for the whole conversation, oldest first: a name keeps its placeholder in every turn. What each
  // text became is remembered, so a reply redacts only what is new since the last one.
  let history = stored;
  let question = job.user.content;
  if (deps.redactPhi) {
    const texts = await redactConversation(job.sessionId, [
      ...stored.flatMap((t) => [t.user, t.assistant]),
      job.user.content,
    ]);
    history = stored.map((_, i) => ({ user: texts[2 * i], assistant: texts[2 * i + 1] }));
    question = texts[texts.length - 1];
  }
  const practice = chat?.kind === "practice";
  const roleplay = practice && deps.roleplay
    ? await deps.roleplay(chat!, [...stored.map((t) => t.user), job.user.content])
    : null;
  if (practice && (!roleplay || !spec)) {
    return { kind: "reply", text: NO_PATIENT_REPLY, finishReason: "no_model" };
  }
  const evidence = practice
    ? null
    : early
    ? await early
    : await gatherEvidence(deps, job, question, history, saves);
  const settled = () =>
    Promise.all(saves).then(
      () => {},
      (error) =>
        console.error(`storing the sources of message ${job.assistant.id} failed:`, loggableMessage(error)),
    );
  if (!spec) {
    await settled();
    return {
      kind: "reply",
      text: evidence ? retrievalOnlyReply(evidence) : NO_MODEL_REPLY,
      finishReason: "no_model",
    };
  }
  // A role to play must reach the model: formats without a system block get it in front of the question.
  const folded = roleplay && spec.template.kind === "raw" && spec.template.omitsSystem;
  const input: PromptInput = {
    // Written by the operator, or by an educator for a hypothetical patient: the gate sends it as it is.
    system: authored(roleplay?.system ?? deps.systemPrompt),
    history,
    question: folded ? `${roleplay.system}\n\nThe doctor says: ${question}` : question,
    references: evidence?.results.length ? referenceBlocks(evidence.results) : undefined,
    answerPrefix: job.mode === "continue" ? job.assistant.content : undefined,
  };
  let sourcesShown = evidence?.results.length ?? 0;
  /** The reply lists only the sources the model was actually shown. */
  const onFitted = async (fitted: FittedPrompt) => {
    if (!evidence || job.mode === "continue") return;
    const kept = evidence.results.length - fitted.droppedReferences;
    if (kept === sourcesShown) return;
    sourcesShown = kept;
    await settled(); // the full list first, then the shorter one
    saves.push(saveMessageSources(db, job.assistant.id, {
      state: kept ? "sources" : "none_relevant",
      sources: evidence.results.slice(0, kept).map((r) => ({ snippetId: r.snippet.id, score: r.score })),
    }));
  };
  return { kind: "generate", spec, input, sampling: effectiveSettings(spec, chat), onFitted, settled };
}

/**
 * The turns before the job's question from the messages that came back with it stored (complete: read under the
 * chat's lock, after the check that no reply in it was being written); read from the database when none came.
 */
async function earlierTurns(db: Db, job: Job, earlier: Promise<TurnRow[] | null>): Promise<Turn[]> {
  const rows = await earlier.catch(() => null);
  return rows ? turnsOf(rows, job.user.seq) : await turnsBefore(db, job.sessionId, job.user.seq);
}

/**
 * A reply that ended in an error (or broke off) gets its own audit entry: the request that started it was
 * answered 200 the moment streaming began, before anyone knew how it would end.
 */
export async function auditFailedReply(db: Db, job: Job, message: Message): Promise<void> {
  if (message.status !== "error" && message.status !== "interrupted") return;
  const chat = await getChat(db, job.sessionId);
  const owner = chat?.ownerId ? await getUser(db, chat.ownerId) : null;
  await recordAudit(db, {
    userId: owner?.id ?? null,
    actor: owner?.email ?? "system",
    action: "message.failed",
    objectType: "message",
    objectId: message.id,
    outcome: message.status === "error" ? "failed" : "broke off",
  });
}

/** Counts what a reply generated against its owner's daily budget (a continuation counts its new tokens only). */
export async function chargeTokens(db: Db, job: Job, outputTokens: number): Promise<void> {
  const generated = outputTokens - (job.mode === "continue" ? job.assistant.outputTokens : 0);
  await addTokensForChat(db, job.sessionId, generated);
}
