/**
 * Parsers for question–answer datasets: ChatDoctor (HealthCareMagic-100k, iCliniq) rows and MASHQA questions.
 */
import { jsonRecordEvents, readJsonRecords } from "./json_stream.ts";
import type { ParseEvent, ParseOptions, SnippetDraft } from "./records.ts";
import {
  buildSnippets,
  cleanText,
  describeType,
  isObject,
  optionalText,
  recordEvent,
  RecordSkip,
  sourceNameFor,
} from "./snippets.ts";

/** Parses a ChatDoctor JSON array of `{instruction, input, output}`: one snippet per row (input → output). */
export function parseChatDoctor(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const source = sourceNameFor(options, chatDoctorSource(options.fileName));
  const specialty = options.specialty ?? null;
  return jsonRecordEvents(stream, options, (value, rowNumber): SnippetDraft[] => {
    if (!isObject(value)) throw new RecordSkip(`row is ${describeType(value)}, not an object`);
    return buildSnippets({
      source,
      sourceId: String(rowNumber),
      url: null,
      specialty,
      title: null,
      question: requiredText(value, "input"),
      answer: requiredText(value, "output"),
      questionLabel: "Patient",
      answerLabel: "Doctor",
    });
  });
}

/** The dataset a ChatDoctor file comes from, told by its name: "iCliniq", "HealthCareMagic" or "ChatDoctor". */
export function chatDoctorSource(fileName: string): string {
  const name = fileName.toLowerCase();
  if (name.includes("icliniq")) return "iCliniq";
  if (name.includes("healthcaremagic")) return "HealthCareMagic";
  return "ChatDoctor";
}

/**
 * Parses MASHQA (`{"data": [{"paragraphs": [{"context", "qas": […]}]}]}`): one record per question, answered by
 * the context sentences its `answer_starts` offsets point at (or the answer text when there are none).
 */
export async function* parseMashqa(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const source = sourceNameFor(options, "MASHQA");
  const specialty = options.specialty ?? null;
  let index = 0;
  const skip = (reason: string): ParseEvent => {
    const current = index++;
    return { kind: "skip", index: current, location: `${options.fileName} record ${current + 1}`, reason };
  };

  for await (const batch of readJsonRecords(stream, options.fileName, { key: "data" })) {
    for (const element of batch) {
      if (!element.ok) {
        yield skip(element.reason);
        if (element.fatal) return;
        continue;
      }
      const article = element.value;
      if (!isObject(article)) {
        yield skip(`"data" element is ${describeType(article)}, not an object`);
        continue;
      }
      if (!Array.isArray(article.paragraphs)) {
        yield skip(`missing "paragraphs" list`);
        continue;
      }
      for (const paragraph of article.paragraphs) {
        if (!isObject(paragraph) || !Array.isArray(paragraph.qas)) {
          yield skip(isObject(paragraph) ? `missing "qas" list` : `paragraph is ${describeType(paragraph)}`);
          continue;
        }
        const context = new Context(paragraph.context);
        for (const qa of paragraph.qas) {
          const current = index++;
          yield recordEvent(current, `${options.fileName} record ${current + 1}`, () => {
            if (!isObject(qa)) throw new RecordSkip(`question is ${describeType(qa)}, not an object`);
            const question = optionalText(qa.question);
            if (!question) throw new RecordSkip(`missing "question"`);
            if (qa.is_impossible === true) throw new RecordSkip("unanswerable (is_impossible)");
            const id = typeof qa.id === "string" || typeof qa.id === "number" ? String(qa.id).trim() : "";
            return buildSnippets({
              source,
              sourceId: id || String(current + 1),
              url: null,
              specialty,
              title: question,
              question,
              answer: mashqaAnswer(qa.answers, context),
              questionLabel: null,
              answerLabel: null,
            });
          });
        }
      }
    }
  }
}

/** A paragraph's context, sliced by code point as MASHQA's (Python) offsets count them. */
class Context {
  #codePoints: string[] | null = null;

  constructor(readonly text: unknown) {}

  /** The text at `[start, start + length)`; throws {@link RecordSkip} when the span is not inside the context. */
  span(start: number, length: number): string {
    if (typeof this.text !== "string") throw new RecordSkip(`missing paragraph "context"`);
    // UTF-16 indices equal code point indices unless the context has characters outside the BMP.
    this.#codePoints ??= /[\ud800-\udfff]/.test(this.text) ? Array.from(this.text) : null;
    const size = this.#codePoints ? this.#codePoints.length : this.text.length;
    if (start + length > size) {
      throw new RecordSkip(`answer offset [${start}, ${length}] is outside the context (${size} characters)`);
    }
    return this.#codePoints
      ? this.#codePoints.slice(start, start + length).join("")
      : this.text.slice(start, start + length);
  }
}

function mashqaAnswer(answers: unknown, context: Context): string {
  if (!Array.isArray(answers) || answers.length === 0) throw new RecordSkip(`no "answers"`);
  const answer = answers[0];
  if (!isObject(answer)) throw new RecordSkip(`answer is ${describeType(answer)}, not an object`);
  const offsets = answer.answer_starts;
  let text: string;
  if (Array.isArray(offsets) && offsets.length > 0) {
    text = offsets.map((offset) => {
      if (
        !Array.isArray(offset) || offset.length !== 2 || !offset.every((n) => Number.isInteger(n) && n >= 0)
      ) {
        throw new RecordSkip(`malformed "answer_starts" entry ${JSON.stringify(offset)}`);
      }
      return cleanText(context.span(offset[0], offset[1]));
    }).filter(Boolean).join(" ");
  } else {
    text = typeof answer.text === "string" ? cleanText(answer.text) : "";
  }
  if (!text) throw new RecordSkip("empty answer");
  return text;
}

function requiredText(row: Record<string, unknown>, field: string): string {
  const value = row[field];
  if (value === undefined) throw new RecordSkip(`missing "${field}"`);
  if (typeof value !== "string") throw new RecordSkip(`"${field}" is ${describeType(value)}, not a string`);
  const text = cleanText(value);
  if (!text) throw new RecordSkip(`empty "${field}"`);
  return text;
}
