/**
 * Parsers for question–answer datasets: ChatDoctor (HealthCareMagic-100k, iCliniq) rows and MASHQA questions.
 */
import { depthLimitedParser } from "./xml_parser.ts";
import { jsonRecordEvents, malformedJsonReason, readJsonRecords } from "./json_stream.ts";
import { readAll } from "./parse_document.ts";
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

/**
 * Parses a ChatDoctor JSON array of `{instruction, input, output}`: one snippet per row (input → output). The
 * iCliniq file's rows are `{input, answer_icliniq, answer_chatgpt, answer_chatdoctor}`: the iCliniq doctor's
 * answer is the one kept (the other two were written by models).
 */
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
      answer: requiredText(
        value,
        value.output === undefined && "answer_icliniq" in value ? "answer_icliniq" : "output",
      ),
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

/**
 * Parses a MedQuAD XML file (`<Document url><Focus/><QAPairs><QAPair><Question qid/><Answer/></QAPair>…`): one
 * record per question. MedQuAD leaves out the answers of some of its sources (copyright): those are skipped.
 */
export async function* parseMedquad(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const xml = new TextDecoder().decode(await readAll(stream, options.fileName, "MedQuAD"));
  const source = sourceNameFor(options, "MedQuAD");
  const pairs: {
    qid: string | null;
    question: string;
    answer: string;
    url: string | null;
    focus: string | null;
  }[] = [];
  let url: string | null = null;
  let focus: string | null = null;
  let text: string | null = null;
  let question = "";
  let qid: string | null = null;
  const parser = depthLimitedParser(
    {
      onopentag(name, attributes) {
        if (name === "document") url = optionalText(attributes.url) ?? url;
        if (name === "question") qid = attributes.qid ?? null;
        if (name === "focus" || name === "question" || name === "answer") text = "";
        if (name === "qapair") question = "";
      },
      ontext(chunk) {
        if (text !== null) text += chunk;
      },
      onclosetag(name) {
        if (name === "focus") focus = cleanText(text ?? "") || null;
        else if (name === "question") question = text ?? "";
        else if (name === "answer") pairs.push({ qid, question, answer: text ?? "", url, focus });
        if (name === "focus" || name === "question" || name === "answer") text = null;
      },
    },
    { xmlMode: true, decodeEntities: true, lowerCaseTags: true },
    options.fileName,
  );
  parser.write(xml);
  parser.end();
  for (const [index, pair] of pairs.entries()) {
    yield recordEvent(index, `${options.fileName} question ${index + 1}`, () => {
      const asked = cleanText(pair.question);
      if (!asked) throw new RecordSkip(`missing "Question"`);
      if (!cleanText(pair.answer)) {
        throw new RecordSkip("no answer (MedQuAD leaves out some sources' answers for copyright)");
      }
      return buildSnippets({
        source,
        sourceId: pair.qid?.trim() || String(index + 1),
        url: pair.url && /^https?:\/\//.test(pair.url) ? pair.url : null,
        specialty: options.specialty ?? null,
        title: pair.focus,
        question: asked,
        answer: cleanText(pair.answer),
        questionLabel: "Question",
        answerLabel: "Answer",
      });
    });
  }
}

/**
 * Parses PubMedQA (`{"<PMID>": {QUESTION, CONTEXTS, LONG_ANSWER, final_decision, YEAR}, …}`): one snippet per
 * question, answered by the abstract's conclusion (LONG_ANSWER), its contexts indexed with it.
 */
export async function* parsePubmedQa(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const text = new TextDecoder().decode(await readAll(stream, options.fileName, "PubMedQA"));
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    yield { kind: "skip", index: 0, location: options.fileName, reason: malformedJsonReason(error) };
    return;
  }
  if (!isObject(data)) {
    yield { kind: "skip", index: 0, location: options.fileName, reason: `file is ${describeType(data)}` };
    return;
  }
  const source = sourceNameFor(options, "PubMedQA");
  let index = 0;
  for (const [pmid, value] of Object.entries(data)) {
    const current = index++;
    yield recordEvent(current, `${options.fileName} PMID ${pmid.slice(0, 20)}`, () => {
      if (!isObject(value)) throw new RecordSkip(`entry is ${describeType(value)}, not an object`);
      const question = optionalText(value.QUESTION);
      if (!question) throw new RecordSkip(`missing "QUESTION"`);
      const conclusion = optionalText(value.LONG_ANSWER);
      if (!conclusion) throw new RecordSkip(`missing "LONG_ANSWER"`);
      const decision = optionalText(value.final_decision);
      const contexts = Array.isArray(value.CONTEXTS)
        ? cleanText(value.CONTEXTS.filter((c): c is string => typeof c === "string").join(" "))
        : "";
      const answer = decision ? `${conclusion} (PubMedQA's answer: ${decision}.)` : conclusion;
      const id = /^\d{1,9}$/.test(pmid) ? pmid : null;
      return buildSnippets({
        source,
        sourceId: id ? `PMID:${id}` : String(current + 1),
        url: id ? `https://pubmed.ncbi.nlm.nih.gov/${id}/` : null,
        specialty: options.specialty ?? null,
        title: question,
        question,
        answer,
        questionLabel: null,
        answerLabel: null,
      }).map((draft, i) =>
        // The abstract's findings are indexed with the first snippet (as much as fits), not quoted as the answer.
        i === 0 && contexts ? { ...draft, text: `${draft.text}\n${contexts.slice(0, 1500)}` } : draft
      );
    });
  }
}
