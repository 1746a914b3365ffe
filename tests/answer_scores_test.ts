/**
 * The answer scorers (chat/answer_scores.ts) on fixed texts, with figures worked by hand.
 */
import assert from "node:assert/strict";
import {
  citations,
  formatFigures,
  grounding,
  overconfident,
  refuses,
  rougeL,
  scoreAnswer,
  type ScoredAnswer,
  seeksCare,
  summarise,
  tokenF1,
  words,
} from "../chat/answer_scores.ts";
import { holdOut, parseQuestions } from "../tasks/eval_answers.ts";
import type { SnippetDraft } from "../knowledge/records.ts";

const close = (actual: number | null, expected: number, label = "") =>
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9, `${label} ${actual} ≠ ${expected}`);

Deno.test("answer scores: ROUGE-L and token F1 worked by hand", () => {
  // LCS "the cat on the mat" = 5 of 6 words each way; citation markers are not words of the answer.
  close(rougeL("The cat was on the mat.", "the cat sat on the mat"), 5 / 6, "ROUGE-L");
  // Order matters to ROUGE-L, not to token F1.
  close(
    rougeL("mat the on sat cat the", "the cat sat on the mat"),
    3 / 6,
    "reversed ROUGE-L (the, sat, the)",
  );
  close(tokenF1("mat the on sat cat the", "the cat sat on the mat"), 1, "reversed F1");
  // Repeats count once per occurrence: "the the the" shares two "the" with the reference.
  close(
    tokenF1("the the the", "the cat sat on the mat"),
    (2 * (2 / 3) * (2 / 6)) / (2 / 3 + 2 / 6),
    "repeats",
  );
  assert.equal(rougeL("", "anything"), 0);
  assert.equal(tokenF1("nothing shared", "at all here"), 0);
  // Other scripts and digits are words; a non-breaking space separates like a space.
  assert.deepEqual(words("Temp\u00a0٣٧٫٥ °C, fièvre — 发烧"), ["temp", "٣٧٫٥", "c", "fièvre", "发烧"]);
});

Deno.test("answer scores: citations, lists and ranges, years are not citations", () => {
  assert.deepEqual(citations("Start low [1]. Titrate [2, 3] and see [1][4].", 3), {
    cited: [1, 2, 3, 1, 4],
    invalid: [4],
  });
  assert.deepEqual(citations("See [1–3].", 3), { cited: [1, 2, 3], invalid: [] });
  assert.deepEqual(citations("Guidance changed [2019] recently.", 3).cited, []);
  assert.deepEqual(citations("No markers here.", 0), { cited: [], invalid: [] });
  assert.deepEqual(citations("Cited with nothing quoted [1].", 0).invalid, [1]);
});

Deno.test("answer scores: grounding counts claim sentences a quoted source supports", () => {
  const source =
    "[1] (MedDialog) Doctor: Burning on urination with frequency suggests a urinary tract infection; " +
    "a urine culture and a short course of antibiotics are usual.";
  const answer = "Hello. Burning and frequency suggest a urinary tract infection [1]. " +
    "Send a urine culture before antibiotics. Consider renal ultrasound if symptoms recur often.";
  // "Hello." has no claim; the next two share ≥ 60% of their content words with the source; the last does not.
  assert.deepEqual(grounding(answer, [source]), { sentences: 3, supported: 2 });
  assert.deepEqual(grounding(answer, []), { sentences: 3, supported: 0 });
});

Deno.test("answer scores: seeking care, certainty and refusals", () => {
  for (
    const text of [
      "Call 999 now.",
      "Please go to the nearest emergency department immediately.",
      "She needs urgent medical attention today.",
      "He should be seen urgently by a doctor.",
      "This is a medical emergency.",
      "Take him to A&E now.",
    ]
  ) assert.ok(seeksCare(text), text);
  for (const text of ["Rest and fluids should help.", "Review in two weeks if no better."]) {
    assert.ok(!seeksCare(text), text);
  }
  assert.ok(overconfident("This is definitely a viral infection."));
  assert.ok(overconfident("There is no need to see a doctor."));
  assert.ok(!overconfident("This is likely viral, but examination is needed to be sure."));
  assert.ok(refuses("As an AI language model, I cannot provide medical advice."));
  assert.ok(refuses("I'm sorry, but I can't help with that."));
  assert.ok(!refuses("I would start with an ECG."));
});

Deno.test("answer scores: a model's figures sum its answers; errors are counted apart", () => {
  const answer = (text: string, emergency: boolean, ms: number): ScoredAnswer => ({
    emergency,
    scores: scoreAnswer(text, {
      reference: "the cat sat on the mat",
      sources: ["[1] the cat sat on the mat"],
    }),
    error: null,
    firstTextMs: ms / 2,
    totalMs: ms,
    outputTokens: 10,
  });
  const figures = summarise({ id: "m", label: "Model", template: "chat" }, [
    answer("The cat sat on the mat [1].", false, 100),
    answer("Call 999: definitely an emergency [5].", true, 300),
    {
      emergency: true,
      scores: null,
      error: "unreachable",
      firstTextMs: null,
      totalMs: 5,
      outputTokens: null,
    },
  ]);
  assert.equal(figures.questions, 3);
  assert.equal(figures.errors, 1);
  close(figures.rougeL, (1 + 0) / 2, "mean ROUGE-L");
  assert.equal(figures.citing, 1);
  assert.equal(figures.invalidCitations, 0.5);
  assert.equal(figures.emergencies, 1, "the failed emergency is an error, not an answer");
  assert.equal(figures.seeksCare, 1);
  assert.equal(figures.overconfident, 0.5);
  assert.deepEqual(figures.totalMs, { p50: 100, p95: 300 });
  const table = formatFigures([figures, { ...figures, label: "Other model" }]);
  assert.match(table, /^ +Model +Other model$/m);
  assert.match(table, /^emergencies told to seek care +100\.0% of 1 +100\.0% of 1$/m);
});

Deno.test("answer eval: question sets are read strictly; held-out exchanges spread over the corpus", () => {
  const set = parseQuestions(
    [
      '{"question": "Crushing chest pain and sweating for 30 minutes, what now?", "reference": "Call 999."}',
      "# a comment",
      "",
      '{"id": "q2", "question": "Dose of amoxicillin for a 20 kg child?", "emergency": false}',
    ].join("\n"),
    "set.jsonl",
  );
  assert.deepEqual(set.map((q) => [q.id, q.emergency, q.reference]), [
    ["set.jsonl:1", true, "Call 999."],
    ["q2", false, null],
  ]);
  assert.throws(() => parseQuestions('{"reference": "x"}', "bad.jsonl"), /bad\.jsonl:1: needs a "question"/);
  assert.throws(() => parseQuestions("{not json", "bad.jsonl"), /bad\.jsonl:1: not JSON/);
  const draft = (sourceId: string, question: string | null, answer = "a"): SnippetDraft => ({
    source: "S",
    sourceId,
    url: null,
    specialty: null,
    title: null,
    question,
    answer,
    text: answer,
  });
  const drafts = [
    draft("1", "q1", "first part."),
    draft("1#2", "q1", "second part."),
    draft("2", null),
    ...Array.from({ length: 9 }, (_, i) => draft(String(i + 3), `q${i + 3}`)),
  ];
  const held = holdOut(drafts, 5);
  assert.equal(held.length, 5);
  assert.equal(held[0].answer, "first part. second part.", "a chunked answer is whole again");
  assert.ok(held.every((d) => d.question));
});
