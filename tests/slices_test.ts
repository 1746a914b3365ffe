/**
 * Long synchronous work in slices (slices.ts): pieces put back together are the text, a long text is counted in
 * pieces without counting fewer tokens than in one go, and other work runs between slices.
 */
import assert from "node:assert/strict";
import { inSlices, piecesOf } from "../slices.ts";
import { estimateCounter, localTokenCounter } from "../inference/tokenizer.ts";

const LONG = Array.from(
  { length: 3000 },
  (_, i) => `Turn ${i}: Hb 98\u00a0g/L, CRP 187 mg/L; creatinine 1${i % 10}8 µmol/L — review in 48 h. `,
).join("");

Deno.test("slices: pieces are cut at whitespace and put back together are the text", () => {
  const pieces = piecesOf(LONG, 16_000);
  assert.ok(pieces.length > 10);
  assert.equal(pieces.join(""), LONG);
  for (const piece of pieces.slice(1)) assert.match(piece, /^\s/, "each cut is at whitespace");
  assert.ok(pieces.every((p) => p.length <= 16_000));
  assert.deepEqual(piecesOf("short", 16_000), ["short"]);
  assert.equal(
    piecesOf("x".repeat(40_000), 16_000).join(""),
    "x".repeat(40_000),
    "no whitespace: cut anyway",
  );
});

Deno.test("slices: a long text counted in pieces never counts fewer tokens than in one go", async () => {
  const llama2 = await localTokenCounter("llama2", { readTextFile: Deno.readTextFile });
  const { default: llamaTokenizer } = await import("llama-tokenizer-js");
  const whole = llamaTokenizer.encode(LONG, false, true).length;
  const [pieced] = await llama2.count([LONG]);
  assert.ok(pieced >= whole && pieced <= whole + 2 * piecesOf(LONG, 16_000).length, `${pieced} vs ${whole}`);
  const [estimated] = await estimateCounter().count([LONG]);
  assert.ok(estimated >= whole, `estimate ${estimated} vs ${whole}`);
});

Deno.test("slices: a timer set before long work runs between its slices, not after it", async () => {
  let timerRanAt = -1;
  let step = 0;
  setTimeout(() => timerRanAt = step, 0);
  await inSlices(400, () => {
    const until = performance.now() + 0.5;
    while (performance.now() < until) { /* 0.5 ms of work */ }
    step++;
  });
  assert.ok(timerRanAt >= 0 && timerRanAt < 40, `the timer ran after step ${timerRanAt} of 400`);
});
