/**
 * Run by tests/warm_test.ts as `deno run --v8-flags=--expose-gc`: the times of keepPatternsWarm's runs and of
 * real garbage collections, as JSON, in milliseconds since the probe began.
 */
import { keepPatternsWarm } from "../../warm.ts";

const collect = (globalThis as { gc?: () => void }).gc;
if (!collect) throw new Error("run with --v8-flags=--expose-gc");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const began = performance.now();
const now = () => performance.now() - began;
const runs: number[] = [];
const collections: number[] = [];
const collectNow = () => {
  collections.push(now());
  collect();
};
const warmth = keepPatternsWarm({ redaction: false, touch: () => runs.push(now()) });
// Start-up's garbage collected first, then silence, as before the memory reducer's collections.
await sleep(200);
collectNow();
await sleep(2_000);
// A quiet spell's collection, another 0.1 s later, a third 0.6 s after the first.
collectNow();
await sleep(100);
collectNow();
await sleep(500);
collectNow();
await sleep(700);
// A run follows at once (the last began more than 0.4 s ago); the next collection's run must wait 0.4 s after it,
// and is stopped while it waits: it never comes.
collectNow();
await sleep(50);
collectNow();
warmth.stop();
const stoppedAt = now();
await sleep(700);
collect();
await sleep(100);
console.log(JSON.stringify({ runs, collections, stoppedAt }));
