/**
 * Clinical consistency checks on a schema-valid case: what a clinician reviewing it would catch. Errors make a
 * generated case be repaired or retried; every flag, error or warning, is stored and shown on the case.
 */
import type { Case } from "./schema.ts";

/** A problem found in a case. Errors are contradictions; warnings are gaps worth a look. */
export interface CaseFlag {
  severity: "error" | "warning";
  /** Field path, `vitalSigns.heartRate` or `checklist.3.factId`. */
  path: string;
  message: string;
}

/** Physiological limits: outside them a value is not survivable or not measurable, so it is a typo. */
const LIMITS = {
  heartRate: { min: 20, max: 250, label: "Heart rate", unit: "beats/min" },
  respiratoryRate: { min: 4, max: 80, label: "Respiratory rate", unit: "breaths/min" },
  systolic: { min: 50, max: 260, label: "Systolic pressure", unit: "mmHg" },
  diastolic: { min: 20, max: 160, label: "Diastolic pressure", unit: "mmHg" },
  temperatureC: { min: 30, max: 43, label: "Temperature", unit: "°C" },
  oxygenSaturation: { min: 50, max: 100, label: "Oxygen saturation", unit: "%" },
  glucoseMmol: { min: 0.5, max: 60, label: "Capillary glucose", unit: "mmol/L" },
  gcs: { min: 3, max: 15, label: "Glasgow Coma Scale", unit: "/15" },
  painScore: { min: 0, max: 10, label: "Pain score", unit: "/10" },
  weight: { min: 0.3, max: 350, label: "Weight", unit: "kg" },
} as const;

/** Investigations whose numeric result has no unit. */
const UNITLESS = /\b(ph|inr|ratio|specific gravity|index|score|grade|stage|count of|titre|titer|ct value)\b/i;

/** Words in findings that only fit one sex (checked against the patient's sex). */
const FEMALE_ONLY =
  /\b(pregnan\w*|gravid\w*|menstrua\w*|menses|last menstrual period|uterus|uterine|ovar\w*|cervix|cervical smear|vagina|vaginal|endometri\w*|postpartum|lactating|lactation|breastfeeding)\b/i;
const MALE_ONLY = /\b(prostat\w*|testic\w*|testes|scrot\w*|penile|penis|erectile)\b/i;
/** Findings that fit only an infant. */
const INFANT_ONLY = /\b(anterior fontanelle|fontanelle|fontanel|umbilical stump|meconium)\b/i;

/** Runs every check; the case must already be schema-valid. */
export function checkCase(c: Case): CaseFlag[] {
  return [
    ...checkVitals(c),
    ...checkPatientFit(c),
    ...checkInvestigations(c),
    ...checkDiagnosis(c),
    ...checkScriptAndChecklist(c),
  ];
}

/** True when any flag is an error. */
export function hasErrors(flags: CaseFlag[]): boolean {
  return flags.some((f) => f.severity === "error");
}

function range(
  flags: CaseFlag[],
  path: string,
  value: number,
  limit: { min: number; max: number; label: string; unit: string },
  shownValue = value,
  shownUnit: string = limit.unit,
) {
  if (value < limit.min || value > limit.max) {
    flags.push({
      severity: "error",
      path,
      message:
        `${limit.label} ${shownValue} ${shownUnit} is outside the physiological range (${limit.min}–${limit.max} ${limit.unit})`,
    });
  }
}

function checkVitals(c: Case): CaseFlag[] {
  const flags: CaseFlag[] = [];
  const v = c.vitalSigns;
  if (v.heartRate) range(flags, "vitalSigns.heartRate", v.heartRate.value, LIMITS.heartRate);
  if (v.respiratoryRate) {
    range(flags, "vitalSigns.respiratoryRate", v.respiratoryRate.value, LIMITS.respiratoryRate);
  }
  if (v.bloodPressure) {
    const { systolic, diastolic } = v.bloodPressure;
    range(flags, "vitalSigns.bloodPressure.systolic", systolic, LIMITS.systolic);
    range(flags, "vitalSigns.bloodPressure.diastolic", diastolic, LIMITS.diastolic);
    if (diastolic >= systolic) {
      flags.push({
        severity: "error",
        path: "vitalSigns.bloodPressure",
        message: `Diastolic pressure (${diastolic}) must be below systolic (${systolic})`,
      });
    }
  }
  if (v.temperature) {
    const { value, unit } = v.temperature;
    const celsius = unit === "°F" ? (value - 32) * 5 / 9 : value;
    range(flags, "vitalSigns.temperature", celsius, LIMITS.temperatureC, value, unit);
  }
  if (v.oxygenSaturation) {
    range(flags, "vitalSigns.oxygenSaturation", v.oxygenSaturation.value, LIMITS.oxygenSaturation);
  }
  if (v.capillaryGlucose) {
    const { value, unit } = v.capillaryGlucose;
    const mmol = unit === "mg/dL" ? value / 18 : value;
    range(flags, "vitalSigns.capillaryGlucose", mmol, LIMITS.glucoseMmol, value, unit);
  }
  if (v.gcs) range(flags, "vitalSigns.gcs", v.gcs.value, LIMITS.gcs);
  if (v.painScore) range(flags, "vitalSigns.painScore", v.painScore.value, LIMITS.painScore);
  if (v.weight) range(flags, "vitalSigns.weight", v.weight.value, LIMITS.weight);
  if (!v.heartRate && !v.bloodPressure && !v.respiratoryRate && !v.temperature && !v.oxygenSaturation) {
    flags.push({
      severity: "warning",
      path: "vitalSigns",
      message: "No vital signs are recorded: fine for a telephone consultation, otherwise add them",
    });
  }
  return flags;
}

/** The free-text places where findings about the patient's body appear. */
function clinicalTexts(c: Case): { path: string; text: string }[] {
  return [
    { path: "historyOfPresentIllness", text: c.historyOfPresentIllness },
    ...c.pastMedicalHistory.map((text, i) => ({ path: `pastMedicalHistory.${i}`, text })),
    ...c.reviewOfSystems.map((r, i) => ({ path: `reviewOfSystems.${i}.findings`, text: r.findings })),
    ...c.examination.map((e, i) => ({ path: `examination.${i}.findings`, text: e.findings })),
    ...c.investigations.map((inv, i) => ({ path: `investigations.${i}`, text: `${inv.name} ${inv.value}` })),
    { path: "finalDiagnosis", text: c.finalDiagnosis },
  ];
}

function checkPatientFit(c: Case): CaseFlag[] {
  const flags: CaseFlag[] = [];
  const { sex, age } = c.patient;
  for (const { path, text } of clinicalTexts(c)) {
    // A negated mention ("no testicular pain", "not pregnant") still only fits one sex.
    const wrongSex = sex === "male"
      ? text.match(FEMALE_ONLY)
      : sex === "female"
      ? text.match(MALE_ONLY)
      : null;
    if (wrongSex) {
      flags.push({
        severity: "error",
        path,
        message: `"${wrongSex[0]}" does not fit a ${sex} patient`,
      });
    }
    const pregnancy = /\bpregnan\w*\b/i.exec(text);
    if (pregnancy && sex === "female" && (age < 10 || age > 60) && !/\bnot pregnant|no pregnan/i.test(text)) {
      flags.push({
        severity: "error",
        path,
        message: `Pregnancy does not fit a patient aged ${formatAge(age)}`,
      });
    }
    const infant = text.match(INFANT_ONLY);
    if (infant && age >= 2) {
      flags.push({
        severity: "error",
        path,
        message: `"${infant[0]}" fits an infant, not a patient aged ${formatAge(age)}`,
      });
    }
  }
  if (age < 14 && /\b(smok\w+ \d+ (cigarettes|pack)|pack[- ]years?)\b/i.test(c.socialHistory)) {
    flags.push({
      severity: "warning",
      path: "socialHistory",
      message: `A smoking history in pack-years is unusual at age ${formatAge(age)}`,
    });
  }
  return flags;
}

function checkInvestigations(c: Case): CaseFlag[] {
  const flags: CaseFlag[] = [];
  c.investigations.forEach((inv, i) => {
    const numeric = typeof inv.value === "number" ||
      /^[<>≤≥]?\s*-?\d+(\.\d+)?$/.test(String(inv.value).trim());
    if (numeric && !inv.unit && !UNITLESS.test(inv.name)) {
      flags.push({
        severity: "error",
        path: `investigations.${i}.unit`,
        message: `${inv.name} has a numeric result (${inv.value}) but no unit`,
      });
    }
    if (numeric && !inv.referenceRange) {
      flags.push({
        severity: "warning",
        path: `investigations.${i}.referenceRange`,
        message: `${inv.name} has no reference range`,
      });
    }
  });
  return flags;
}

/** Lowercase words that carry meaning, for loose matching of diagnoses and topics. */
export function keyWords(text: string): string[] {
  return text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "").split(/[^a-z0-9]+/)
    .filter((w) => w.length > 2 && !STOP_WORDS.has(w));
}
const STOP_WORDS = new Set([
  "the",
  "and",
  "with",
  "due",
  "from",
  "for",
  "acute",
  "chronic",
  "primary",
  "secondary",
  "left",
  "right",
  "bilateral",
  "type",
  "disease",
  "syndrome",
  "probable",
  "likely",
  "possible",
]);

/** True when two diagnosis names plausibly mean the same thing (most of the shorter one's words appear). */
export function sameDiagnosis(a: string, b: string): boolean {
  const [short, long] = [keyWords(a), keyWords(b)].sort((x, y) => x.length - y.length);
  if (short.length === 0) return a.trim().toLowerCase() === b.trim().toLowerCase();
  const longSet = new Set(long.map(stem));
  const shared = short.filter((w) => longSet.has(stem(w))).length;
  return shared / short.length >= 0.6;
}
function stem(word: string): string {
  return word.replace(/(itis|osis|ies|es|s)$/, "");
}

function checkDiagnosis(c: Case): CaseFlag[] {
  const flags: CaseFlag[] = [];
  if (!c.differential.some((d) => sameDiagnosis(d.diagnosis, c.finalDiagnosis))) {
    flags.push({
      severity: "error",
      path: "finalDiagnosis",
      message: `The final diagnosis "${c.finalDiagnosis}" is not in the differential`,
    });
  }
  const seen = new Map<string, number>();
  c.differential.forEach((d, i) => {
    const key = keyWords(d.diagnosis).join(" ");
    if (seen.has(key)) {
      flags.push({
        severity: "warning",
        path: `differential.${i}.diagnosis`,
        message: `"${d.diagnosis}" appears twice in the differential`,
      });
    }
    seen.set(key, i);
  });
  return flags;
}

function checkScriptAndChecklist(c: Case): CaseFlag[] {
  const flags: CaseFlag[] = [];
  const facts = new Map<string, number>();
  c.script.facts.forEach((fact, i) => {
    if (facts.has(fact.id)) {
      flags.push({
        severity: "error",
        path: `script.facts.${i}.id`,
        message: `Fact id "${fact.id}" is used twice`,
      });
    }
    facts.set(fact.id, i);
  });
  const covered = new Set<string>();
  c.checklist.forEach((item, i) => {
    if (item.factId) {
      if (!facts.has(item.factId)) {
        flags.push({
          severity: "error",
          path: `checklist.${i}.factId`,
          message:
            `Checklist item "${item.item}" refers to fact "${item.factId}", which is not in the script`,
        });
      } else covered.add(item.factId);
    } else if (item.category === "history") {
      flags.push({
        severity: "warning",
        path: `checklist.${i}.factId`,
        message:
          `History item "${item.item}" is not linked to a script fact, so it cannot be scored automatically`,
      });
    }
  });
  c.script.facts.forEach((fact, i) => {
    if (!covered.has(fact.id)) {
      flags.push({
        severity: "warning",
        path: `script.facts.${i}`,
        message: `Script fact "${fact.topic}" has no checklist item: the examiner cannot credit it`,
      });
    }
  });
  const diagnosisWords = new Set(keyWords(c.finalDiagnosis));
  const taskWords = keyWords(c.candidateTask);
  if (diagnosisWords.size > 0 && [...diagnosisWords].every((w) => taskWords.includes(w))) {
    flags.push({
      severity: "error",
      path: "candidateTask",
      message: "The candidate's task names the diagnosis: the station would give it away",
    });
  }
  c.script.facts.forEach((fact, i) => {
    const words = keyWords(fact.detail);
    if (diagnosisWords.size > 0 && [...diagnosisWords].every((w) => words.includes(w))) {
      flags.push({
        severity: "error",
        path: `script.facts.${i}.detail`,
        message: `Script fact "${fact.topic}" names the diagnosis: the simulated patient would give it away`,
      });
    }
  });
  return flags;
}

/** "45 years", "3 months", "10 days". */
export function formatAge(years: number): string {
  if (years >= 2) return `${Math.floor(years)} years`;
  const months = Math.round(years * 12);
  if (months >= 1) return `${months} month${months === 1 ? "" : "s"}`;
  const days = Math.max(0, Math.round(years * 365));
  return `${days} day${days === 1 ? "" : "s"}`;
}
