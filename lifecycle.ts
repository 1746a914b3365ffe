/**
 * In-flight work and graceful shutdown: work registers here so that SIGINT/SIGTERM can let it finish,
 * then abort what is left and wait for it to record its state before the database closes.
 */

/** A unit of background work: it must stop promptly when `signal` aborts and record what it had done. */
export type Work<T> = (signal: AbortSignal) => Promise<T>;

/** What drain() observed. */
export interface DrainResult {
  /** Tracked work that finished on its own within the timeout. */
  finished: number;
  /** Tracked work that was still running at the timeout and was told to stop. */
  aborted: number;
  /** Aborted work that had not settled within the grace period after the abort. */
  abandoned: number;
}

/** Tracks in-flight work and coordinates shutdown. */
export interface Lifecycle {
  /** True once shutdown has begun: new long-running work should be refused. */
  readonly draining: boolean;
  /** Aborted when shutdown stops waiting; passed to every tracked work item. */
  readonly signal: AbortSignal;
  /** Number of tracked work items still running. */
  readonly inFlight: number;
  /** Runs and tracks a work item; the returned promise settles with it. */
  run<T>(work: Work<T>): Promise<T>;
  /** Stops new work, waits up to timeoutMs for tracked work, then aborts the rest and waits for it to settle. */
  drain(timeoutMs: number, options?: { abortGraceMs?: number }): Promise<DrainResult>;
}

/** Creates a lifecycle with nothing in flight. */
export function createLifecycle(): Lifecycle {
  const controller = new AbortController();
  const running = new Set<Promise<unknown>>();
  let draining = false;
  let finishedDuringDrain = 0;

  return {
    get draining() {
      return draining;
    },
    get signal() {
      return controller.signal;
    },
    get inFlight() {
      return running.size;
    },
    run<T>(work: Work<T>): Promise<T> {
      const promise = Promise.resolve().then(() => work(controller.signal));
      const settled = promise.then(() => {}, () => {}).finally(() => {
        running.delete(settled);
        if (draining && !controller.signal.aborted) finishedDuringDrain++;
      });
      running.add(settled);
      return promise;
    },
    async drain(timeoutMs: number, options: { abortGraceMs?: number } = {}): Promise<DrainResult> {
      draining = true;
      const inFlightAtStart = running.size;
      if (running.size > 0) await settleWithin([...running], timeoutMs);
      const aborted = running.size;
      controller.abort(new DOMException("The server is shutting down", "AbortError"));
      if (aborted > 0) await settleWithin([...running], options.abortGraceMs ?? 5000);
      return {
        finished: Math.min(finishedDuringDrain, inFlightAtStart),
        aborted,
        abandoned: running.size,
      };
    },
  };
}

async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.allSettled(promises),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
