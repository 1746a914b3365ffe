/**
 * Training data for the next fine-tune: clinicians' feedback (answers marked good, written corrections, a good
 * and a bad version of the same answer) and ingested datasets, turned into the records TRL's trainers read, in
 * the prompt format the model is served with. Everything that leaves is redacted (safety/phi.ts), with one
 * redactor per conversation so a name keeps its placeholder across the prompt and the answer; records are
 * deduplicated and split into train and held-out sets by conversation (or dialogue), so no conversation is on
 * both sides.
 */
import { createHash } from "node:crypto";
import type { Db } from "../db/client.ts";
import { conversationsWithFeedback, type Message, turnsOf } from "../db/messages.ts";
import { type CitedSource, sourcesOfMessages } from "../db/snippets.ts";
import type { ModelRegistry } from "../inference/models.ts";
import {
  BUILTIN_TEMPLATES,
  type ChatMessage,
  promptForServer,
  type PromptInput,
  type PromptTemplate,
  stripSpecialTokens,
} from "../inference/templates.ts";
import type { ParseEvent } from "../knowledge/records.ts";
import { joinChunks } from "../knowledge/snippets.ts";
import { referenceBlocks } from "../knowledge/retrieve.ts";
import { createRedactor } from "../safety/phi.ts";
import { yieldToEventLoop } from "../slices.ts";

/** Where an example came from. */
export type ExampleOrigin =
  /** A reply a clinician marked good (thumbs up), as written. */
  | "good"
  /** A clinician's written correction of a reply: the target, and (against the reply) the chosen answer. */
  | "correction"
  /** Two versions of the same answer (regenerated), one marked good and one bad. */
  | "versions"
  /** An exchange of an ingested dataset. */
  | "dataset";

/** What a record teaches: an answer (supervised fine-tuning) or a preference between two answers. */
export type ExampleKind = "sft" | "preference";

/** One training example before it is put in a template's format. All text is already redacted. */
export interface TrainingExample {
  kind: ExampleKind;
  origin: ExampleOrigin;
  /** What the held-out split draws by: a conversation, or a dataset's dialogue, stays on one side. */
  group: string;
  input: PromptInput;
  /** The answer to learn (SFT), or the chosen one (preference). */
  target: string;
  /** For preference: the answer not to give. */
  rejected?: string;
  /** The ids it came from (messages, or the dataset record), for tracing a record back. */
  source: Record<string, string | number | null>;
}

/** Why feedback did not become training data, counted. */
export type SkipCounts = Record<string, number>;

/** Replies written without a model (the retrieval-only reply, a practice patient who cannot answer). */
const WRITTEN_WITHOUT_MODEL = "no_model";

/** Text compared as a clinician reads it: a correction that only re-spaces the reply corrects nothing. */
function sameText(a: string, b: string): boolean {
  const norm = (text: string) => text.normalize("NFKC").replace(/\s+/g, " ").trim();
  return norm(a) === norm(b);
}

/**
 * A redactor for one conversation that has read all of it first: a name it learns from a later text (a
 * correction naming the patient, "Mr Haddad is 80" after "Haddad has new AF") is then replaced in the earlier
 * ones too. The same text gives the same result, so the prompt and the answer agree on placeholders.
 */
function conversationRedactor(all: readonly string[]): (text: string) => string {
  const redactor = createRedactor();
  for (const text of all) redactor.redact(text);
  const seen = new Map<string, string>();
  return (text) => {
    let out = seen.get(text);
    if (out === undefined) {
      out = redactor.redact(text).text;
      seen.set(text, out);
    }
    return out;
  };
}

/**
 * The examples in conversations clinicians left feedback in (db/messages.ts:conversationsWithFeedback), with the
 * sources each reply was shown (db/snippets.ts:sourcesOfMessages). The prompt is rebuilt as it was served: the
 * system prompt, the conversation before the question, the question and the quoted sources.
 *
 * - a correction is an SFT target, and the chosen answer against the reply it corrects;
 * - a completed reply marked good is an SFT target as written;
 * - a reply marked bad, beside a version of the same answer marked good, is a preference pair.
 *
 * Replies written without a model (the retrieval-only reply) are never a target or a rejected answer; a
 * correction of one still teaches what the answer should have been.
 */
export async function examplesFromFeedback(
  conversations: ReadonlyMap<string, readonly Message[]>,
  sources: ReadonlyMap<string, readonly CitedSource[]>,
  options: { systemPrompt: string; references?: boolean },
): Promise<{ examples: TrainingExample[]; skipped: SkipCounts }> {
  const examples: TrainingExample[] = [];
  const skipped: SkipCounts = {};
  const skip = (reason: string) => skipped[reason] = (skipped[reason] ?? 0) + 1;
  for (const [chatId, rows] of conversations) {
    // Other requests go on between conversations: redacting a long one takes milliseconds.
    await yieldToEventLoop();
    // Oldest first, as the conversation was redacted when it was served (placeholders are numbered in order),
    // then the corrections and the quoted sources.
    const redact = conversationRedactor([
      ...rows.map((r) => r.content),
      ...rows.flatMap((r) => r.correction ? [r.correction] : []),
      ...rows.flatMap((r) => (sources.get(r.id) ?? []).flatMap((s) => s.snippet ? [s.snippet.text] : [])),
    ]);
    const questions = new Map(rows.filter((r) => r.role === "user").map((r) => [r.id, r]));
    const versions = new Map<string, Message[]>();
    for (const row of rows) {
      if (row.role !== "assistant" || !row.replyTo || !questions.has(row.replyTo)) continue;
      versions.set(row.replyTo, [...versions.get(row.replyTo) ?? [], row]);
    }
    for (const [questionId, replies] of versions) {
      const question = questions.get(questionId)!;
      const promptFor = (reply: Message): PromptInput => {
        const cited = options.references === false
          ? []
          : (sources.get(reply.id) ?? []).flatMap((s) =>
            s.snippet ? [{ rank: s.rank, snippet: s.snippet, score: s.score, fused: 0 }] : []
          );
        return {
          system: options.systemPrompt,
          history: turnsOf(rows, question.seq).map((t) => ({
            user: redact(t.user),
            assistant: redact(t.assistant),
          })),
          question: redact(question.content),
          references: cited.length ? referenceBlocks(cited).map(redact) : undefined,
        };
      };
      const trace = (reply: Message, extra: Record<string, string | number | null> = {}) => ({
        conversation: chatId,
        question_message: question.id,
        reply_message: reply.id,
        model: reply.model,
        feedback: reply.feedback,
        ...extra,
      });
      const byModel = (reply: Message) =>
        reply.finishReason !== WRITTEN_WITHOUT_MODEL && reply.content.trim() !== "";
      const good = replies.filter((r) =>
        r.feedback === 1 && r.status === "completed" && byModel(r) && !r.correction?.trim()
      );
      for (const reply of replies) {
        const correction = reply.correction?.trim() ?? "";
        if (correction) {
          const input = promptFor(reply);
          examples.push({
            kind: "sft",
            origin: "correction",
            group: chatId,
            input,
            target: redact(correction),
            source: trace(reply),
          });
          if (byModel(reply) && !sameText(reply.content, correction)) {
            examples.push({
              kind: "preference",
              origin: "correction",
              group: chatId,
              input,
              target: redact(correction),
              rejected: redact(reply.content),
              source: trace(reply),
            });
          }
          continue;
        }
        if (reply.feedback === 1) {
          if (!byModel(reply)) skip("marked good, but written without a model");
          else if (reply.status !== "completed") skip("marked good, but the reply did not finish");
          else {
            examples.push({
              kind: "sft",
              origin: "good",
              group: chatId,
              input: promptFor(reply),
              target: redact(reply.content),
              source: trace(reply),
            });
          }
        } else if (reply.feedback === -1) {
          const chosen = good.find((g) => !sameText(g.content, reply.content));
          if (!chosen || !byModel(reply)) {
            skip("marked bad, with no correction or good version to prefer");
            continue;
          }
          examples.push({
            kind: "preference",
            origin: "versions",
            group: chatId,
            input: promptFor(chosen),
            target: redact(chosen.content),
            rejected: redact(reply.content),
            source: trace(reply, { chosen_message: chosen.id }),
          });
        }
      }
    }
  }
  return { examples, skipped };
}

/**
 * The exchanges of a dataset file (the events of knowledge/parsers.ts:parseFile) as SFT examples: the patient's
 * question (or MASHQA's) as the prompt, with the system prompt and nothing retrieved, and the doctor's answer as
 * the target. A long answer ingest split into chunks is joined again. Literature (no question) is skipped.
 */
export async function* examplesFromDataset(
  events: AsyncIterable<ParseEvent>,
  options: { systemPrompt: string; fileName: string; onSkip?: (reason: string) => void },
): AsyncGenerator<TrainingExample> {
  for await (const event of events) {
    if (event.kind === "skip") {
      options.onSkip?.(event.reason);
      continue;
    }
    const exchanges = joinChunks(event.snippets);
    const redact = conversationRedactor(exchanges.flatMap((e) => [e.question ?? "", e.answer]));
    for (const exchange of exchanges) {
      if (!exchange.question?.trim()) {
        options.onSkip?.("no question to answer (literature)");
        continue;
      }
      yield {
        kind: "sft",
        origin: "dataset",
        group: `${options.fileName}#${event.index}`,
        input: { system: options.systemPrompt, history: [], question: redact(exchange.question) },
        target: redact(exchange.answer),
        source: { dataset: exchange.source, source_id: exchange.sourceId, file: options.fileName },
      };
    }
  }
}

/** A record in the shape TRL's trainers read, with Rounds's trace fields beside it. */
export type TrainingRecord = Record<string, unknown> & { id: string };

/** The end-of-sequence token a template's answers end with, when it has one (`</s>`, `<|im_end|>`…). */
function endOfAnswer(template: PromptTemplate): string {
  return template.kind === "raw" ? template.stop.find((s) => /^<[^<>\s]+>$/.test(s)) ?? "" : "";
}

/**
 * An example in a template's format. The chat template gives TRL's conversational shape (lists of messages: the
 * model's own chat template renders them at training time); a raw template, the standard shape with the prompt
 * exactly as it is sent to the server (the BOS left to the tokenizer, as the server adds it) and the answer as
 * the template continues it, ended by the end-of-sequence token:
 *
 * - SFT, prompt-completion: `{prompt, completion}`;
 * - preference: `{prompt, chosen, rejected}`.
 */
export function formatExample(example: TrainingExample, template: PromptTemplate): TrainingRecord {
  let prompt: string | ChatMessage[];
  let answer: (text: string) => string | ChatMessage[];
  if (template.kind === "chat") {
    prompt = template.messages(example.input);
    answer = (text) => [{ role: "assistant", content: stripSpecialTokens(text).trim() }];
  } else {
    const served = promptForServer(template, example.input);
    const eos = endOfAnswer(template);
    prompt = served;
    answer = (text) => {
      const whole = promptForServer(template, { ...example.input, answerPrefix: text.trim() });
      return (whole.startsWith(served) ? whole.slice(served.length) : stripSpecialTokens(text).trim()) + eos;
    };
  }
  const body = example.kind === "sft"
    ? { prompt, completion: answer(example.target) }
    : { prompt, chosen: answer(example.target), rejected: answer(example.rejected ?? "") };
  return {
    id: recordId(body),
    ...body,
    origin: example.origin,
    source: example.source,
  };
}

/** A record's id: the hash of what it teaches, as read (case and spacing aside), so duplicates share it. */
function recordId(body: Record<string, unknown>): string {
  const text = JSON.stringify(body).normalize("NFKC").replace(/\s+/g, " ").toLowerCase();
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** Train or held-out. */
export type Split = "train" | "test";

/** Whether a group is held out: a fraction of the groups, the same ones for the same seed on every run. */
export function splitOf(group: string, options: { testFraction: number; seed: string }): Split {
  if (options.testFraction <= 0) return "train";
  const hash = createHash("sha256").update(`${options.seed}\u0000${group}`).digest();
  return hash.readUInt32BE(0) / 0x1_0000_0000 < options.testFraction ? "test" : "train";
}

/** What an export wrote. */
export interface ExportCounts {
  written: Record<ExampleKind, Record<Split, number>>;
  /** Records identical to one already written (as read: case and spacing aside). */
  duplicates: number;
  byOrigin: Partial<Record<ExampleOrigin, number>>;
}

/**
 * Formats, deduplicates and splits examples as they come, writing each record as one JSON line to
 * `write(kind, split, line)`. Only the ids of what was written are kept, so a dataset of any size streams.
 */
export function trainingWriter(options: {
  template: PromptTemplate;
  testFraction: number;
  seed: string;
  write: (kind: ExampleKind, split: Split, line: string) => void | Promise<void>;
}) {
  const seen = new Set<string>();
  const counts: ExportCounts = {
    written: { sft: { train: 0, test: 0 }, preference: { train: 0, test: 0 } },
    duplicates: 0,
    byOrigin: {},
  };
  return {
    counts,
    async add(example: TrainingExample): Promise<void> {
      const record = formatExample(example, options.template);
      const key = `${example.kind}:${record.id}`;
      if (seen.has(key)) {
        counts.duplicates++;
        return;
      }
      seen.add(key);
      const split = splitOf(example.group, options);
      counts.written[example.kind][split]++;
      counts.byOrigin[example.origin] = (counts.byOrigin[example.origin] ?? 0) + 1;
      await options.write(example.kind, split, JSON.stringify(record) + "\n");
    },
  };
}

/** The template a choice names: `model:<id>` (that model's), a built-in name, or null (the default model's). */
export function chooseTemplate(
  choice: string | null,
  models: ModelRegistry,
): { name: string; template: PromptTemplate } | { error: string } {
  if (!choice) {
    const spec = models.get(null);
    return spec
      ? { name: spec.templateName, template: spec.template }
      : { name: "chat", template: BUILTIN_TEMPLATES.chat };
  }
  if (choice.startsWith("model:")) {
    const id = choice.slice("model:".length);
    const spec = models.list().find((m) => m.id === id);
    if (!spec) {
      const ids = models.list().map((m) => m.id);
      return {
        error: `No configured model is called "${id}"${ids.length ? ` (there is ${ids.join(", ")})` : ""}.`,
      };
    }
    return { name: spec.templateName, template: spec.template };
  }
  const template = Object.hasOwn(BUILTIN_TEMPLATES, choice) ? BUILTIN_TEMPLATES[choice] : undefined;
  if (!template) {
    return {
      error: `Unknown template "${choice}": use ${Object.keys(BUILTIN_TEMPLATES).join(", ")} or model:<id>.`,
    };
  }
  return { name: choice, template };
}

/**
 * Exports the feedback in the database through a writer ({@link trainingWriter}): reads the conversations with
 * feedback and the sources their replies were shown, and hands on every example. Returns what was skipped.
 */
export async function exportFeedback(
  db: Db,
  writer: { add(example: TrainingExample): Promise<void> },
  options: { systemPrompt: string; references?: boolean },
): Promise<{ skipped: SkipCounts; conversations: number }> {
  const conversations = await conversationsWithFeedback(db);
  const replies = [...conversations.values()].flat().filter((m) =>
    m.role === "assistant" && (m.feedback !== null || m.correction?.trim())
  );
  const sources = options.references === false
    ? new Map<string, CitedSource[]>()
    : await sourcesOfMessages(db, replies.map((m) => m.id));
  const { examples, skipped } = await examplesFromFeedback(conversations, sources, options);
  for (const example of examples) await writer.add(example);
  return { skipped, conversations: conversations.size };
}
