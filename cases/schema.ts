/**
 * The teaching case: one zod schema that types the code, validates every case that comes in (generated,
 * edited, imported) with per-field messages, and yields the JSON Schema sent to the endpoint's structured output.
 */
import { z } from "zod";

/** The label every case carries wherever it appears. */
export const HYPOTHETICAL_NOTICE =
  "Hypothetical case written for medical education. Not a real patient; not clinical guidance.";

/** How hard a case is. */
export const DIFFICULTIES = ["introductory", "intermediate", "advanced"] as const;
/** Who a case is written for. */
export const LEARNER_LEVELS = ["medical student", "junior doctor", "resident", "nurse", "paramedic"] as const;
/** Groups of examiner checklist items. */
export const CHECKLIST_CATEGORIES = [
  "history",
  "examination",
  "investigations",
  "diagnosis",
  "management",
  "communication",
] as const;
/** The differential's likelihood labels. */
export const LIKELIHOODS = ["most likely", "possible", "less likely", "must not miss"] as const;

export type Difficulty = (typeof DIFFICULTIES)[number];
export type LearnerLevel = (typeof LEARNER_LEVELS)[number];

const text = (max: number, what: string) =>
  z.string({ error: `${what} must be text` }).trim().min(1, `${what} is required`).max(
    max,
    `${what} is longer than ${max} characters`,
  );
/** Text that may be empty or left out (it reads back as ""). */
const optionalText = (max: number, what: string) =>
  z.string({ error: `${what} must be text` }).trim().max(max, `${what} is longer than ${max} characters`)
    .default("");
const list = <T extends z.ZodType>(item: T, what: string, min: number, max: number) =>
  z.array(item, { error: `${what} must be a list` }).min(
    min,
    min === 1 ? `${what}: add at least one` : `${what}: add at least ${min}`,
  ).max(max, `${what}: at most ${max}`);
const measure = (what: string, units: readonly [string, ...string[]]) =>
  z.object({
    value: z.number({ error: `${what} must be a number` }),
    unit: z.enum(units, { error: `${what} unit must be one of ${units.join(", ")}` }),
  }, { error: `${what} must have a value and a unit` });

/** Vital signs, each with its unit; all optional (a telephone consultation has none). */
export const VitalSignsSchema = z.object({
  heartRate: measure("Heart rate", ["beats/min"]).optional(),
  respiratoryRate: measure("Respiratory rate", ["breaths/min"]).optional(),
  bloodPressure: z.object({
    systolic: z.number({ error: "Systolic pressure must be a number" }),
    diastolic: z.number({ error: "Diastolic pressure must be a number" }),
    unit: z.enum(["mmHg"], { error: "Blood pressure unit must be mmHg" }),
  }).optional(),
  temperature: measure("Temperature", ["°C", "°F"]).optional(),
  oxygenSaturation: measure("Oxygen saturation", ["%"]).extend({
    /** "room air", "2 L/min nasal cannula". */
    on: optionalText(60, "Oxygen delivery"),
  }).optional(),
  capillaryGlucose: measure("Capillary glucose", ["mmol/L", "mg/dL"]).optional(),
  gcs: measure("Glasgow Coma Scale", ["/15"]).optional(),
  painScore: measure("Pain score", ["/10"]).optional(),
  weight: measure("Weight", ["kg"]).optional(),
});

/** What the simulated patient knows and tells only when the learner asks about it. */
export const ScriptFactSchema = z.object({
  /** Short stable id the checklist refers to ("onset", "smoking"). */
  id: z.string().trim().regex(
    /^[a-z0-9][a-z0-9-]{0,39}$/,
    "Fact id must be lowercase letters, digits and hyphens",
  ),
  topic: text(80, "Fact topic"),
  /** What the patient says, in their own words. */
  detail: text(600, "Fact detail"),
  /** Words in a learner's question that make the patient reveal this ("smoke", "cigarette"). */
  triggers: list(text(40, "Trigger"), "Fact triggers", 1, 12),
});

/** A teaching case. */
export const CaseSchema = z.object({
  /** Always true: every case here is invented for teaching, and says so everywhere it appears. */
  hypothetical: z.literal(true, { error: "A case must be marked hypothetical (true)" }),
  title: text(200, "Title"),
  specialty: text(80, "Specialty"),
  setting: text(120, "Setting"),
  difficulty: z.enum(DIFFICULTIES, { error: `Difficulty must be one of ${DIFFICULTIES.join(", ")}` }),
  learnerLevel: z.enum(LEARNER_LEVELS, {
    error: `Learner level must be one of ${LEARNER_LEVELS.join(", ")}`,
  }),
  tags: list(text(40, "Tag").transform((t) => t.toLowerCase()), "Tags", 0, 12),
  learningObjectives: list(text(300, "Learning objective"), "Learning objectives", 1, 10),
  patient: z.object({
    /** An invented name for the actor brief. */
    name: text(80, "Patient name"),
    /** In years; fractions for infants (0.25 = 3 months). */
    age: z.number({ error: "Age must be a number of years" }).min(0, "Age cannot be negative").max(
      120,
      "Age must be at most 120 years",
    ),
    sex: z.enum(["female", "male", "intersex"], { error: "Sex must be female, male or intersex" }),
    occupation: optionalText(120, "Occupation"),
  }),
  chiefComplaint: text(300, "Chief complaint"),
  /** What the candidate is asked to do in the station, without giving the diagnosis away. */
  candidateTask: optionalText(600, "Candidate task"),
  historyOfPresentIllness: text(4000, "History of present illness"),
  pastMedicalHistory: list(text(300, "Past medical history item"), "Past medical history", 0, 30),
  medications: list(
    z.object({
      name: text(120, "Medication name"),
      dose: optionalText(80, "Dose"),
      frequency: optionalText(80, "Frequency"),
    }),
    "Medications",
    0,
    30,
  ),
  allergies: list(
    z.object({ substance: text(120, "Allergen"), reaction: optionalText(200, "Reaction") }),
    "Allergies",
    0,
    20,
  ),
  socialHistory: optionalText(2000, "Social history"),
  familyHistory: optionalText(2000, "Family history"),
  reviewOfSystems: list(
    z.object({ system: text(60, "System"), findings: text(600, "Review of systems findings") }),
    "Review of systems",
    0,
    20,
  ),
  vitalSigns: VitalSignsSchema,
  examination: list(
    z.object({ system: text(60, "Examination system"), findings: text(1000, "Examination findings") }),
    "Examination",
    1,
    20,
  ),
  investigations: list(
    z.object({
      name: text(120, "Investigation name"),
      /** A number, or a described result ("sinus tachycardia", "positive"). */
      value: z.union([z.number(), text(600, "Investigation result")], {
        error: "Investigation result must be a number or text",
      }),
      /** Required for numeric results, except dimensionless ones (pH, INR, ratios). */
      unit: optionalText(40, "Unit"),
      referenceRange: optionalText(80, "Reference range"),
    }),
    "Investigations",
    0,
    40,
  ),
  differential: list(
    z.object({
      diagnosis: text(200, "Differential diagnosis"),
      likelihood: z.enum(LIKELIHOODS, { error: `Likelihood must be one of ${LIKELIHOODS.join(", ")}` }),
      reasoning: text(1000, "Reasoning"),
    }),
    "Differential diagnosis",
    2,
    10,
  ),
  finalDiagnosis: text(200, "Final diagnosis"),
  managementPlan: list(text(500, "Management step"), "Management plan", 1, 20),
  teachingPoints: list(text(500, "Teaching point"), "Teaching points", 1, 15),
  learnerQuestions: list(
    z.object({ question: text(500, "Question"), modelAnswer: text(2000, "Model answer") }),
    "Questions for learners",
    1,
    15,
  ),
  script: z.object({
    openingLine: text(500, "Opening line"),
    emotionalCues: list(text(300, "Emotional cue"), "Emotional cues", 0, 10),
    /** Questions the patient asks the learner ("Is it my heart?"). */
    patientQuestions: list(text(300, "Patient question"), "Patient questions", 0, 10),
    facts: list(ScriptFactSchema, "Script facts", 1, 40),
  }),
  checklist: list(
    z.object({
      item: text(300, "Checklist item"),
      category: z.enum(CHECKLIST_CATEGORIES, {
        error: `Checklist category must be one of ${CHECKLIST_CATEGORIES.join(", ")}`,
      }),
      /** The script fact a history item is about: the learner earns it by drawing that fact out. */
      factId: z.string().trim().max(40).optional(),
    }),
    "Examiner checklist",
    1,
    40,
  ),
});

/** A valid teaching case. */
export type Case = z.infer<typeof CaseSchema>;
/** A script fact. */
export type ScriptFact = z.infer<typeof ScriptFactSchema>;
/** A checklist item. */
export type ChecklistItem = Case["checklist"][number];
/** Vital signs. */
export type VitalSigns = Case["vitalSigns"];

/** One problem found in submitted case data, at a field path like `patient.age` or `investigations.2.unit`. */
export interface FieldError {
  path: string;
  message: string;
}

/** The outcome of validating untrusted case data. */
export type CaseParse = { ok: true; value: Case } | { ok: false; errors: FieldError[] };

/** Validates untrusted case data (generated, edited or imported) and reports every problem by field. */
export function parseCase(input: unknown): CaseParse {
  const result = CaseSchema.safeParse(input, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    errors: result.error.issues.map((issue) => ({
      path: issue.path.map(String).join(".") || "(case)",
      message: readableIssue(issue),
    })),
  };
}

function readableIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    return `Unknown field${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.join(", ")}`;
  }
  if (issue.code === "invalid_type" && issue.input === undefined) return "Required";
  return issue.message;
}

/**
 * The JSON Schema of a case, for TGI's grammar and OpenAI-style `response_format`. Cached: it never changes
 * while the process runs.
 */
export function caseJsonSchema(): Record<string, unknown> {
  cachedJsonSchema ??= z.toJSONSchema(CaseSchema, { target: "draft-7", io: "input" }) as Record<
    string,
    unknown
  >;
  return cachedJsonSchema;
}
let cachedJsonSchema: Record<string, unknown> | null = null;
