/**
 * Keeping a quiet server's patterns compiled. V8 throws away a regular expression's compiled code once two full
 * garbage collections pass without it running (minor ones do not count), and a server that goes quiet gets
 * exactly that: V8's memory reducer runs two full collections about 0.6 s apart soon after a process stops
 * allocating (seen with `--trace-gc` in `deno task bench:request --pause`). The next clinician's message then
 * compiled the identifier, red-flag, follow-up, vocabulary, token and Markdown patterns again inside its
 * request. Running them over a short sample within 0.4 s of each collection (and no more often) keeps them in
 * use. `deno task bench:patterns` times one message's pattern work after two such collections.
 */
import { isFollowUp } from "./chat/follow_up.ts";
import { estimateTokens } from "./inference/tokenizer.ts";
import { expandQuery, type Vocabulary } from "./knowledge/vocabulary.ts";
import { renderMarkdown } from "./safety/markdown.ts";
import { redactPhi } from "./safety/phi.ts";
import { detectRedFlags } from "./safety/red_flags.ts";

/**
 * A message with something for each pattern family: names, dates, numbers and an address to redact, red flags,
 * clinicians' abbreviations to expand, a pasted lab line, and non-ASCII text for the token estimate.
 */
export const WARM_MESSAGE =
  "Dear Dr Anna Kowalski, my patient tomasz haddad (DOB 04/11/1952, MRN 55120987, SSN 900-41-7732) has had " +
  "crushing chest pain radiating to the left arm since this morning, sweating, SpO2 88%, 39.5 °C. Call " +
  "０７７００ 900123 or anna[at]example[dot]org; he lives at 17 Birch Lane, SW1A 1AA, and is 94. Mr Haddad's wife " +
  "Maria visited on 3 March 2024. Labs: Hb 98 g/L, CRP 187 mg/L, eGFR 31\u00a0mL/min. Known AF on a DOAC, " +
  "T2DM on an SGLT2 inhibitor; MI in 2019. Douleur thoracique, 胸痛. What about the dose?";

/** A reply as models write them: headings, lists, emphasis, a table, code and numbered sources. */
const WARM_REPLY =
  "## Assessment\n\n**Chest pain** with *red flags* needs an ECG now [1].\n\n1. Aspirin 300 mg [2]\n" +
  "2. Call 999 — `do not delay`\n\n| Test | Value |\n| --- | --- |\n| Troponin | 52 ng/L |\n\n" +
  "> Seek help if it worsens. See <https://example.org> and [guideline](https://example.org/g).\n";

export type WarmOptions = { redaction: boolean; vocabulary?: Vocabulary | null };

/**
 * Every pattern a message meets on its way in and its reply on its way out, over the samples, in steps of about
 * a millisecond or less each (warm): keepPatternsWarm runs them one event-loop turn apart, so a token waiting to
 * go out waits for one step at most.
 */
export function patternSteps(options: WarmOptions): (() => unknown)[] {
  return [
    () => detectRedFlags(WARM_MESSAGE),
    // The gate redacts prompts with the same patterns, so this keeps the gate's too.
    () => options.redaction && redactPhi(WARM_MESSAGE),
    () => {
      isFollowUp(WARM_MESSAGE);
      isFollowUp("And for children?");
      if (options.vocabulary) expandQuery(WARM_MESSAGE, options.vocabulary);
      estimateTokens(WARM_MESSAGE);
    },
    () => renderMarkdown(WARM_REPLY),
  ];
}

/** Runs every pattern step once, now. Returns nothing: only that the code ran matters. */
export function touchPatterns(options: WarmOptions): void {
  for (const step of patternSteps(options)) step();
}

/**
 * After every collection the patterns run within MIN_GAP_MS, and never twice within it: two full collections
 * further apart than that always have a run between them. The memory reducer's two come about 0.6 s apart; under
 * load, collections come every tenth of a second or so and the patterns run at most every MIN_GAP_MS.
 */
const MIN_GAP_MS = 400;
/** The registries in use: a registry that is itself collected calls nothing any more. */
const watching = new Set<FinalizationRegistry<null>>();

/**
 * Runs touchPatterns' steps now and after garbage collections (see MIN_GAP_MS), until stopped. V8 offers no
 * event for a collection, but a finalizer does: a throwaway object registered with a FinalizationRegistry is
 * collected by the next collection of any kind, and its callback runs soon after, on the event loop. A failing
 * step is logged once and does not stop it.
 */
export function keepPatternsWarm(
  options: WarmOptions & { touch?: () => void },
): { stop(): void } {
  const steps = options.touch ? [options.touch] : patternSteps(options);
  let reported = false;
  let stopped = false;
  /** When the last run started. */
  let lastTouch = -Infinity;
  let pending: ReturnType<typeof setTimeout> | null = null;
  let stepTimer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  /** A collection came while a run was under way: the steps it already passed ran before it. */
  let again = false;
  const run = () => {
    pending = null;
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    lastTouch = performance.now();
    const next = (i: number) => {
      stepTimer = null;
      if (stopped) return;
      try {
        steps[i]();
      } catch (error) {
        if (!reported) console.error("keeping the patterns warm failed:", (error as Error)?.message ?? error);
        reported = true;
      }
      if (i + 1 < steps.length) {
        stepTimer = setTimeout(() => next(i + 1), 0);
        Deno.unrefTimer(stepTimer);
        return;
      }
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    };
    next(0);
  };
  /** A run now, or MIN_GAP_MS after the last one began, whichever is later. */
  const schedule = () => {
    if (stopped || pending !== null) return;
    const wait = lastTouch + MIN_GAP_MS - performance.now();
    if (wait <= 0 && !running) return run();
    pending = setTimeout(run, Math.max(0, wait));
    Deno.unrefTimer(pending);
  };
  const token = {};
  const registry = new FinalizationRegistry(() => {
    if (stopped) return;
    arm();
    schedule();
  });
  const arm = () => registry.register({}, null, token);
  watching.add(registry);
  run();
  arm();
  return {
    stop() {
      stopped = true;
      registry.unregister(token);
      watching.delete(registry);
      for (const timer of [pending, stepTimer]) if (timer !== null) clearTimeout(timer);
      pending = stepTimer = null;
    },
  };
}
