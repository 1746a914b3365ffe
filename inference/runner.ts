/**
 * The generation engine: streams a reply from the endpoint into an assistant message that is already stored,
 * checkpoints it to the database, publishes each piece to listeners, and ends in a stored terminal status. What
 * to generate comes prepared (chat/answer.ts): the engine knows nothing of chats, users or the knowledge base.
 */
import { measures } from "../telemetry.ts";
import { type Db, loggable, loggableMessage } from "../db/client.ts";
import {
  checkpoint,
  checkpointMany,
  finishMessage,
  type FinishState,
  getMessage,
  interruptAbandoned,
  isTerminal,
  type Message,
  requestStop,
} from "../db/messages.ts";
import { dropControlCharacters } from "../safety/limits.ts";
import type { Lifecycle } from "../lifecycle.ts";
import {
  DEFAULT_RETRY_LIMITS,
  type FittedPrompt,
  PromptTooLongError,
  retryDecision,
  type RetryLimits,
  type Sampling,
  sleep,
  streamGeneration,
} from "./completion.ts";
import { EndpointError } from "./endpoint.ts";
import type { ModelRegistry, ModelSpec } from "./models.ts";
import type { PromptInput } from "./templates.ts";

/** Timing and retry settings; tests shorten them. */
export interface RunnerOptions extends RetryLimits {
  /** Longest time the stored text may lag behind the stream. */
  checkpointMs: number;
  /** A quiet generation still touches its row this often, so other instances know it is alive. */
  heartbeatMs: number;
  /** How long a generation with no listener keeps running, waiting for the browser to reattach. */
  graceMs: number;
  /** How often a follower on another instance polls the stored text. */
  followPollMs: number;
  /** A reply untouched this long has lost its writer (see interruptAbandoned). */
  staleAfterMs: number;
  /**
   * With no text this long after the request went out, the reader is told the model is still starting, and
   * again as often while it stays silent (a scale-to-zero proxy holds the request without a word; the status
   * also keeps proxies from closing an idle stream).
   */
  slowStartMs: number;
}

/** Production defaults. */
export const DEFAULT_RUNNER_OPTIONS: RunnerOptions = {
  ...DEFAULT_RETRY_LIMITS,
  checkpointMs: 1000,
  heartbeatMs: 5000,
  graceMs: 15_000,
  followPollMs: 250,
  staleAfterMs: 30_000,
  slowStartMs: 10_000,
};

/** What a listener receives. Offsets count UTF-16 code units of the reply's text. */
export type GenerationEvent =
  /** More text; `offset` is the length of the reply after it. */
  | { type: "delta"; text: string; offset: number }
  /** More of the model's thinking (not part of the reply, not stored); `total` is its length so far. */
  | { type: "reasoning"; text: string; total: number }
  /** Something the user should know while waiting (a retry). */
  | { type: "status"; message: string }
  /** The stored terminal state. */
  | { type: "end"; message: Message };

/** Why a generation was stopped from outside. */
export type StopReason = "user" | "disconnect" | "shutdown";

/** Work for the runner: an assistant message stored as pending, and the user message it answers. */
export interface Job {
  sessionId: string;
  user: Message;
  assistant: Message;
  /** `continue` appends to the assistant's existing text. */
  mode: "answer" | "continue";
  /** A learner talking to a simulated patient (no evidence is searched for). */
  practice?: boolean;
  /**
   * What the use case began for this job while storing it (chat/answer.ts:beginAnswer: the chat as read, a new
   * subject's search): the engine hands it to `prepare` untouched.
   */
  headStart?: unknown;
}

/** The running generations of this process, and followers of any generation. */
export interface GenerationRunner {
  /** Starts generating. The job's assistant message must be stored as pending. */
  start(job: Job): void;
  /**
   * Delivers a reply's text from `fromOffset`, then live pieces, then its end; resolves after the end or when
   * `signal` aborts. Works for generations running here and, through the stored checkpoints, elsewhere.
   */
  follow(
    sessionId: string,
    messageId: string,
    fromOffset: number,
    listener: (event: GenerationEvent) => void,
    signal: AbortSignal,
  ): Promise<void>;
  /** Stops the session's running reply here, and flags it for whichever instance runs it. */
  stop(sessionId: string): Promise<boolean>;
  /** Marks replies whose writer is gone as interrupted; returns how many. */
  sweep(staleAfterMs?: number): Promise<number>;
  /** True while this process is writing the message. */
  isLive(messageId: string): boolean;
  /** Generations running in this process. */
  readonly active: number;
}

/** What to generate for a job: a model and its prompt input, or a reply written without a model. */
export type PreparedGeneration =
  | {
    kind: "generate";
    spec: ModelSpec;
    input: PromptInput;
    sampling: Sampling;
    /** Told how the prompt was fitted to the context (which references the model was shown). */
    onFitted?: (fitted: FittedPrompt) => void | Promise<void>;
    /** Writes the preparation left running (so the request is not held for them); awaited before the end. */
    settled?: () => Promise<void>;
  }
  | { kind: "reply"; text: string; finishReason: string };

/** What the engine needs. */
export interface RunnerDeps {
  db: Db;
  lifecycle: Lifecycle;
  models: ModelRegistry;
  /** What to generate for a job (chat/answer.ts prepareAnswer). */
  prepare: (job: Job) => Promise<PreparedGeneration>;
  /** Told, once stored, how a job ended and how many output tokens it used (the owner's daily budget). */
  onFinished?: (job: Job, outputTokens: number, message: Message) => Promise<void>;
  options?: Partial<RunnerOptions>;
}

const TICK_MS = 200;

/** What the clinician can do about a failed reply, by what went wrong (their question is always kept). */
const NEXT_STEP: Record<string, string> = {
  unreachable:
    "Your question is saved: press Regenerate in a few minutes, and tell your Rounds administrator " +
    "if it keeps happening.",
  unavailable: "Your question is saved: the model may still be starting; press Regenerate in a minute.",
  rate_limited: "Your question is saved: the model is busy; press Regenerate in a minute.",
  unauthorized:
    "Your question is saved. The model server refused Rounds' key: tell your Rounds administrator.",
  too_long: "Your question is saved.",
  default:
    "Your question is saved: press Regenerate to try again, and tell your Rounds administrator if it " +
    "keeps happening.",
};

class Generation {
  text: string;
  outputTokens: number;
  /** The model's thinking in this run: shown while it streams, never stored as the reply. */
  reasoning = "";
  /** Text received in this run (continuations start with the old text). */
  receivedChars = 0;
  /** Tail that might be the start of a stop sequence, held back until the next piece decides. */
  held = "";
  statusMessage: string | null = null;
  ended: Message | null = null;
  /** Writes the preparation left running (the reply's sources), awaited before the end is stored. */
  settled?: () => Promise<void>;
  stopReason: StopReason | "stop_sequence" | null = null;
  readonly controller = new AbortController();
  readonly listeners = new Set<(event: GenerationEvent) => void>();
  graceTimer: ReturnType<typeof setTimeout> | null = null;
  dirty = false;
  /**
   * When the stored row was last written: its creation, for the first checkpoint. The first one comes a
   * checkpoint interval after the reply began, not at its first token, so a reply that ends within it is written
   * once, at its end (within the same lag: a second).
   */
  lastWrite = performance.now();
  writing: Promise<void> | null = null;
  writeScheduled = false;

  constructor(readonly job: Job, readonly stops: string[], readonly onText: (gen: Generation) => void) {
    this.text = job.mode === "continue" ? job.assistant.content : "";
    this.outputTokens = job.mode === "continue" ? job.assistant.outputTokens : 0;
  }

  get messageId(): string {
    return this.job.assistant.id;
  }

  publish(event: GenerationEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        console.error("generation listener failed:", loggable(error));
      }
    }
  }

  stop(reason: StopReason | "stop_sequence"): void {
    if (this.controller.signal.aborted) return;
    this.stopReason = reason;
    this.controller.abort(new DOMException(`Generation stopped: ${reason}`, "AbortError"));
  }

  /** Adds streamed text, holding back what may begin a stop sequence. Returns true when a stop sequence ended it. */
  append(chunk: string): boolean {
    // Model output is untrusted: control characters are dropped (CR stays for the line-ending logic below).
    let pending = this.held + dropControlCharacters(chunk);
    // CR LF and lone CR become LF; a trailing CR waits to see whether LF follows.
    const trailingCr = pending.endsWith("\r");
    pending = (trailingCr ? pending.slice(0, -1) : pending).replace(/\r\n?/g, "\n");
    let stopAt = -1;
    for (const stop of this.stops) {
      const at = pending.indexOf(stop);
      if (at !== -1 && (stopAt === -1 || at < stopAt)) stopAt = at;
    }
    if (stopAt !== -1) {
      this.held = "";
      this.emit(pending.slice(0, stopAt));
      return true;
    }
    let hold = trailingCr ? 0 : longestStopPrefix(pending, this.stops);
    // A token may end between the two halves of a surrogate pair (an emoji, say): the high half waits for its
    // partner in the next piece. Halves that never pair become U+FFFD in emit (Postgres cannot store them).
    if (hold === 0 && !trailingCr && isHighSurrogate(pending.charCodeAt(pending.length - 1))) hold = 1;
    this.held = pending.slice(pending.length - hold) + (trailingCr ? "\r" : "");
    this.emit(pending.slice(0, pending.length - hold));
    return false;
  }

  /** Releases held-back text at the end of the stream (it was not a stop sequence after all). */
  flushHeld(): void {
    const rest = this.held.replace(/\r$/, "\n");
    this.held = "";
    this.emit(rest);
  }

  private emit(piece: string): void {
    if (!piece) return;
    const text = piece.toWellFormed();
    this.text += text;
    this.receivedChars += text.length;
    this.dirty = true;
    this.publish({ type: "delta", text, offset: this.text.length });
    this.onText(this);
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** Length of the longest suffix of text that is a proper prefix of a stop sequence. */
function longestStopPrefix(text: string, stops: string[]): number {
  let best = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > best; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

/** Creates the runner. Its one timer runs only while generations are live. */
export function createRunner(deps: RunnerDeps): GenerationRunner {
  const options = { ...DEFAULT_RUNNER_OPTIONS, ...deps.options };
  const { db } = deps;
  const live = new Map<string, Generation>();
  let ticker: ReturnType<typeof setInterval> | null = null;

  /** A model the operator removed since the message was stored falls back to the default. */
  function resolveModel(id: string | null): ModelSpec | null {
    return (id ? deps.models.get(id) : null) ?? deps.models.get(null);
  }

  function write(gen: Generation, force = false): void {
    if (gen.writing || gen.ended) {
      gen.dirty ||= !gen.ended;
      return;
    }
    const now = performance.now();
    if (!force && now - gen.lastWrite < options.checkpointMs) return;
    gen.dirty = false;
    gen.lastWrite = now;
    gen.writing = new Promise<void>((resolve) => {
      due.set(gen.messageId, { gen, resolve });
      if (!flushing) flushDue();
    }).finally(() => {
      gen.writing = null;
    });
  }

  async function checkpointOneByOne(
    items: { messageId: string; content: string; outputTokens: number }[],
  ): Promise<Map<string, { stopRequested: boolean }>> {
    const stored = new Map<string, { stopRequested: boolean }>();
    await Promise.all(items.map(async (item) => {
      try {
        const row = await checkpoint(db, item.messageId, item);
        if (row) stored.set(item.messageId, row);
      } catch (error) {
        console.error(`checkpoint of message ${item.messageId} failed:`, loggableMessage(error));
      }
    }));
    return stored;
  }

  /** Checkpoints waiting for the next write; all that fall due while one write runs go together in the next. */
  const due = new Map<string, { gen: Generation; resolve: () => void }>();
  let flushing = false;

  async function flushDue(): Promise<void> {
    flushing = true;
    try {
      while (due.size > 0) {
        const batch = [...due.values()];
        due.clear();
        // The text as it is now, not as it was when the write fell due: the stored copy trails less.
        const items = batch.map(({ gen }) => ({
          messageId: gen.messageId,
          content: gen.text,
          outputTokens: gen.outputTokens,
        }));
        try {
          // One row the database refuses must not cost the others their checkpoint: then row by row.
          const stored = await checkpointMany(db, items).catch(() => checkpointOneByOne(items));
          for (const { gen } of batch) if (stored.get(gen.messageId)?.stopRequested) gen.stop("user");
        } finally {
          for (const { resolve } of batch) resolve();
        }
      }
    } finally {
      flushing = false;
    }
  }

  /**
   * After a piece of text went out: checkpoint if one is due. The write waits one timer turn so the piece reaches
   * the socket first; the next token is ~20 ms away, so the write (synchronous in PGlite, 1–8 ms with its flush
   * to disk) does not hold it back.
   */
  function onText(gen: Generation): void {
    if (gen.writing || gen.writeScheduled || performance.now() - gen.lastWrite < options.checkpointMs) return;
    gen.writeScheduled = true;
    setTimeout(() => {
      gen.writeScheduled = false;
      write(gen, true);
    }, 0);
  }

  /** Fallback for a stream that went quiet: what is unsaved gets saved, and a live reply keeps its heartbeat. */
  function tick(): void {
    const now = performance.now();
    for (const gen of live.values()) {
      if (gen.writeScheduled) continue;
      if (gen.dirty && now - gen.lastWrite >= options.checkpointMs) write(gen, true);
      else if (now - gen.lastWrite >= options.heartbeatMs) write(gen, true);
    }
  }

  function armGrace(gen: Generation): void {
    if (gen.graceTimer || gen.ended) return;
    gen.graceTimer = setTimeout(() => {
      gen.graceTimer = null;
      if (gen.listeners.size === 0) gen.stop("disconnect");
    }, options.graceMs);
  }

  function subscribe(gen: Generation, listener: (event: GenerationEvent) => void): () => void {
    gen.listeners.add(listener);
    if (gen.graceTimer) {
      clearTimeout(gen.graceTimer);
      gen.graceTimer = null;
    }
    return () => {
      gen.listeners.delete(listener);
      if (gen.listeners.size === 0) armGrace(gen);
    };
  }

  async function generate(gen: Generation): Promise<FinishState> {
    const { job } = gen;
    const signal = gen.controller.signal;
    const base = () => ({ content: gen.text, outputTokens: gen.outputTokens });
    const preparing = performance.now();
    const prepared = await deps.prepare(job);
    if (prepared.kind === "reply") {
      gen.append(prepared.text);
      return { ...base(), status: "completed", finishReason: prepared.finishReason, error: null };
    }
    const { spec, input, onFitted } = prepared;
    // Whatever the generation ends in, what preparing it wrote is stored before the end is.
    gen.settled = prepared.settled;
    const settings = prepared.sampling;
    const started = performance.now();
    const model = { model: spec.id };
    measures.preparation.record(started - preparing, model);
    let firstTokenAt: number | null = null;
    const startTokens = gen.outputTokens;
    const notice = setInterval(() => {
      if (gen.receivedChars > 0 || gen.reasoning || signal.aborted) return;
      const waited = Math.round((performance.now() - started) / 1000);
      gen.statusMessage =
        `Waiting for the model to start answering (${waited} s so far). A server that was ` +
        "scaled to zero can take a few minutes to wake up.";
      gen.publish({ type: "status", message: gen.statusMessage });
    }, options.slowStartMs);

    try {
      for (let attempt = 1;; attempt++) {
        let finishReason: string | null = null;
        // Tokens the server reported for this run (its usage); chunks are counted only when it reports none.
        let reported: number | null = null;
        let counted = 0;
        try {
          const chunks = streamGeneration(deps.models, spec, input, settings, { signal, onFitted });
          for await (const chunk of chunks) {
            // The abort has already closed the connection (see compactBody); events the client parsed from the
            // last read can still come out, and are not part of the reply.
            if (signal.aborted) break;
            if (chunk.outputTokens !== undefined) reported = chunk.outputTokens;
            if (chunk.text || chunk.reasoning) {
              counted++;
              if (firstTokenAt === null) {
                firstTokenAt = performance.now();
                measures.timeToFirstToken.record(firstTokenAt - started, model);
              }
            }
            gen.outputTokens = startTokens + (reported ?? counted);
            if (chunk.reasoning) {
              gen.reasoning += chunk.reasoning;
              gen.publish({ type: "reasoning", text: chunk.reasoning, total: gen.reasoning.length });
            }
            if (chunk.text && gen.append(chunk.text)) {
              gen.stop("stop_sequence");
              break;
            }
            if (chunk.finishReason) finishReason = chunk.finishReason;
          }
          if (gen.stopReason === "stop_sequence") {
            return { ...base(), status: "completed", finishReason: "stop_sequence", error: null };
          }
          if (signal.aborted) return stoppedState(gen);
          gen.flushHeld();
          if (gen.receivedChars === 0 && !gen.text.trim() && gen.reasoning) {
            return thoughtOnly(gen, finishReason);
          }
          return { ...base(), status: "completed", finishReason: normalizeFinish(finishReason), error: null };
        } catch (error) {
          if (gen.stopReason === "stop_sequence") {
            return { ...base(), status: "completed", finishReason: "stop_sequence", error: null };
          }
          if (signal.aborted) return stoppedState(gen);
          if (error instanceof PromptTooLongError) {
            return { ...base(), status: "error", finishReason: "prompt_too_long", error: error.message };
          }
          const failure = error instanceof EndpointError ? error : new EndpointError(
            "failed",
            `The model endpoint call failed: ${(error as Error)?.message ?? error}`,
          );
          if (gen.receivedChars > 0) {
            gen.flushHeld();
            return {
              ...base(),
              status: "interrupted",
              finishReason: "error",
              error:
                `${failure.message}. The reply was cut off; the text written so far is kept: use Continue to finish it.`,
            };
          }
          const retry = gen.reasoning
            ? null
            : retryDecision(failure, attempt, performance.now() - started, options);
          if (retry) {
            gen.statusMessage = retry.message;
            gen.publish({ type: "status", message: gen.statusMessage });
            await sleep(retry.waitMs, signal);
            if (signal.aborted) return stoppedState(gen);
            continue;
          }
          const tries = attempt > 1 ? ` Rounds tried ${attempt} times.` : "";
          const finish = failure.kind === "too_long" ? "prompt_too_long" : "error";
          return {
            ...base(),
            status: "error",
            finishReason: finish,
            error: `${failure.message}.${tries} ${NEXT_STEP[failure.kind] ?? NEXT_STEP.default}`,
          };
        }
      }
    } finally {
      clearInterval(notice);
      const produced = gen.outputTokens - startTokens;
      const seconds = firstTokenAt === null ? 0 : (performance.now() - firstTokenAt) / 1000;
      if (produced > 1 && seconds > 0) measures.tokensPerSecond.record((produced - 1) / seconds, model);
    }
  }

  /** A reply that was all thinking: said so, rather than stored as an empty answer that looks complete. */
  function thoughtOnly(gen: Generation, finishReason: string | null): FinishState {
    const ranOut = finishReason === "length";
    return {
      content: gen.text,
      outputTokens: gen.outputTokens,
      status: "error",
      finishReason: "no_answer",
      error: ranOut
        ? `The model spent its whole allowance (${
          gen.outputTokens.toLocaleString("en")
        } tokens) thinking and ` +
          `wrote no answer. Raise "Max new tokens" in Settings, or ask again.`
        : "The model thought about the question but wrote no answer. Ask again, or rephrase the question.",
    };
  }

  function stoppedState(gen: Generation): FinishState {
    gen.flushHeld();
    const base = { content: gen.text, outputTokens: gen.outputTokens };
    switch (gen.stopReason) {
      case "disconnect":
        return {
          ...base,
          status: "interrupted",
          finishReason: "client_disconnected",
          error:
            `The browser disconnected and did not come back within ${
              Math.round(options.graceMs / 1000)
            } s, ` +
            "so generation stopped to free the GPU. The text written so far is kept: use Continue to finish it.",
        };
      case "shutdown":
        return {
          ...base,
          status: "interrupted",
          finishReason: "shutdown",
          error:
            "The server was restarting, so generation stopped. The text written so far is kept: use Continue to finish it.",
        };
      default:
        return { ...base, status: "stopped", finishReason: "user", error: null };
    }
  }

  async function finishStored(gen: Generation, state: FinishState): Promise<Message> {
    for (let attempt = 1;; attempt++) {
      try {
        return await finishMessage(db, gen.messageId, state);
      } catch (error) {
        if (attempt >= 5) {
          console.error(`storing the end of message ${gen.messageId} failed:`, loggableMessage(error));
          // The sweep will mark the stored row interrupted; listeners still learn how it ended.
          return { ...gen.job.assistant, ...state, stopRequested: false, updatedAt: new Date() };
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  async function run(gen: Generation): Promise<void> {
    let state: FinishState;
    try {
      state = await generate(gen);
    } catch (error) {
      console.error(`generation of message ${gen.messageId} failed:`, loggable(error));
      gen.flushHeld();
      state = {
        content: gen.text,
        outputTokens: gen.outputTokens,
        status: gen.receivedChars > 0 ? "interrupted" : "error",
        finishReason: "error",
        error: "Rounds failed while writing this reply. The text written so far is kept.",
      };
    }
    await gen.writing;
    await gen.settled?.();
    const message = await finishStored(gen, state);
    await deps.onFinished?.(gen.job, state.outputTokens, message).catch((error) =>
      console.error(`after-reply bookkeeping of message ${gen.messageId} failed:`, loggableMessage(error))
    );
    gen.ended = message;
    if (gen.graceTimer) clearTimeout(gen.graceTimer);
    live.delete(gen.messageId);
    if (live.size === 0 && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
    gen.publish({ type: "end", message });
    gen.listeners.clear();
  }

  return {
    get active() {
      return live.size;
    },
    isLive: (messageId) => live.has(messageId),
    start(job) {
      const gen = new Generation(job, resolveModel(job.assistant.model)?.template.stop ?? [], onText);
      live.set(gen.messageId, gen);
      ticker ??= setInterval(tick, TICK_MS);
      armGrace(gen);
      deps.lifecycle.run((shutdown) => {
        const onShutdown = () => gen.stop("shutdown");
        shutdown.addEventListener("abort", onShutdown, { once: true });
        if (shutdown.aborted) onShutdown();
        return run(gen).finally(() => shutdown.removeEventListener("abort", onShutdown));
      }).catch((error) => console.error("generation crashed:", loggable(error)));
    },
    async follow(sessionId, messageId, fromOffset, listener, signal) {
      let offset = Math.max(0, fromOffset);
      while (!signal.aborted) {
        const gen = live.get(messageId);
        if (gen && gen.job.sessionId === sessionId) {
          await new Promise<void>((resolve) => {
            if (gen.reasoning && gen.receivedChars === 0) {
              listener({ type: "reasoning", text: gen.reasoning, total: gen.reasoning.length });
            }
            if (offset < gen.text.length) {
              listener({ type: "delta", text: gen.text.slice(offset), offset: gen.text.length });
            }
            if (gen.statusMessage && gen.receivedChars === 0) {
              listener({ type: "status", message: gen.statusMessage });
            }
            const unsubscribe = subscribe(gen, (event) => {
              listener(event);
              if (event.type === "end") finish();
            });
            const finish = () => {
              unsubscribe();
              signal.removeEventListener("abort", finish);
              resolve();
            };
            signal.addEventListener("abort", finish, { once: true });
            if (signal.aborted) finish();
          });
          return;
        }
        // Not running here: follow the stored checkpoints (another instance, or already finished).
        const message = await getMessage(db, sessionId, messageId);
        if (!message) return;
        if (message.content.length > offset) {
          listener({ type: "delta", text: message.content.slice(offset), offset: message.content.length });
          offset = message.content.length;
        }
        if (isTerminal(message)) {
          listener({ type: "end", message });
          return;
        }
        await sleep(options.followPollMs, signal);
      }
    },
    async stop(sessionId) {
      let stopped = false;
      for (const gen of live.values()) {
        if (gen.job.sessionId === sessionId) {
          gen.stop("user");
          stopped = true;
        }
      }
      const flagged = await requestStop(db, sessionId);
      return stopped || flagged.length > 0;
    },
    async sweep(staleAfterMs = options.staleAfterMs) {
      return (await interruptAbandoned(db, { staleAfterMs })).length;
    },
  };
}

/** A stream that ended without saying why ended normally. */
function normalizeFinish(reason: string | null): string {
  return reason ?? "stop";
}
