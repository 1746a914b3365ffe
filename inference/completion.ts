/**
 * One generation, from prompt input to streamed chunks, for every feature that asks a model (chat answers,
 * teaching cases, practice debriefs): fit the prompt to the model's real context with its own tokenizer, build
 * the request for the server's route, stream it, separate thinking from the answer, and when the server still
 * refuses the request for length, refit to the context it named and try once more. Also the one policy for
 * waiting on a busy or waking server.
 */
import { DEFAULT_CONTEXT_SIZE } from "../config.ts";
import { type EndpointClient, EndpointError, type GenerationRequest, type StreamChunk } from "./endpoint.ts";
import type { ModelRegistry, ModelSpec } from "./models.ts";
import { type TokenCounter } from "./tokenizer.ts";
import { type ChatMessage, promptForServer, type PromptInput, type PromptTemplate } from "./templates.ts";

/** Sampling for one generation. */
export interface Sampling {
  temperature: number;
  topP: number;
  /** The most tokens the answer may have; less is granted when the context has less room. */
  maxNewTokens: number;
}

/** Thrown when the question alone does not fit the model's context, even with the least room for the answer. */
export class PromptTooLongError extends Error {
  constructor(readonly promptTokens: number, readonly budget: number, readonly contextSize: number) {
    super(
      `This message is too long for the model: about ${promptTokens.toLocaleString("en")} tokens, and the ` +
        `model's context (${contextSize.toLocaleString("en")} tokens) has room for ${
          Math.max(0, budget).toLocaleString("en")
        } after keeping space for the answer. Shorten it, or split it into several messages`,
    );
    this.name = "PromptTooLongError";
  }
}

/** The input that fits, and what had to go. */
export interface FittedPrompt {
  input: PromptInput;
  /** The prompt's size in tokens (an upper bound when `exact` is false). */
  promptTokens: number;
  exact: boolean;
  /** The room granted to the answer: the requested maximum, or what the context has left. */
  maxNewTokens: number;
  droppedTurns: number;
  /** Reference blocks left out for room, lowest ranked first. */
  droppedReferences: number;
  contextSize: number;
}

/** Tokens kept free beyond the count: a chat template's own wrapping, and the server's BOS. */
const SAFETY_TOKENS = 8;
/** What a chat API adds around each message (role markers, separators). */
const CHAT_TOKENS_PER_MESSAGE = 8;

/** The model's context size: configured, else what the server reports, else DEFAULT_CONTEXT_SIZE. */
export async function contextSizeOf(
  spec: ModelSpec,
  client: EndpointClient,
  signal?: AbortSignal,
): Promise<number> {
  const profile = await client.profile(signal);
  // A refusal that named a smaller window wins over the configuration.
  if (profile.contextFrom === "the server's refusal" && profile.contextSize !== null) {
    return Math.min(profile.contextSize, spec.contextSize ?? Infinity);
  }
  return spec.contextSize ?? profile.contextSize ?? DEFAULT_CONTEXT_SIZE;
}

/** Texts of a rendered prompt as the server will see them: one prompt, or each chat message. */
function promptTexts(template: PromptTemplate, input: PromptInput): { texts: string[]; overhead: number } {
  if (template.kind === "raw") return { texts: [promptForServer(template, input)], overhead: 1 };
  const messages = template.messages(input);
  return { texts: messages.map((m) => m.content), overhead: 3 + CHAT_TOKENS_PER_MESSAGE * messages.length };
}

/**
 * A hard upper bound on the tokens of texts for any byte-fallback or byte-level tokenizer: their UTF-8 bytes,
 * plus the leading space SentencePiece adds to each text and again after each control token ("2" is two tokens).
 */
function byteBound(texts: string[]): number {
  let bound = 0;
  for (const text of texts) {
    bound += utf8Length(text) + 1 + (text.match(/<\/?s>|<\|[a-z_]{1,30}\|>/g)?.length ?? 0);
  }
  return bound;
}

function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) n += 1;
    else if (code < 0x800) n += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Trims the input to fit the context: the answer is given `maxNewTokens` where the context allows (at most half
 * the context while earlier turns or references are kept), then the oldest turns go, then the lowest-ranked
 * references. The current question (and a partial answer being continued) is never cut: when it does not fit
 * with `minNewTokens` left for the answer, throws PromptTooLongError.
 *
 * A prompt whose UTF-8 bytes fit is not counted at all (no tokenizer gives more tokens than bytes); otherwise it
 * is counted with the model's tokenizer, a few times at most (binary search over what to drop).
 */
export async function fitPrompt(
  template: PromptTemplate,
  input: PromptInput,
  limits: {
    contextSize: number;
    maxNewTokens: number;
    minNewTokens?: number;
    /** A limit on the prompt alone, below the context (TGI's max_input_tokens). */
    maxPromptTokens?: number | null;
    counter: TokenCounter;
  },
  signal?: AbortSignal,
): Promise<FittedPrompt> {
  const { contextSize, counter } = limits;
  const maxPrompt = limits.maxPromptTokens ?? Infinity;
  const maxNew = Math.max(1, Math.min(limits.maxNewTokens, contextSize - SAFETY_TOKENS - 1));
  const minNew = Math.max(1, Math.min(limits.minNewTokens ?? Math.min(maxNew, 128), maxNew));
  const reserve = Math.min(maxNew, Math.max(minNew, Math.floor(contextSize / 2)));
  const room = contextSize - SAFETY_TOKENS;

  const size = async (candidate: PromptInput): Promise<{ tokens: number; exact: boolean }> => {
    const { texts, overhead } = promptTexts(template, candidate);
    const bound = byteBound(texts) + overhead;
    if (bound + maxNew <= room && bound <= maxPrompt) return { tokens: bound, exact: false };
    const counts = await counter.count(texts, signal);
    return { tokens: counts.reduce((a, b) => a + b, 0) + overhead, exact: counter.exact };
  };
  const result = (
    candidate: PromptInput,
    measured: { tokens: number; exact: boolean },
    turns: number,
    refs: number,
  ) => ({
    input: candidate,
    promptTokens: measured.tokens,
    exact: measured.exact,
    maxNewTokens: Math.max(1, Math.min(maxNew, room - measured.tokens)),
    droppedTurns: turns,
    droppedReferences: refs,
    contextSize,
  });
  const withDropped = (turns: number, refs: number): PromptInput => ({
    ...input,
    history: input.history.slice(turns),
    references: input.references?.slice(0, input.references.length - refs),
  });

  const fitsWith = (tokens: number, answer: number) => tokens + answer <= room && tokens <= maxPrompt;
  const full = await size(input);
  if (fitsWith(full.tokens, reserve)) return result(input, full, 0, 0);

  // The fewest oldest turns to drop, then the fewest references, each found by binary search.
  const turnsTotal = input.history.length;
  const refsTotal = input.references?.length ?? 0;
  const fits = async (turns: number, refs: number) => {
    const measured = await size(withDropped(turns, refs));
    return fitsWith(measured.tokens, reserve) ? measured : null;
  };
  const fewest = async (
    total: number,
    test: (n: number) => Promise<{ tokens: number; exact: boolean } | null>,
  ) => {
    let low = 1;
    let high = total;
    let best: { n: number; measured: { tokens: number; exact: boolean } } | null = null;
    while (low <= high) {
      const mid = Math.floor((low + high) / 2);
      const measured = await test(mid);
      if (measured) {
        best = { n: mid, measured };
        high = mid - 1;
      } else low = mid + 1;
    }
    return best;
  };
  if (turnsTotal > 0) {
    const turns = await fewest(turnsTotal, (n) => fits(n, 0));
    if (turns) return result(withDropped(turns.n, 0), turns.measured, turns.n, 0);
  }
  if (refsTotal > 0) {
    const refs = await fewest(refsTotal, (n) => fits(turnsTotal, n));
    if (refs) return result(withDropped(turnsTotal, refs.n), refs.measured, turnsTotal, refs.n);
  }
  // Nothing left to drop: the answer gets what the context has left, down to its minimum.
  const bare = withDropped(turnsTotal, refsTotal);
  const measured = await size(bare);
  if (fitsWith(measured.tokens, minNew)) return result(bare, measured, turnsTotal, refsTotal);
  throw new PromptTooLongError(measured.tokens, Math.min(room - minNew, maxPrompt), contextSize);
}

/** The endpoint request for a fitted prompt. */
export function buildRequest(
  template: PromptTemplate,
  fitted: FittedPrompt,
  sampling: Sampling,
): GenerationRequest {
  const common = {
    temperature: sampling.temperature,
    topP: sampling.topP,
    maxNewTokens: fitted.maxNewTokens,
    stop: template.stop,
    contextSize: fitted.contextSize,
  };
  return template.kind === "chat"
    ? { ...common, messages: template.messages(fitted.input) as ChatMessage[] }
    : { ...common, prompt: promptForServer(template, fitted.input) };
}

/** Options for one generation. */
export interface GenerationOptions {
  signal: AbortSignal;
  /** Hold the output to this JSON Schema where the server can. */
  jsonSchema?: Record<string, unknown>;
  /** The least room the answer needs; below it the prompt counts as too long. */
  minNewTokens?: number;
  /** Told how the prompt was fitted, before the request goes out (again after a refit). */
  onFitted?: (fitted: FittedPrompt) => void | Promise<void>;
}

/**
 * Fits, sends and streams one generation. When the server refuses it for length before any text (its count or
 * its window differ from what Rounds learned), the prompt is refitted to the window it named (or 80% of the
 * one assumed) and sent once more; a second refusal is a PromptTooLongError-like EndpointError in plain words.
 */
export async function* streamGeneration(
  models: ModelRegistry,
  spec: ModelSpec,
  input: PromptInput,
  sampling: Sampling,
  options: GenerationOptions,
): AsyncGenerator<StreamChunk> {
  const client = models.client(spec);
  // Identifiers are replaced before anything is counted or sent: the server's /tokenize sees the gated text too.
  const gated = await models.gate.prompt(input);
  // Ask a server that could not be asked before (it may have woken up) before fitting to its context.
  const profile = await client.profile(options.signal, true);
  let contextSize = await contextSizeOf(spec, client, options.signal);
  for (let attempt = 1;; attempt++) {
    const counter = await models.counter(spec, options.signal);
    const fitted = await fitPrompt(spec.template, gated, {
      contextSize,
      maxNewTokens: sampling.maxNewTokens,
      minNewTokens: options.minNewTokens,
      maxPromptTokens: profile.maxInputTokens,
      counter,
    }, options.signal);
    await options.onFitted?.(fitted);
    const request = models.gate.release({
      ...buildRequest(spec.template, fitted, sampling),
      ...(options.jsonSchema ? { jsonSchema: options.jsonSchema } : {}),
    }, gated);
    let started = false;
    try {
      const source = client.stream(request, options.signal);
      const chunks = splitThinking(
        source,
        opensInThought(request) || (!!request.messages && profile.chatOpensThought),
      );
      for await (const chunk of chunks) {
        started ||= chunk.text !== "" || chunk.reasoning !== undefined;
        yield chunk;
      }
      return;
    } catch (error) {
      if (!(error instanceof EndpointError) || error.kind !== "too_long" || started) throw error;
      const named = error.contextLimit;
      if (attempt >= 2) {
        throw new EndpointError(
          "too_long",
          `This conversation is too long for the model (its context holds ${
            contextSize.toLocaleString("en")
          } ` +
            `tokens), even after leaving out earlier turns and sources. Start a new session, or shorten the message`,
          error.status,
          null,
          named,
        );
      }
      if (named !== null && named < contextSize) {
        // The server said how small its window is: every later request is fitted to it.
        client.learnContextSize(named);
        contextSize = named;
      } else {
        // It counts differently than we did (a chat template's own preamble): leave more room this once, and ask
        // the server what it is again next time.
        contextSize = Math.floor(contextSize * 0.8);
        client.refresh();
      }
    }
  }
}

/** A raw prompt whose template opens a `<think>` block for the model: its output starts inside the thought. */
function opensInThought(request: GenerationRequest): boolean {
  return request.prompt !== undefined && /<think>\s*$/.test(request.prompt);
}

const OPEN = "<think>";
const CLOSE = "</think>";

/**
 * Separates `<think>…</think>` at the start of the text (servers that do not split reasoning themselves) into
 * `reasoning`, so thinking is never stored or cited as the answer. Chunks the server already split pass through.
 */
export async function* splitThinking(
  source: AsyncIterable<StreamChunk>,
  startsInThought: boolean,
): AsyncGenerator<StreamChunk> {
  let mode: "start" | "thought" | "answer" = startsInThought ? "thought" : "start";
  let held = "";
  /** After `</think>`, the blank lines before the answer are dropped, whichever chunks they come in. */
  let trimming = false;
  for await (const chunk of source) {
    // A server that separates reasoning itself: its content is the answer.
    if (mode === "thought" && !held && chunk.reasoning !== undefined) mode = "answer";
    if (mode === "answer" && trimming && chunk.text) {
      const text = chunk.text.replace(/^\s+/, "");
      trimming = text === "";
      yield { ...chunk, text };
      continue;
    }
    if (mode === "answer" || (!chunk.text && mode === "start")) {
      yield chunk;
      continue;
    }
    let text = held + chunk.text;
    held = "";
    let reasoning = chunk.reasoning ?? "";
    let answer = "";
    if (mode === "start") {
      const trimmed = text.trimStart();
      if (trimmed.startsWith(OPEN)) {
        mode = "thought";
        text = trimmed.slice(OPEN.length);
      } else if (OPEN.startsWith(trimmed)) {
        held = text; // could still become <think>
        text = "";
      } else {
        mode = "answer";
        answer = text;
        text = "";
      }
    }
    if (mode === "thought" && text) {
      const end = text.indexOf(CLOSE);
      if (end !== -1) {
        reasoning += text.slice(0, end);
        answer = text.slice(end + CLOSE.length).replace(/^\s+/, "");
        trimming = answer === "";
        mode = "answer";
      } else {
        let keep = 0;
        for (let n = Math.min(CLOSE.length - 1, text.length); n > 0; n--) {
          if (text.endsWith(CLOSE.slice(0, n))) {
            keep = n;
            break;
          }
        }
        reasoning += text.slice(0, text.length - keep);
        held = text.slice(text.length - keep);
      }
    }
    const { reasoning: _, ...rest } = chunk;
    yield { ...rest, text: answer, ...(reasoning ? { reasoning } : {}) };
  }
  if (held) {
    yield mode === "thought"
      ? { text: "", reasoning: held, finishReason: null }
      : { text: held, finishReason: null };
  }
}

/** How long to wait before trying a failed request again, and what to tell the user; null to give up. */
export interface RetryDecision {
  waitMs: number;
  message: string;
}

/** Limits of the waiting policy (tests shorten them). */
export interface RetryLimits {
  /** Attempts for a rate-limited or unreachable server. */
  maxAttempts: number;
  retryBaseMs: number;
  maxRetryWaitMs: number;
  /** How long to keep waiting for a server that answers 503 (loading, or a scale-to-zero GPU starting). */
  coldStartMs: number;
}

/** Production waiting: a cold GPU on a scaled-to-zero endpoint can take several minutes. */
export const DEFAULT_RETRY_LIMITS: RetryLimits = {
  maxAttempts: 4,
  retryBaseMs: 1000,
  maxRetryWaitMs: 20_000,
  coldStartMs: 10 * 60_000,
};

/**
 * The one waiting policy for a request that failed before any text: a server that is waking up (503) is waited
 * for up to `coldStartMs`, telling the user so; rate limits and dropped connections get a few tries with backoff
 * (or the server's Retry-After). Anything else is not retried.
 */
export function retryDecision(
  failure: EndpointError,
  attempt: number,
  waitedMs: number,
  limits: RetryLimits,
): RetryDecision | null {
  if (!failure.retryable) return null;
  if (failure.kind === "unavailable") {
    if (waitedMs >= limits.coldStartMs) return null;
    // At least the base wait: a Retry-After of 0 (or a date past) must not become a busy loop.
    const wait = Math.max(
      limits.retryBaseMs,
      Math.min(
        failure.retryAfterMs ?? limits.retryBaseMs * 2 ** Math.min(attempt - 1, 5),
        limits.maxRetryWaitMs,
        Math.max(limits.coldStartMs - waitedMs, 1),
      ),
    );
    const so = waitedMs >= 1000 ? ` (waiting ${Math.round(waitedMs / 1000)} s so far)` : "";
    return {
      waitMs: wait,
      message: `The model is waking up or loading${so}: a server that was scaled to zero can take a few ` +
        `minutes to start. Rounds keeps trying.`,
    };
  }
  if (attempt >= limits.maxAttempts) return null;
  const wait = Math.max(
    limits.retryBaseMs,
    Math.min(failure.retryAfterMs ?? limits.retryBaseMs * 2 ** (attempt - 1), limits.maxRetryWaitMs),
  );
  return {
    waitMs: wait,
    message: `${failure.message}. Trying again in ${Math.max(1, Math.round(wait / 1000))} s ` +
      `(attempt ${attempt + 1} of ${limits.maxAttempts}).`,
  };
}

/** Waits ms, or less when the signal aborts first (it resolves either way). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
