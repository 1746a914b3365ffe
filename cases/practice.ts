/**
 * Practice with a simulated patient: which script facts the learner has asked about (only those reach the
 * model's prompt, so it cannot reveal the rest), the patient's system prompt, and the debrief: the transcript
 * scored against the examiner checklist deterministically, with the model's narrative feedback kept apart.
 */
import { formatAge, keyWords } from "./consistency.ts";
import type { Case, ScriptFact } from "./schema.ts";

/** Simple stemming so "smoking" asks about "smoke" and "pains" about "pain". */
function stem(word: string): string {
  return word.length > 4 ? word.replace(/(ings|ing|ed|es|s|e)$/, "") : word.replace(/s$/, "");
}

function words(text: string): string[] {
  return text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "").split(/[^a-z0-9]+/)
    .filter(Boolean).map(stem);
}

/** True when the learner's text contains the trigger (a word or phrase), word by word, loosely stemmed. */
export function matchesTrigger(text: string, trigger: string): boolean {
  const haystack = words(text);
  const needle = words(trigger);
  if (needle.length === 0) return false;
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (needle.every((w, j) => haystack[i + j] === w)) return true;
  }
  return false;
}

/** The facts the learner's questions have reached, each with the (1-based) learner turn that first asked. */
export function revealedFacts(c: Case, learnerTurns: string[]): { fact: ScriptFact; turn: number }[] {
  const out: { fact: ScriptFact; turn: number }[] = [];
  for (const fact of c.script.facts) {
    const turn = learnerTurns.findIndex((text) => fact.triggers.some((t) => matchesTrigger(text, t)));
    if (turn !== -1) out.push({ fact, turn: turn + 1 });
  }
  return out;
}

/**
 * The system prompt that makes the model the patient. It holds the persona, the presenting complaint in the
 * patient's words and only the facts already asked about: what is not asked is not in the prompt, and the
 * diagnosis never is.
 */
export function patientSystemPrompt(c: Case, revealed: ScriptFact[]): string {
  const p = c.patient;
  const lines = [
    `You are role-playing a patient in a medical teaching exercise. The case is hypothetical.`,
    `You are ${p.name}, ${formatAge(p.age)}, ${p.sex}${p.occupation ? `, ${p.occupation}` : ""}.`,
    `Setting: ${c.setting}. You came because: ${c.chiefComplaint}`,
    `You opened with: "${c.script.openingLine}"`,
  ];
  if (c.script.emotionalCues.length) lines.push(`How you behave: ${c.script.emotionalCues.join(" ")}`);
  if (c.script.patientQuestions.length) {
    lines.push(`Questions you may ask the doctor when it fits: ${c.script.patientQuestions.join(" ")}`);
  }
  lines.push(
    revealed.length
      ? `What you can tell the doctor now, because they asked about it:\n${
        revealed.map((f) => `- ${f.topic}: ${f.detail}`).join("\n")
      }`
      : `The doctor has not asked about anything specific yet.`,
    `Rules: answer only what the doctor asks, in plain everyday words, one to three sentences. If asked about ` +
      `something not listed above, say you are not sure or that nothing comes to mind; do not invent new ` +
      `symptoms. You do not know your diagnosis: never name or guess one, and never use medical jargon. Stay ` +
      `in character; you are the patient, not a doctor.`,
  );
  return lines.join("\n");
}

/** One checklist item's result. */
export interface ChecklistResult {
  item: string;
  category: string;
  /** elicited: its script fact was asked about; mentioned: its key words appear in the learner's turns (a
   * heuristic, to be confirmed by the examiner); missed; or in_person: examination cannot happen in text. */
  status: "elicited" | "mentioned" | "missed" | "in_person";
  /** The learner turn (1-based) that earned it. */
  turn: number | null;
  /** What the learner said in that turn (clipped). */
  evidence: string | null;
}

/** The deterministic part of a debrief. */
export interface DebriefScore {
  results: ChecklistResult[];
  /** History items linked to facts: how many were elicited, of how many. */
  history: { elicited: number; total: number };
  learnerTurns: number;
}

function clip(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max - 1) + "…" : flat;
}

/** Scores the learner's turns against the checklist. Deterministic: the same transcript, the same result. */
export function scoreTranscript(c: Case, learnerTurns: string[]): DebriefScore {
  const facts = new Map(revealedFacts(c, learnerTurns).map((r) => [r.fact.id, r.turn]));
  const turnWords = learnerTurns.map((t) => new Set(words(t)));
  const results: ChecklistResult[] = c.checklist.map((item) => {
    if (item.factId) {
      const turn = facts.get(item.factId) ?? null;
      return {
        item: item.item,
        category: item.category,
        status: turn ? "elicited" : "missed",
        turn,
        evidence: turn ? clip(learnerTurns[turn - 1]) : null,
      };
    }
    if (item.category === "examination") {
      return { item: item.item, category: item.category, status: "in_person", turn: null, evidence: null };
    }
    const key = keyWords(item.item).map(stem).filter((w) => !GENERIC.has(w));
    const needed = Math.max(1, Math.ceil(key.length * 0.5));
    const index = turnWords.findIndex((set) => key.filter((w) => set.has(w)).length >= needed);
    return {
      item: item.item,
      category: item.category,
      status: key.length > 0 && index !== -1 ? "mentioned" : "missed",
      turn: index !== -1 && key.length > 0 ? index + 1 : null,
      evidence: index !== -1 && key.length > 0 ? clip(learnerTurns[index]) : null,
    };
  });
  const linked = results.filter((_, i) => c.checklist[i].factId);
  return {
    results,
    history: { elicited: linked.filter((r) => r.status === "elicited").length, total: linked.length },
    learnerTurns: learnerTurns.length,
  };
}
/** Words in checklist items that say nothing about the content ("asks", "explains", "patient"). */
const GENERIC = new Set(
  [
    "ask",
    "asks",
    "explain",
    "explains",
    "patient",
    "appropriate",
    "appropriately",
    "uses",
    "use",
    "offer",
    "offers",
  ]
    .map(stem),
);

/** The prompt for the model's narrative feedback: the transcript and the scoring, for a short formative note. */
export function feedbackPrompt(
  c: Case,
  transcript: { role: "learner" | "patient"; text: string }[],
  score: DebriefScore,
): string {
  const missed = score.results.filter((r) => r.status === "missed").map((r) => `- ${r.item}`);
  return [
    `A learner (${c.learnerLevel}) practised a history-taking station with a simulated patient. The case is ` +
    `hypothetical: "${c.title}". The expected diagnosis was ${c.finalDiagnosis}.`,
    ``,
    `Transcript:`,
    ...transcript.map((t) => `${t.role === "learner" ? "Learner" : "Patient"}: ${clip(t.text, 600)}`),
    ``,
    `Checklist items not reached:`,
    ...(missed.length ? missed : ["- none"]),
    ``,
    `Write brief formative feedback for the learner in 4 to 6 sentences: what went well, what to ask next ` +
    `time and why it matters for this presentation. Be specific to the transcript. Do not invent events that ` +
    `are not in it.`,
  ].join("\n");
}
