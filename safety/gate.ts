/**
 * The one door to model and embedding endpoints. Every prompt the inference clients send and every text the
 * remote embedder sends has passed through a gate made here: identifiers are replaced (safety/phi.ts) in the
 * conversation, the question, the retrieved references, an answer being continued and the system text, unless
 * that system text was written by Rounds or an educator and declared so with `authored()`.
 *
 * It is structural, not a convention: the model registry's clients refuse a request the gate did not release
 * (`released`), and the remote embedder redacts inside itself, so a new feature that calls a model cannot skip
 * redaction by forgetting it. Features still redact upstream where placeholders must stay consistent across a
 * whole conversation (chat/answer.ts); the gate then finds nothing left, and remembers the texts it found clean
 * so that a long conversation costs only its new text.
 */
import type { PromptInput } from "../inference/templates.ts";
import { createRedactor, type PhiRedactor, redactAgainWhereLearned } from "./phi.ts";
import { inSlices, SMALL_WORK_CHARS } from "../slices.ts";

/** Passes prompts and texts on their way to an endpoint. */
export interface OutboundGate {
  /** Whether identifiers are replaced (PHI_REDACTION is not "off"). */
  readonly redacts: boolean;
  /** The prompt with identifiers replaced; the only input `release` accepts. */
  prompt(input: PromptInput): Promise<PromptInput>;
  /** Texts for an embedding endpoint, identifiers replaced. */
  texts(texts: readonly string[]): Promise<string[]>;
  /** Marks a request built from a gated prompt as allowed to leave; throws for a prompt the gate did not pass. */
  release<T extends object>(request: T, from: PromptInput): T;
}

const gatedInputs = new WeakSet<PromptInput>();
const releasedRequests = new WeakSet<object>();

/** Whether a request was released by a gate: model clients send nothing else. */
export function released(request: object): boolean {
  return releasedRequests.has(request);
}

/** Thrown when a request reaches a model client without passing the gate: a programming error, never user input. */
export class UngatedRequestError extends Error {
  constructor() {
    super("A request to the model did not pass the redaction gate (safety/gate.ts) and was not sent.");
    this.name = "UngatedRequestError";
  }
}

// Texts written by Rounds or an educator (system prompts, a case's role for the simulated patient): sent as
// they are. Bounded: the oldest are forgotten first and are then redacted like any other text.
const AUTHORED_LIMIT = 512;
const authoredTexts = new Set<string>();

/**
 * Declares a system text as written by Rounds or an educator about a hypothetical patient, not patient data, so
 * that the gate sends it unchanged (a simulated patient keeps the case's name). Every caller is listed in
 * tests/gate_test.ts: a new one is a decision to review, not an accident.
 */
export function authored(text: string): string {
  authoredTexts.delete(text);
  authoredTexts.add(text);
  if (authoredTexts.size > AUTHORED_LIMIT) authoredTexts.delete(authoredTexts.values().next().value!);
  return text;
}

/** Texts the gate found nothing in, most recently used last; bounded by their total length. */
class CleanTexts {
  #texts = new Map<string, true>();
  #chars = 0;
  constructor(private readonly limitChars: number) {}
  has(text: string): boolean {
    if (!this.#texts.has(text)) return false;
    this.#texts.delete(text);
    this.#texts.set(text, true);
    return true;
  }
  add(text: string): void {
    if (text.length > this.limitChars / 4 || this.#texts.has(text)) return;
    this.#texts.set(text, true);
    this.#chars += text.length;
    for (const old of this.#texts.keys()) {
      if (this.#chars <= this.limitChars) break;
      this.#texts.delete(old);
      this.#chars -= old.length;
    }
  }
}

/**
 * Texts a conversation's own redactor produced (chat/answer.ts): redacted already, with placeholders consistent
 * across the conversation; the gate does not redact them a second time. Bounded like the clean texts.
 */
const redactedUpstream = new CleanTexts(8_000_000);

/** Records a text as the output of a redactor, so that gates pass it without redacting it again. */
export function redactedAlready(text: string): string {
  redactedUpstream.add(text);
  return text;
}

/** Short texts are not worth remembering: redacting them costs less than the lookup's memory. */
const REMEMBER_FROM_CHARS = 200;
/** A gate; with `redact` false it replaces nothing but still releases what it passed. */
export function createOutboundGate(options: { redact: boolean; cacheChars?: number }): OutboundGate {
  const clean = new CleanTexts(options.cacheChars ?? 8_000_000);

  /**
   * Redacts a list of texts with one redactor, so that a value keeps one placeholder across them. Texts found
   * clean before, or produced by a redactor upstream, are skipped, unless a name this pass learns occurs in them.
   */
  const redactAll = async (texts: readonly string[]): Promise<string[]> => {
    const redactor: PhiRedactor = createRedactor();
    // Placeholders already in the texts keep their numbers: new ones are numbered after them.
    redactor.reserve(texts);
    const out = [...texts];
    // How many name words the redactor knew when each text was redacted; a skipped text, none.
    const learnedAt = new Array<number>(texts.length).fill(0);
    const known = texts.map((text) =>
      text.length >= REMEMBER_FROM_CHARS && (clean.has(text) || redactedUpstream.has(text))
    );
    const work = texts.reduce((n, text, i) => n + (known[i] ? 0 : text.length), 0);
    await inSlices(texts.length, (i) => {
      if (known[i]) return;
      out[i] = redactor.redact(texts[i]).text;
      learnedAt[i] = redactor.learnedNames.length;
    }, { yieldFirst: work > SMALL_WORK_CHARS });
    // A skipped text that holds a name this pass learned, or a text redacted before a later one taught a name in
    // it ("haddad has new AF", then "Mr Haddad is 80"), is redacted again: found word by word, no patterns run.
    await redactAgainWhereLearned(redactor, texts, learnedAt, (i) => {
      out[i] = redactor.redact(texts[i]).text;
    });
    // Remembered as clean only once no later text's name was found in it.
    texts.forEach((text, i) => {
      if (!known[i] && out[i] === text && text.length >= REMEMBER_FROM_CHARS) clean.add(text);
    });
    return out;
  };

  return {
    redacts: options.redact,
    async prompt(input) {
      if (!options.redact) {
        const copy = { ...input };
        gatedInputs.add(copy);
        return copy;
      }
      const systemAuthored = authoredTexts.has(input.system);
      const texts = [
        ...(systemAuthored ? [] : [input.system]),
        ...input.history.flatMap((t) => [t.user, t.assistant]),
        ...(input.references ?? []),
        input.question,
        ...(input.answerPrefix !== undefined ? [input.answerPrefix] : []),
      ];
      const out = await redactAll(texts);
      let at = 0;
      const take = () => out[at++];
      const gated: PromptInput = {
        ...input,
        system: systemAuthored ? input.system : take(),
        history: input.history.map(() => ({ user: take(), assistant: take() })),
        ...(input.references ? { references: input.references.map(() => take()) } : {}),
        question: take(),
        ...(input.answerPrefix !== undefined ? { answerPrefix: take() } : {}),
      };
      gatedInputs.add(gated);
      return gated;
    },
    async texts(texts) {
      return options.redact ? await redactAll(texts) : [...texts];
    },
    release(request, from) {
      if (!gatedInputs.has(from)) throw new UngatedRequestError();
      releasedRequests.add(request);
      return request;
    },
  };
}
