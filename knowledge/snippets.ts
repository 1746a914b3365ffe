/**
 * Turning parsed records into snippet drafts: text clean-up, patient/doctor exchanges, composing the indexed
 * text and chunking long answers. Shared by every format's parser.
 */
import { chunkText } from "./chunk.ts";
import type { ParseEvent, ParseOptions, SnippetDraft } from "./records.ts";

/** Longest answer kept in one snippet; longer answers are split on sentence boundaries into `#2`, `#3`… snippets. */
export const MAX_ANSWER_CHARS = 1200;

/** Why a record was skipped; parsers throw it from record builders and report it as a `skip` event. */
export class RecordSkip extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "RecordSkip";
  }
}

/** Who speaks a dialogue turn. */
export type Speaker = "patient" | "doctor";

/** One turn of a dialogue. */
export interface Turn {
  speaker: Speaker;
  text: string;
}

/** What a dialogue record carries besides its turns. */
export interface DialogueMeta {
  source: string;
  /** Dialogue id; exchange k becomes `${dialogueId}#${k}`. */
  dialogueId: string;
  url: string | null;
  specialty: string | null;
  /** The dialogue's description, already cleaned. */
  title: string | null;
}

/** The fields of one snippet before its answer is chunked; labels prefix the question and answer lines in `text`. */
export interface SnippetParts {
  source: string;
  sourceId: string;
  url: string | null;
  specialty: string | null;
  title: string | null;
  question: string | null;
  answer: string;
  questionLabel: string | null;
  answerLabel: string | null;
}

// Control characters other than whitespace, plus zero-width spaces and stray byte-order marks: invisible
// noise that would otherwise end up in the index.
// deno-lint-ignore no-control-regex
const INVISIBLE = /[\u0000-\u0008\u000e-\u001f\u007f-\u009f\u200b\ufeff]/g;
const WHITESPACE = /\s+/g;
// Tests first, so the common clean string skips both replacements (this runs on every field of every record).
// deno-lint-ignore no-control-regex
const HAS_INVISIBLE = /[\u0000-\u0008\u000e-\u001f\u007f-\u009f\u200b\ufeff]/;
const HAS_MESSY_SPACE = /[^\S ]| {2}/;

/** Strips control characters and collapses whitespace to single spaces. */
export function cleanText(value: string): string {
  let text = value;
  if (HAS_INVISIBLE.test(text)) text = text.replace(INVISIBLE, "");
  if (HAS_MESSY_SPACE.test(text)) text = text.replace(WHITESPACE, " ");
  return text.trim();
}

/** A MedDialog description made readable as a title: cleaned, without its leading "Q. ". */
export function dialogueTitle(description: unknown): string | null {
  if (typeof description !== "string") return null;
  return cleanText(description).replace(/^Q[.:]\s*/, "") || null;
}

/** Pairs turns into exchanges: consecutive patient turns form the question, the doctor turns after it the answer. */
export function pairExchanges(turns: Turn[]): { question: string; answer: string }[] {
  const exchanges: { question: string; answer: string }[] = [];
  let question: string[] = [];
  let answer: string[] = [];
  for (const turn of turns) {
    const text = cleanText(turn.text);
    if (!text) continue;
    if (turn.speaker === "patient") {
      if (answer.length) {
        exchanges.push({ question: question.join(" "), answer: answer.join(" ") });
        [question, answer] = [[], []];
      }
      question.push(text);
    } else if (question.length) {
      // A doctor turn before any patient question answers nothing and is dropped.
      answer.push(text);
    }
  }
  if (answer.length) exchanges.push({ question: question.join(" "), answer: answer.join(" ") });
  return exchanges;
}

/** One snippet per patient→doctor exchange of a dialogue; throws {@link RecordSkip} when there is none. */
export function dialogueSnippets(meta: DialogueMeta, turns: Turn[]): SnippetDraft[] {
  const exchanges = pairExchanges(turns);
  if (exchanges.length === 0) throw new RecordSkip(missingExchangeReason(turns));
  return exchanges.flatMap(({ question, answer }, i) =>
    buildSnippets({
      source: meta.source,
      sourceId: `${meta.dialogueId}#${i + 1}`,
      url: meta.url,
      specialty: meta.specialty,
      title: meta.title,
      question,
      answer,
      questionLabel: "Patient",
      answerLabel: "Doctor",
    })
  );
}

/** The snippets for one passage: one, or one per chunk of a long answer (ids after the first get `#2`, `#3`…). */
export function buildSnippets(parts: SnippetParts): SnippetDraft[] {
  const chunks = chunkText(parts.answer, { maxChars: MAX_ANSWER_CHARS });
  return chunks.map((answer, i) => ({
    source: parts.source,
    sourceId: i === 0 ? parts.sourceId : `${parts.sourceId}#${i + 1}`,
    url: parts.url,
    specialty: parts.specialty,
    title: parts.title,
    question: parts.question,
    answer,
    text: composeText(parts, answer),
  }));
}

/** The event for one record: its snippets, or a skip when `build` throws {@link RecordSkip} or makes none. */
export function recordEvent(index: number, location: string, build: () => SnippetDraft[]): ParseEvent {
  try {
    const snippets = build();
    if (snippets.length === 0) return { kind: "skip", index, location, reason: "no text" };
    return { kind: "record", index, location, snippets };
  } catch (error) {
    if (error instanceof RecordSkip) return { kind: "skip", index, location, reason: error.reason };
    throw error;
  }
}

/** The source name for a file: the `--source-name` override, else the format's default. */
export function sourceNameFor(options: ParseOptions, fallback: string): string {
  return options.sourceName?.trim() || fallback;
}

/** A string field of a record, cleaned; null when absent, not a string, or blank. */
export function optionalText(value: unknown): string | null {
  return typeof value === "string" ? cleanText(value) || null : null;
}

/** Describes a JSON value's type for messages: "a number", "null", "an array". */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const type = typeof value;
  return type === "object" || type === "undefined" ? `an ${type}` : `a ${type}`;
}

/** Whether a parsed JSON value is a plain object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function composeText(parts: SnippetParts, answer: string): string {
  const lines: string[] = [];
  if (parts.title) lines.push(parts.title);
  if (parts.question && parts.question !== parts.title) {
    lines.push(labelled(parts.questionLabel, parts.question));
  }
  lines.push(labelled(parts.answerLabel, answer));
  return lines.join("\n");
}

function labelled(label: string | null, text: string): string {
  return label ? `${label}: ${text}` : text;
}

function missingExchangeReason(turns: Turn[]): string {
  const spoken = turns.filter((turn) => cleanText(turn.text));
  if (spoken.length === 0) return "empty dialogue";
  if (!spoken.some((turn) => turn.speaker === "patient")) return "no patient question";
  return "no doctor reply";
}

/** Snippets with the chunks of one answer (ids `x`, `x#2`, `x#3`…, in a row) joined back into one exchange. */
export function joinChunks(drafts: readonly SnippetDraft[]): SnippetDraft[] {
  const out: SnippetDraft[] = [];
  let next = 2;
  for (const draft of drafts) {
    const last = out.at(-1);
    if (last && draft.sourceId === `${last.sourceId}#${next}` && draft.question === last.question) {
      out[out.length - 1] = { ...last, answer: `${last.answer} ${draft.answer}` };
      next++;
    } else {
      out.push(draft);
      next = 2;
    }
  }
  return out;
}
