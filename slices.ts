/**
 * Long synchronous work (redacting a conversation, counting a long prompt's tokens) done in slices, so that one
 * user's large request does not hold up everyone else's: between slices the event loop serves what is waiting.
 */

/** Longest stretch between two yields: other users' requests wait no longer than this (plus one step). */
export const SLICE_MS = 8;

/** Lets the event loop serve whatever is waiting (a timer, not a microtask: I/O gets its turn). */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Text shorter than this in all is redacted or counted without yielding first: a yield is a timer, and a timer
 * costs 1–2 ms here even when nothing waits (2.2 ms on average on the 2-core VM, 2026-12-06), which a short
 * question paid twice before the model saw it (the conversation's redaction, then the gate: the question and five
 * sources). Redacting this much takes about half a millisecond.
 */
export const SMALL_WORK_CHARS = 4_000;

/**
 * Runs `step` for each index in stretches of at most about SLICE_MS, yielding to the event loop before the
 * first (what ran before it in this turn of the loop counts too) and between stretches. `yieldFirst: false`
 * starts at once, for work known to be small: without the first yield, slices of work that follow each other in
 * one turn add up (bench:heavy-user's 8,000-character turns held the loop 34 ms, against under 20).
 */
export async function inSlices(
  count: number,
  step: (index: number) => void,
  options: { yieldFirst?: boolean } = {},
): Promise<void> {
  if (count === 0) return;
  if (options.yieldFirst ?? true) await yieldToEventLoop();
  let sliceStarted = performance.now();
  for (let i = 0; i < count; i++) {
    if (performance.now() - sliceStarted > SLICE_MS) {
      await yieldToEventLoop();
      sliceStarted = performance.now();
    }
    step(i);
  }
}

/** The text cut into pieces of at most about `size` characters, at whitespace where there is some nearby. */
export function piecesOf(text: string, size: number): string[] {
  if (text.length <= size) return [text];
  const pieces: string[] = [];
  let at = 0;
  while (text.length - at > size) {
    let cut = at + size;
    // Back to the last whitespace in the second half of the piece, so a word is not cut in two.
    const space = text.slice(at + size / 2, cut).search(/\s\S*$/);
    if (space >= 0) cut = at + size / 2 + space;
    pieces.push(text.slice(at, cut));
    at = cut;
  }
  pieces.push(text.slice(at));
  return pieces;
}

/** How often the watch looks at the clock. */
const WATCH_EVERY_MS = 10;

/**
 * Logs "event loop held for N ms" whenever a timer due every 10 ms comes `thresholdMs` late: some work held
 * the loop and every other request waited that long. The timer does not keep the process alive.
 */
export function watchEventLoop(
  thresholdMs: number,
  log: (line: string) => void = console.warn,
): { stop(): void } {
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const held = now - last - WATCH_EVERY_MS;
    if (held >= thresholdMs) {
      log(`event loop held for ${Math.round(held)} ms: other requests waited that long`);
    }
    last = now;
  }, WATCH_EVERY_MS);
  Deno.unrefTimer(timer);
  return { stop: () => clearInterval(timer) };
}
