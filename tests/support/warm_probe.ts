/**
 * Run by tests/warm_test.ts as `deno run --v8-flags=--expose-gc`: counts keepPatternsWarm's touches around real
 * garbage collections and prints them as JSON.
 */
import { keepPatternsWarm } from "../../warm.ts";

const collect = (globalThis as { gc?: () => void }).gc;
if (!collect) throw new Error("run with --v8-flags=--expose-gc");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let touches = 0;
const warmth = keepPatternsWarm({ redaction: false, touch: () => touches++ });
const counts: Record<string, number> = { atStart: touches };
// Start-up's garbage collected first, then silence: the next collection ends a quiet spell.
await sleep(200);
collect();
await sleep(2_200);
const before = touches;
collect();
await sleep(150);
counts.afterQuietCollection = touches - before;
collect();
await sleep(150);
counts.afterSecondCollectionSoon = touches - before;
await sleep(1_000);
counts.aSecondAfterTheLastTouch = touches - before;
warmth.stop();
await sleep(2_200);
collect();
await sleep(150);
counts.afterStop = touches - before;
console.log(JSON.stringify(counts));
