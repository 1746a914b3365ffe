/**
 * `deno task eval retrieval` as an operator runs it: the tables issue 20 asks for, and the targets the offline
 * default meets on the sample corpus (paraphrases R@5 ≥ 0.90, topic-switch errors 0), with floors that catch a
 * ranking change that costs the held-out questions.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runTask } from "./support/server_process.ts";

interface Row {
  source?: string;
  mode: string;
  queries: number;
  recallAt1: number;
  recallAt5: number;
  recallAt10: number;
  mrr: number;
}

Deno.test("eval retrieval: every mode with and without the vocabulary, paraphrases and topic switches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rounds-eval-" });
  try {
    const out = join(dir, "retrieval.json");
    const run = await runTask("eval", ["retrieval", "--json", out], {});
    assert.equal(run.code, 0, run.text);
    for (
      const heading of ["source / mode", "Paraphrased questions", "Topic switches", "Minimum similarity"]
    ) {
      assert.ok(run.text.includes(heading), `the output has "${heading}"`);
    }
    const report = JSON.parse(await Deno.readTextFile(out)) as {
      results: Row[];
      paraphrases: Row[];
      topicSwitches: { results: Row[]; carried: number; previousFirst: number };
      followUps: { carried: number; ownDialogueFirst: number; ownAnswerInFive: number };
      thresholds: { threshold: number; precision: number; recall: number; f1: number }[];
      bestF1Threshold: number;
    };
    const held = (mode: string) => report.results.find((r) => r.source === "all" && r.mode === mode)!;
    for (const mode of ["hybrid", "vector", "text"]) {
      assert.ok(held(mode), `held-out ${mode}`);
      assert.ok(held(`${mode} + vocabulary`), `held-out ${mode} + vocabulary`);
      assert.ok(report.paraphrases.some((r) => r.mode === `${mode} + vocabulary`));
      assert.ok(report.topicSwitches.results.some((r) => r.mode === mode));
    }
    assert.ok(held("hybrid").queries >= 250, "the held-out questions of the sample corpus");
    // Floors a little under today's figures (BM25: 0.924, 0.924 and 0.935; ts_rank gave 0.886 and 0.871): a
    // ranking change that costs more fails here.
    assert.ok(held("hybrid").recallAt5 >= 0.91, `held-out hybrid R@5 ${held("hybrid").recallAt5}`);
    assert.ok(held("hybrid").recallAt1 >= 0.76, `held-out hybrid R@1 ${held("hybrid").recallAt1}`);
    assert.ok(
      held("hybrid + vocabulary").recallAt5 >= 0.91,
      `held-out hybrid + vocabulary R@5 ${held("hybrid + vocabulary").recallAt5}`,
    );
    // As chat asks: 0.935 before a follow-up's sources kept its dialogue's next exchange, 0.958 after.
    const asked = held("as chat asks (in its dialogue)");
    assert.ok(asked.recallAt5 >= 0.95, `held-out as chat asks R@5 ${asked.recallAt5}`);
    // The dialogues' own follow-ups ("Thanks. If paracetamol is not enough…") carry their earlier question, and
    // that finds their dialogue (15 of 15 today).
    assert.ok(report.followUps.carried >= 10, `follow-ups carried ${report.followUps.carried}`);
    assert.equal(
      report.followUps.ownDialogueFirst,
      report.followUps.carried,
      "follow-ups find their dialogue",
    );
    // And their own answer, the exchange after the one their carried question finds (15 of 15 today; 9 before).
    assert.ok(
      report.followUps.ownAnswerInFive >= report.followUps.carried - 1,
      `follow-ups with their own answer in the first five: ${report.followUps.ownAnswerInFive}`,
    );
    const paraphrased = report.paraphrases.find((r) => r.mode === "hybrid + vocabulary")!;
    assert.ok(paraphrased.recallAt5 >= 0.9, `paraphrases, hybrid + vocabulary R@5 ${paraphrased.recallAt5}`);
    assert.ok(report.topicSwitches.results[0].queries >= 50, "the topic switches");
    assert.equal(report.topicSwitches.carried, 0, "no new subject carries the previous question");
    assert.equal(report.topicSwitches.previousFirst, 0, "no new subject gets the last topic's source first");
    // The threshold's trade-off: recall falls and precision rises as it goes up.
    const [low, , , , high] = report.thresholds;
    assert.ok(low.recall > high.recall && low.precision < high.precision, JSON.stringify(report.thresholds));
    assert.ok(report.thresholds.some((t) => t.threshold === report.bestF1Threshold));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
