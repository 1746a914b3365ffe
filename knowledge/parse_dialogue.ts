/**
 * Parsers for the MedDialog family: the raw text release, the processed JSON array and Hugging Face's
 * `medical_dialog` (JSON Lines or a JSON array). Each dialogue yields one snippet per patient→doctor exchange.
 */
import { jsonRecordEvents } from "./json_stream.ts";
import type { ParseEvent, ParseOptions, SnippetDraft } from "./records.ts";
import {
  cleanText,
  describeType,
  dialogueSnippets,
  dialogueTitle,
  isObject,
  optionalText,
  recordEvent,
  RecordSkip,
  sourceNameFor,
  type Speaker,
  type Turn,
} from "./snippets.ts";
import { decodeText, MAX_RECORD_CHARS, readLines } from "./text_stream.ts";

const MEDDIALOG = "MedDialog";
const SPEAKER_LABEL = /^(patient|doctor)\s*:\s*(.*)$/i;
const URL_LINE = /^https?:\/\/\S+$/;
/** Speaker names as they appear in the datasets, and Hugging Face's class labels (0 = patient, 1 = doctor). */
const SPEAKERS = new Map<string, Speaker>([["patient", "patient"], ["doctor", "doctor"], ["0", "patient"], [
  "1",
  "doctor",
]]);

/** A raw MedDialog record: the lines from its `id=` line up to the next one. */
interface RawRecord {
  startLine: number;
  lines: string[];
  chars: number;
  /** A line was too long to keep, or the record grew past the limit. */
  oversized: boolean;
}

/** Parses MedDialog raw text: records start at `id=` lines, with a URL, a Description and Patient:/Doctor: turns. */
export async function* parseMedDialogRaw(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const source = sourceNameFor(options, MEDDIALOG);
  const specialty = options.specialty ?? null;
  let index = 0;
  let record: RawRecord | null = null;

  const finish = (done: RawRecord): ParseEvent => {
    const location = `${options.fileName}:${done.startLine}`;
    return recordEvent(index++, location, () => {
      if (done.oversized) {
        throw new RecordSkip(`dialogue is larger than ${MAX_RECORD_CHARS / (1024 * 1024)} MB`);
      }
      const dialogue = readRawDialogue(done.lines);
      return dialogueSnippets({ source, specialty, ...dialogue }, dialogue.turns);
    });
  };

  for await (const { firstLine, lines } of readLines(decodeText(stream))) {
    const events: ParseEvent[] = [];
    for (let k = 0; k < lines.length; k++) {
      const line = lines[k];
      if (line !== null && line.startsWith("id=")) {
        if (record) events.push(finish(record));
        record = { startLine: firstLine + k, lines: [line], chars: line.length, oversized: false };
        continue;
      }
      if (!record) {
        // Text before the first `id=` line is a record without its header.
        if (line !== null && !line.trim()) continue;
        record = { startLine: firstLine + k, lines: [], chars: 0, oversized: false };
      }
      if (line === null || record.chars + line.length > MAX_RECORD_CHARS) {
        record.oversized = true;
        record.lines = [];
      } else if (!record.oversized) {
        record.lines.push(line);
        record.chars += line.length + 1;
      }
    }
    yield* events;
  }
  if (record) yield finish(record);
}

/** Parses MedDialog processed JSON: an array of `{description, utterances: ["patient: …", "doctor: …"]}`. */
export function parseMedDialogJson(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const source = sourceNameFor(options, MEDDIALOG);
  const specialty = options.specialty ?? null;
  return jsonRecordEvents(stream, options, (value, recordNumber): SnippetDraft[] => {
    if (!isObject(value)) throw new RecordSkip(`record is ${describeType(value)}, not an object`);
    const utterances = value.utterances;
    if (!Array.isArray(utterances)) throw new RecordSkip(`missing "utterances" list`);
    const turns = utterances.map((utterance, i): Turn => {
      if (typeof utterance !== "string") {
        throw new RecordSkip(`utterance ${i + 1} is ${describeType(utterance)}, not a string`);
      }
      const colon = utterance.indexOf(":");
      const speaker = colon < 0 ? null : speakerNamed(utterance.slice(0, colon));
      if (!speaker) {
        throw new RecordSkip(`utterance ${i + 1} does not start with "patient:" or "doctor:"`);
      }
      return { speaker, text: utterance.slice(colon + 1) };
    });
    const meta = {
      source,
      specialty,
      dialogueId: String(recordNumber),
      url: optionalText(value.url),
      title: dialogueTitle(value.description),
    };
    return dialogueSnippets(meta, turns);
  });
}

/** Parses Hugging Face `medical_dialog` (en): `{dialogue_id, dialogue_url, dialogue_turns: {speaker, utterance}}`. */
export function parseHfMedicalDialog(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const source = sourceNameFor(options, MEDDIALOG);
  const specialty = options.specialty ?? null;
  return jsonRecordEvents(stream, options, (value, recordNumber): SnippetDraft[] => {
    if (!isObject(value)) throw new RecordSkip(`record is ${describeType(value)}, not an object`);
    const meta = {
      source,
      specialty,
      dialogueId: idText(value.dialogue_id) ?? String(recordNumber),
      url: optionalText(value.dialogue_url),
      title: dialogueTitle(value.description),
    };
    return dialogueSnippets(meta, hfTurns(value.dialogue_turns));
  });
}

/** The turns of a raw record, with its id, URL and description. */
function readRawDialogue(
  lines: string[],
): { dialogueId: string; url: string | null; title: string | null; turns: Turn[] } {
  if (lines.length === 0 || !lines[0].startsWith("id=")) throw new RecordSkip(`missing "id=" line`);
  const dialogueId = lines[0].slice(3).trim();
  if (!dialogueId) throw new RecordSkip(`empty "id=" line`);

  let url: string | null = null;
  const description: string[] = [];
  const turns: { speaker: Speaker; lines: string[] }[] = [];
  let section: "header" | "description" | "dialogue" = "header";
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (section === "dialogue") {
      const label = SPEAKER_LABEL.exec(line);
      if (label) {
        turns.push({ speaker: label[1].toLowerCase() as Speaker, lines: label[2] ? [label[2]] : [] });
      } // Text before the first speaker label belongs to no one and is dropped.
      else if (line && turns.length) turns[turns.length - 1].lines.push(line);
      continue;
    }
    const header = line.toLowerCase();
    if (header === "dialogue") section = "dialogue";
    else if (header === "description") section = "description";
    else if (section === "description") {
      if (line) description.push(line);
    } else if (url === null && URL_LINE.test(line)) url = line;
  }
  if (section !== "dialogue") throw new RecordSkip(`missing "Dialogue" header`);
  return {
    dialogueId,
    url,
    title: dialogueTitle(description.join(" ")),
    turns: turns.map((turn) => ({ speaker: turn.speaker, text: turn.lines.join(" ") })),
  };
}

/** The turns of a `dialogue_turns` field: parallel `{speaker: [0, 1…], utterance: […]}` lists, or a list of turns. */
function hfTurns(field: unknown): Turn[] {
  if (Array.isArray(field)) {
    return field.map((turn, i) => {
      if (!isObject(turn)) throw new RecordSkip(`turn ${i + 1} is ${describeType(turn)}, not an object`);
      return hfTurn(turn.speaker, turn.utterance, i);
    });
  }
  if (!isObject(field)) throw new RecordSkip(`missing "dialogue_turns"`);
  const { speaker: speakers, utterance: utterances } = field;
  if (!Array.isArray(speakers) || !Array.isArray(utterances)) {
    throw new RecordSkip(`"dialogue_turns" needs "speaker" and "utterance" lists`);
  }
  if (speakers.length !== utterances.length) {
    throw new RecordSkip(
      `"dialogue_turns" has ${speakers.length} speakers but ${utterances.length} utterances`,
    );
  }
  return speakers.map((speaker, i) => hfTurn(speaker, utterances[i], i));
}

function hfTurn(speaker: unknown, utterance: unknown, i: number): Turn {
  // `speaker` is a ClassLabel: 0 = patient, 1 = doctor; some exports write the label's name instead.
  const who = typeof speaker === "number" || typeof speaker === "string"
    ? speakerNamed(String(speaker))
    : null;
  if (!who) {
    throw new RecordSkip(`unknown speaker ${JSON.stringify(speaker) ?? "undefined"} in turn ${i + 1}`);
  }
  if (typeof utterance !== "string") {
    throw new RecordSkip(`utterance ${i + 1} is ${describeType(utterance)}, not a string`);
  }
  return { speaker: who, text: utterance };
}

/** A record id given as a number or a non-blank string. */
function idText(value: unknown): string | null {
  if (typeof value === "number") return String(value);
  return typeof value === "string" ? value.trim() || null : null;
}

function speakerNamed(name: string): Speaker | null {
  return SPEAKERS.get(cleanText(name).toLowerCase()) ?? null;
}
