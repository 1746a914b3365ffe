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

/** Every string value in a JSON document (the sample corpus and example cases are JSON or JSON lines). */
function stringsOf(value: unknown, out: string[]): void {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) { for (const item of value) stringsOf(item, out); }
  else if (value && typeof value === "object") {
    for (const item of Object.values(value)) {
      stringsOf(item, out);
    }
  }
}

async function projectTexts(): Promise<string[]> {
  const root = new URL("../data/", import.meta.url);
  const texts: string[] = [];
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (/\.jsonl?$/.test(entry.name) && !/manifest|malformed/.test(url.pathname)) {
        const raw = await Deno.readTextFile(url);
        const docs = entry.name.endsWith(".jsonl")
          ? raw.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
          : [JSON.parse(raw)];
        for (const doc of docs) stringsOf(doc, texts);
      }
    }
  };
  await walk(new URL("corpus/", root));
  await walk(new URL("cases/", root));
  return texts;
}

/**
 * Clinical-sounding text from a word-pair chain learned from the project's own sample corpus and example cases
 * (written for Rounds; hypothetical patients): a vocabulary of about 2,000 words with the frequencies and
 * neighbours of clinical prose, so texts differ as real questions and answers do. Deterministic per seed.
 */
export async function corpusText(
  seed: number,
): Promise<{ sentence(words: number): string; vocabulary: number }> {
  const next = new Map<string, string[]>();
  const starts: string[] = [];
  for (const text of await projectTexts()) {
    for (const sentence of text.split(/[.!?\n]+/)) {
      const words: string[] = sentence.toLowerCase().match(/[a-z][a-z'-]*|\d+(?:\.\d+)?/g) ?? [];
      if (words.length < 3) continue;
      starts.push(words[0]);
      for (let i = 0; i + 1 < words.length; i++) {
        const list = next.get(words[i]) ?? [];
        list.push(words[i + 1]);
        next.set(words[i], list);
      }
    }
  }
  let state = seed;
  const random = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
  return {
    vocabulary: new Set([...next.keys(), ...[...next.values()].flat()]).size,
    sentence: (count) => {
      const words: string[] = [];
      let word = pick(starts);
      while (words.length < count) {
        words.push(word);
        const options = next.get(word);
        word = options && random() < 0.9 ? pick(options) : pick(starts);
      }
      return words.join(" ");
    },
  };
}
