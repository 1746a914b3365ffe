/**
 * deno task bench:patterns: what a quiet server's first message pays to compile its patterns again, and what
 * keeping them warm (warm.ts) leaves of it.
 *
 * V8 drops a regular expression's compiled code once two full garbage collections pass without it running; an
 * idle server gets two, about 0.6 s apart (V8's memory reducer). Each round here waits QUIET_S in silence, runs
 * a full collection (`gc()`, hence `--expose-gc` in the task), leaves the event loop free for 0.6 s, runs another,
 * and then times the pattern work of one message, as the server does it, step by step: red flags and
 * identifiers in the question, follow-up detection, vocabulary expansion, the redaction gate and token estimate
 * over a prompt with five sources, and the Markdown of the reply. Three ways, in the same process, rounds
 * interleaved: untouched (what a quiet server did before warm.ts), with `keepPatternsWarm` running (what
 * main.ts starts), and the floor: the same work with no collections before it.
 *
 *   deno task bench:patterns [--rounds 15]
 */
import { isFollowUp } from "../chat/follow_up.ts";
import { estimateTokens } from "../inference/tokenizer.ts";
import { expandQuery, loadVocabulary } from "../knowledge/vocabulary.ts";
import { renderMarkdown } from "../safety/markdown.ts";
import { redactPhi, warmRedactor } from "../safety/phi.ts";
import { detectRedFlags } from "../safety/red_flags.ts";
import { keepPatternsWarm, patternSteps } from "../warm.ts";
import { benchArgs } from "./common.ts";

const args = benchArgs();
const ROUNDS = Number(args.get("rounds") ?? 10);
/** Silence before each round's collections, as before the memory reducer's. */
const QUIET_S = 2.5;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const collect = (globalThis as { gc?: () => void }).gc;
if (!collect) throw new Error("Run with --v8-flags=--expose-gc (deno task bench:patterns does)");

const vocabulary = await loadVocabulary(null);
const corpus = JSON.parse(
  await Deno.readTextFile(new URL("../data/corpus/healthcaremagic.json", import.meta.url)),
) as { input: string; output: string }[];

/** A different message each round (the samples warm.ts runs are not what is timed). */
function question(round: number): string {
  return `Patient Jo Ellison-Park, 67, DOB 0${1 + (round % 9)}/03/1958, phone 07700 9${
    10000 + round
  }: breathless on exertion for ${
    2 + round
  } weeks, ankle swelling, BP 150/95. Known HFrEF, on an ACE inhibitor. ` +
    `Labs: Na 131 mmol/L, K 5.6 mmol/L, eGFR 38\u00a0mL/min. ${
      corpus[round % corpus.length].input
    } Next steps?`;
}

/** The prompt the gate and the token estimate see: the question and five sources. */
function prompt(round: number): string {
  const sources = Array.from(
    { length: 5 },
    (_, i) => `[${i + 1}] ${corpus[(round * 5 + i) % corpus.length].output}`,
  );
  return `${sources.join("\n\n")}\n\nQuestion: ${question(round)}`;
}

const REPLY =
  "## What to do now\n\n**Breathlessness** with *ankle swelling* suggests fluid overload [1].\n\n" +
  "1. Check weight and JVP [2]\n2. Repeat U&E — `K 5.6`\n\n| Test | Value |\n| --- | --- |\n| NT-proBNP | 2,400 |\n\n" +
  "> Seek help the same day if breathless at rest. See [guideline](https://example.org/g).\n";

const STEPS: [string, (round: number) => unknown][] = [
  ["red flags in the question", (r) => detectRedFlags(question(r))],
  ["identifiers in the question", (r) => redactPhi(question(r))],
  ["follow-up or new subject", (r) => isFollowUp(question(r))],
  ["clinical vocabulary", (r) => expandQuery(question(r), vocabulary)],
  ["the gate over the prompt", (r) => redactPhi(prompt(r))],
  ["token estimate of the prompt", (r) => estimateTokens(prompt(r))],
  ["the reply's Markdown", () => renderMarkdown(REPLY)],
];

type Way = "untouched" | "kept warm" | "floor";
const times: Record<Way, number[][]> = { untouched: [], "kept warm": [], floor: [] };

function runSteps(round: number): number[] {
  return STEPS.map(([, step]) => {
    const started = performance.now();
    step(round);
    return performance.now() - started;
  });
}

// Compiled once, as main.ts does at start.
warmRedactor();
for (let r = 0; r < 5; r++) runSteps(1000 + r);

for (let round = 0; round < ROUNDS; round++) {
  for (const way of ["untouched", "kept warm", "floor"] as Way[]) {
    if (way !== "floor") {
      const warmth = way === "kept warm" ? keepPatternsWarm({ redaction: true, vocabulary }) : null;
      await sleep(QUIET_S * 1000);
      collect();
      await sleep(600);
      collect();
      warmth?.stop();
    }
    times[way].push(runSteps(round));
    runSteps(2000 + round); // warm again for the next way
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const ms = (n: number) => `${n.toFixed(2)} ms`;
console.log(
  `\nA message's pattern work after two full garbage collections: median of ${ROUNDS} rounds, ${Deno.build.os}/${Deno.build.arch}, Deno ${Deno.version.deno}\n`,
);
console.log("| Step | untouched | kept warm (`keepPatternsWarm`) | floor (no collection) |");
console.log("| --- | ---: | ---: | ---: |");
STEPS.forEach(([label], i) => {
  const cell = (way: Way) => ms(median(times[way].map((t) => t[i])));
  console.log(`| ${label} | ${cell("untouched")} | ${cell("kept warm")} | ${cell("floor")} |`);
});
const total = (way: Way) => ms(median(times[way].map((t) => t.reduce((a, b) => a + b, 0))));
console.log(
  `| **all of it** | **${total("untouched")}** | **${total("kept warm")}** | **${total("floor")}** |`,
);
const runs: number[] = [];
const longest: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const steps = patternSteps({ redaction: true, vocabulary }).map((step) => {
    const started = performance.now();
    step();
    return performance.now() - started;
  });
  runs.push(steps.reduce((a, b) => a + b, 0));
  longest.push(Math.max(...steps));
}
console.log(
  `\nWhat keepPatternsWarm spends after a collection (at most every 0.4 s under load), warm: ${
    ms(median(runs))
  } in all, in ${patternSteps({ redaction: true }).length} steps one event-loop turn apart, the longest ${
    ms(median(longest))
  }`,
);
