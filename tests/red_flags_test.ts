import assert from "node:assert/strict";
import { detectRedFlags, RED_FLAG_CATEGORIES, type RedFlagCategory } from "../safety/red_flags.ts";
import { evaluateRedFlags, formatRedFlagReport } from "../tasks/eval_red_flags.ts";

function categories(text: string): RedFlagCategory[] {
  return detectRedFlags(text).map((flag) => flag.category);
}

const REPRESENTATIVE: [string, RedFlagCategory][] = [
  ["58M with crushing chest pain and diaphoresis", "cardiac"],
  ["I have chest pain going down my left arm and I feel sweaty", "cardiac"],
  ["My wife's face is drooping and her speech is slurred", "stroke"],
  ["Sudden weakness in his right arm and leg", "stroke"],
  ["I'm vomiting blood", "bleeding"],
  ["Black tarry stools and I feel faint", "bleeding"],
  ["Stung by a bee, my tongue is swelling and I'm wheezing", "anaphylaxis"],
  ["My patient says he wants to end his life", "self_harm"],
  ["I've been thinking about killing myself", "self_harm"],
  ["My 5 week old baby has a fever of 38.4", "infant_sepsis"],
  ["Fever, stiff neck and the light hurts my eyes", "meningitis"],
  ["He can't speak in full sentences and his lips are blue", "breathing"],
  ["Fever, confused and mottled skin after a UTI", "sepsis"],
  ["She took 30 paracetamol tablets an hour ago", "overdose"],
  ["He's been having a seizure for 8 minutes", "seizure"],
  ["Found my dad unresponsive on the floor", "unconscious"],
  ["Hit his head falling off a ladder and has vomited twice", "head_injury"],
  ["Worst headache of my life, came on suddenly", "thunderclap_headache"],
  ["6 weeks pregnant with one-sided pain and shoulder tip pain", "obstetric"],
  ["Sudden severe pain in my testicle", "abdominal"],
];

Deno.test("red flags: representative emergencies get their category", () => {
  for (const [text, category] of REPRESENTATIVE) {
    assert.ok(categories(text).includes(category), `${JSON.stringify(text)} → ${categories(text)}`);
  }
});

Deno.test("red flags: every flag carries a known category, a label and advice", () => {
  for (const [text] of REPRESENTATIVE) {
    for (const flag of detectRedFlags(text)) {
      assert.ok(RED_FLAG_CATEGORIES.includes(flag.category));
      assert.ok(flag.label.length > 5);
      assert.match(flag.advice, /911 \/ 112 \/ 999/);
    }
  }
  const [selfHarm] = detectRedFlags("I want to kill myself");
  assert.match(selfHarm.advice, /crisis line/);
  assert.match(selfHarm.advice, /988/);
});

Deno.test("red flags: negated symptoms do not flag", () => {
  for (
    const text of [
      "No chest pain, no shortness of breath",
      "Patient denies chest pain, diaphoresis or dyspnoea",
      "Cough without fever or neck stiffness",
      "Denies SI or thoughts of self-harm",
      "Feeling low but not suicidal",
      "Bumped my head, no vomiting, not drowsy, not on blood thinners",
      "Hives after a shower, no swelling of lips or tongue, breathing fine",
    ]
  ) {
    assert.deepEqual(categories(text), [], text);
  }
});

Deno.test("red flags: past and resolved events do not flag", () => {
  for (
    const text of [
      "Had chest pain last year, fine since",
      "Had a stroke in 2019, now on clopidogrel, can I take ibuprofen?",
      "History of overdose in 2015, in recovery",
      "Small cut on my finger that bled a bit but stopped with pressure",
      "Father had a heart attack at 52, should I be screened?",
      "I fainted after giving blood, came round quickly and feel fine now",
    ]
  ) {
    assert.deepEqual(categories(text), [], text);
  }
});

Deno.test("red flags: a current event still flags beside a past one", () => {
  assert.ok(categories("Had a stroke in 2019, now his face is drooping again").includes("stroke"));
  assert.ok(categories("No fever yesterday, but now fever 39 and a stiff neck").includes("meningitis"));
  assert.ok(
    categories("Fell off my bike without a helmet, hit my head and threw up twice").includes("head_injury"),
  );
});

Deno.test("red flags: educational questions and teaching material do not flag", () => {
  for (
    const text of [
      "What are the FAST signs of stroke?",
      "How is anaphylaxis managed?",
      "What is the first-line treatment for status epilepticus?",
      "Write a teaching case about a 60-year-old man with crushing chest pain and sweating for an OSCE station",
    ]
  ) {
    assert.deepEqual(categories(text), [], text);
  }
});

Deno.test("red flags: common words in other senses do not flag", () => {
  for (
    const text of [
      "Amlodipine 5 mg OD, any interactions?",
      "I could kill for a coffee",
      "Heat stroke prevention tips for runners",
      "Should my son get the meningitis B vaccine?",
      "I can't breathe through my nose with this cold",
      "These shoes don't fit",
    ]
  ) {
    assert.deepEqual(categories(text), [], text);
  }
  assert.deepEqual(categories("He took an OD of his tablets"), ["overdose"]);
});

Deno.test("red flags: at most one flag per category", () => {
  const text =
    "Crushing chest pain, sweating, pain in my left arm. Also I think it's a heart attack. ST elevation on ECG.";
  const found = categories(text);
  assert.deepEqual(found, ["cardiac"]);
  const many = categories(
    "My dad collapsed, he's unresponsive. Earlier he had crushing chest pain with sweating and his face was drooping.",
  );
  assert.equal(new Set(many).size, many.length);
  assert.ok(many.includes("cardiac") && many.includes("stroke") && many.includes("unconscious"));
});

Deno.test("red flags: a flag buried in a long message is found", () => {
  const filler = "We have been to the clinic several times about his knee and his blood pressure tablets. "
    .repeat(20);
  assert.ok(
    categories(`${filler}Tonight he suddenly cannot lift his left arm and his speech is slurred. ${filler}`)
      .includes("stroke"),
  );
});

Deno.test("red flags: adversarial input of the longest allowed length finishes fast", () => {
  detectRedFlags("warm up: chest pain and sweating");
  const words = ["chest ", "not breathing ", "pain in my ", "no ", "a ", "1 ", "fell and hit my ", ", ", "x"];
  for (const word of words) {
    const text = word.repeat(Math.ceil(8000 / word.length)).slice(0, 8000);
    const started = performance.now();
    detectRedFlags(text);
    const ms = performance.now() - started;
    // Generous: typical runs take a few milliseconds; backtracking blow-ups take seconds.
    assert.ok(ms < 200, `${JSON.stringify(word)} × 8,000 chars took ${ms.toFixed(1)} ms`);
  }
  assert.deepEqual(detectRedFlags(""), []);
});

Deno.test("red flags: the labelled sets reach recall ≥ 0.95 with false-positive rate ≤ 0.05", async () => {
  const report = await evaluateRedFlags();
  assert.equal(report.files.length, 3);
  const summary = formatRedFlagReport(report);
  for (const file of report.files) {
    assert.ok(file.positives >= 30 && file.negatives >= 20, summary);
    assert.ok(file.recall >= 0.95, summary);
    assert.ok(file.falsePositiveRate <= 0.05, summary);
  }
  const [main] = report.files;
  assert.ok(main.positives >= 200 && main.negatives >= 200);
  for (const category of RED_FLAG_CATEGORIES) {
    assert.ok((main.perCategory[category]?.positives ?? 0) >= 10, category);
  }
});
