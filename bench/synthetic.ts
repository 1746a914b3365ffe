/**
 * Synthetic clinical text for the benchmarks: deterministic sentences from a small clinical vocabulary, and
 * ChatDoctor-format rows made of them. Not realistic language (a 70-word vocabulary makes texts alike); enough to
 * load a knowledge base of any size without a dataset.
 */

const WORDS =
  ("pain fever cough rash swelling headache dizziness nausea fatigue bleeding chest abdomen knee back " +
    "throat ear eye skin tablet dose weeks days months morning night worse better started stopped since after " +
    "blood pressure sugar kidney liver heart lung test scan referral review advice rest fluids antibiotic steroid " +
    "cream inhaler physiotherapy urgent emergency mild severe chronic acute recurrent left right both child adult")
    .split(" ");

/** A deterministic source of sentences (the same seed gives the same text). */
export function syntheticText(seed: number): { sentence(words: number): string } {
  let state = seed;
  const random = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return {
    sentence: (words) =>
      Array.from({ length: words }, () => WORDS[Math.floor(random() * WORDS.length)]).join(" "),
  };
}

/** One ChatDoctor-format row: a patient's question and a doctor's reply. */
export function syntheticRow(
  i: number,
  text: { sentence(words: number): string },
): { instruction: string; input: string; output: string } {
  return {
    instruction:
      "If you are a doctor, please answer the medical questions based on the patient's description.",
    input: `Case ${i}: ${text.sentence(25)}.`,
    output: `Reply ${i}: ${text.sentence(45)}. ${text.sentence(20)}.`,
  };
}
