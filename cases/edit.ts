/**
 * Editing a case in place, one section at a time: what each section's form holds, and reading a submitted form
 * back into case fields. The whole case is validated again before anything is saved.
 */
import { type Case, CHECKLIST_CATEGORIES, DIFFICULTIES, LEARNER_LEVELS, LIKELIHOODS } from "./schema.ts";

/** A column of a table field (a list of objects). */
export interface Column {
  key: string;
  label: string;
  kind: "text" | "textarea" | "number" | "enum" | "csv" | "value";
  options?: readonly string[];
}

/** One input (or table) in a section's form. `path` is the case field it edits, dotted. */
export type Field =
  | { kind: "text" | "textarea" | "number"; path: string; label: string }
  | { kind: "enum"; path: string; label: string; options: readonly string[] }
  /** A list of strings, one per line. */
  | { kind: "lines"; path: string; label: string }
  /** A list of short strings, comma-separated. */
  | { kind: "csv"; path: string; label: string }
  /** A list of objects, one row each; blank rows are dropped, two are offered for adding. */
  | { kind: "table"; path: string; label: string; columns: Column[] }
  /** The vital signs, each a value and a unit. */
  | { kind: "vitals"; path: "vitalSigns"; label: string };

/** An editable section of the case page. */
export interface EditSection {
  name: string;
  title: string;
  fields: Field[];
}

/** The units each vital sign may use, in display order. */
export const VITAL_UNITS: [key: string, label: string, units: readonly string[]][] = [
  ["heartRate", "Heart rate", ["beats/min"]],
  ["respiratoryRate", "Respiratory rate", ["breaths/min"]],
  ["temperature", "Temperature", ["°C", "°F"]],
  ["oxygenSaturation", "Oxygen saturation", ["%"]],
  ["capillaryGlucose", "Capillary glucose", ["mmol/L", "mg/dL"]],
  ["gcs", "Glasgow Coma Scale", ["/15"]],
  ["painScore", "Pain score", ["/10"]],
  ["weight", "Weight", ["kg"]],
];

/** The sections, in page order. */
export const EDIT_SECTIONS: EditSection[] = [
  {
    name: "overview",
    title: "Overview",
    fields: [
      { kind: "text", path: "title", label: "Title" },
      { kind: "text", path: "specialty", label: "Specialty" },
      { kind: "text", path: "setting", label: "Setting" },
      { kind: "enum", path: "difficulty", label: "Difficulty", options: DIFFICULTIES },
      { kind: "enum", path: "learnerLevel", label: "Learner level", options: LEARNER_LEVELS },
      { kind: "csv", path: "tags", label: "Tags (comma-separated)" },
      { kind: "lines", path: "learningObjectives", label: "Learning objectives (one per line)" },
    ],
  },
  {
    name: "patient",
    title: "Patient",
    fields: [
      { kind: "text", path: "patient.name", label: "Name (invented)" },
      { kind: "number", path: "patient.age", label: "Age in years (0.25 = 3 months)" },
      { kind: "enum", path: "patient.sex", label: "Sex", options: ["female", "male", "intersex"] },
      { kind: "text", path: "patient.occupation", label: "Occupation" },
      { kind: "textarea", path: "chiefComplaint", label: "Chief complaint" },
      { kind: "textarea", path: "candidateTask", label: "Candidate's task (never name the diagnosis)" },
    ],
  },
  {
    name: "history",
    title: "History",
    fields: [
      { kind: "textarea", path: "historyOfPresentIllness", label: "History of present illness" },
      { kind: "lines", path: "pastMedicalHistory", label: "Past medical history (one per line)" },
      { kind: "textarea", path: "socialHistory", label: "Social history" },
      { kind: "textarea", path: "familyHistory", label: "Family history" },
    ],
  },
  {
    name: "medications",
    title: "Medications and allergies",
    fields: [
      {
        kind: "table",
        path: "medications",
        label: "Medications",
        columns: [
          { key: "name", label: "Name", kind: "text" },
          { key: "dose", label: "Dose", kind: "text" },
          { key: "frequency", label: "Frequency", kind: "text" },
        ],
      },
      {
        kind: "table",
        path: "allergies",
        label: "Allergies",
        columns: [
          { key: "substance", label: "Substance", kind: "text" },
          { key: "reaction", label: "Reaction", kind: "text" },
        ],
      },
    ],
  },
  {
    name: "reviewOfSystems",
    title: "Review of systems",
    fields: [{
      kind: "table",
      path: "reviewOfSystems",
      label: "Review of systems",
      columns: [
        { key: "system", label: "System", kind: "text" },
        { key: "findings", label: "Findings", kind: "textarea" },
      ],
    }],
  },
  {
    name: "vitalSigns",
    title: "Vital signs",
    fields: [{ kind: "vitals", path: "vitalSigns", label: "Vital signs" }],
  },
  {
    name: "examination",
    title: "Examination",
    fields: [{
      kind: "table",
      path: "examination",
      label: "Examination",
      columns: [
        { key: "system", label: "System", kind: "text" },
        { key: "findings", label: "Findings", kind: "textarea" },
      ],
    }],
  },
  {
    name: "investigations",
    title: "Investigations",
    fields: [{
      kind: "table",
      path: "investigations",
      label: "Investigations",
      columns: [
        { key: "name", label: "Investigation", kind: "text" },
        { key: "value", label: "Result", kind: "value" },
        { key: "unit", label: "Unit", kind: "text" },
        { key: "referenceRange", label: "Reference range", kind: "text" },
      ],
    }],
  },
  {
    name: "diagnosis",
    title: "Differential and final diagnosis",
    fields: [
      {
        kind: "table",
        path: "differential",
        label: "Differential diagnosis",
        columns: [
          { key: "diagnosis", label: "Diagnosis", kind: "text" },
          { key: "likelihood", label: "Likelihood", kind: "enum", options: LIKELIHOODS },
          { key: "reasoning", label: "Reasoning", kind: "textarea" },
        ],
      },
      { kind: "text", path: "finalDiagnosis", label: "Final diagnosis" },
    ],
  },
  {
    name: "management",
    title: "Management and teaching points",
    fields: [
      { kind: "lines", path: "managementPlan", label: "Management plan (one step per line)" },
      { kind: "lines", path: "teachingPoints", label: "Teaching points (one per line)" },
    ],
  },
  {
    name: "learnerQuestions",
    title: "Questions for learners",
    fields: [{
      kind: "table",
      path: "learnerQuestions",
      label: "Questions for learners",
      columns: [
        { key: "question", label: "Question", kind: "textarea" },
        { key: "modelAnswer", label: "Model answer", kind: "textarea" },
      ],
    }],
  },
  {
    name: "script",
    title: "Standardized-patient script",
    fields: [
      { kind: "textarea", path: "script.openingLine", label: "Opening line" },
      { kind: "lines", path: "script.emotionalCues", label: "Emotional cues (one per line)" },
      { kind: "lines", path: "script.patientQuestions", label: "Questions the patient asks (one per line)" },
      {
        kind: "table",
        path: "script.facts",
        label: "Facts to reveal only when asked",
        columns: [
          { key: "id", label: "Id", kind: "text" },
          { key: "topic", label: "Topic", kind: "text" },
          { key: "triggers", label: "Trigger words (comma-separated)", kind: "csv" },
          { key: "detail", label: "The patient says", kind: "textarea" },
        ],
      },
    ],
  },
  {
    name: "checklist",
    title: "Examiner checklist",
    fields: [{
      kind: "table",
      path: "checklist",
      label: "Examiner checklist",
      columns: [
        { key: "item", label: "Item", kind: "textarea" },
        { key: "category", label: "Area", kind: "enum", options: CHECKLIST_CATEGORIES },
        { key: "factId", label: "Script fact id (history items)", kind: "text" },
      ],
    }],
  },
];

/** The section with this name, or undefined. */
export function editSection(name: string): EditSection | undefined {
  return EDIT_SECTIONS.find((s) => s.name === name);
}

/** Reads a dotted path from a value. */
export function getPath(value: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>(
    (v, key) => (v && typeof v === "object" ? (v as Record<string, unknown>)[key] : undefined),
    value,
  );
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node[key] = next && typeof next === "object" && !Array.isArray(next) ? { ...next as object } : {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

const lines = (text: string) => text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
const csv = (text: string) => text.split(",").map((t) => t.trim()).filter(Boolean);
/**
 * A number where the text is one, as people type them: digits of any script (٣٧٫٥, ３７), a decimal comma
 * (37,5), a minus sign (−2), spaces (including non-breaking ones) around it. Anything else stays text ("" too),
 * so the schema reports it by the field's name.
 */
export const numberOr = (text: string): number | string => {
  const trimmed = text.trim();
  const ascii = trimmed.normalize("NFKC")
    .replace(/\p{Nd}/gu, (digit) => String(digitValue(digit)))
    .replace(/[\u2212\u2012\u2013]/g, "-")
    .replace(/\u066b/g, ".")
    .replace(/^(-?\d+),(\d+)$/, "$1.$2");
  return /^-?\d+(\.\d+)?$/.test(ascii) ? Number(ascii) : trimmed;
};

/** The value of one decimal digit of any script (its code point minus its block's zero). */
function digitValue(digit: string): number {
  const code = digit.codePointAt(0)!;
  for (let zero = code; zero >= code - 9; zero--) {
    if (!/\p{Nd}/u.test(String.fromCodePoint(zero - 1))) return code - zero;
  }
  return code - (code - 9);
}

/**
 * The case with one section replaced by what the form holds. The result is untrusted input: validate it.
 * Form names are the field paths (`patient.age`), `path.row.key` for table cells, `vitalSigns.key.value|unit`.
 */
export function applySectionForm(current: Case, section: EditSection, form: Record<string, string>): unknown {
  const next = structuredClone(current) as unknown as Record<string, unknown>;
  const get = (name: string) => (form[name] ?? "").replace(/\r\n/g, "\n");
  for (const field of section.fields) {
    switch (field.kind) {
      case "text":
      case "textarea":
      case "enum":
        setPath(next, field.path, get(field.path).trim());
        break;
      case "number":
        setPath(next, field.path, numberOr(get(field.path)));
        break;
      case "lines":
        setPath(next, field.path, lines(get(field.path)));
        break;
      case "csv":
        setPath(next, field.path, csv(get(field.path)));
        break;
      case "table": {
        const rows: Record<string, unknown>[] = [];
        const count = Number(get(`${field.path}.rows`)) || 0;
        for (let i = 0; i < Math.min(count, 60); i++) {
          const cells = field.columns.map((column) =>
            [column, get(`${field.path}.${i}.${column.key}`).trim()] as const
          );
          if (cells.every(([, text]) => text === "")) continue; // a blank row: left empty, or cleared to delete
          const row: Record<string, unknown> = {};
          for (const [column, text] of cells) {
            if (column.kind === "csv") row[column.key] = csv(text);
            else if (column.kind === "value" || column.kind === "number") row[column.key] = numberOr(text);
            else if (column.key === "factId" && text === "") continue;
            else row[column.key] = text;
          }
          rows.push(row);
        }
        setPath(next, field.path, rows);
        break;
      }
      case "vitals": {
        const vitals: Record<string, unknown> = {};
        for (const [key, , units] of VITAL_UNITS) {
          const value = get(`vitalSigns.${key}.value`).trim();
          if (value === "") continue;
          const unit = get(`vitalSigns.${key}.unit`) || units[0];
          const measure: Record<string, unknown> = { value: numberOr(value), unit };
          if (key === "oxygenSaturation") measure.on = get("vitalSigns.oxygenSaturation.on").trim();
          vitals[key] = measure;
        }
        const systolic = get("vitalSigns.bloodPressure.systolic").trim();
        const diastolic = get("vitalSigns.bloodPressure.diastolic").trim();
        if (systolic !== "" || diastolic !== "") {
          vitals.bloodPressure = {
            systolic: numberOr(systolic),
            diastolic: numberOr(diastolic),
            unit: "mmHg",
          };
        }
        next.vitalSigns = vitals;
        break;
      }
    }
  }
  return next;
}

/** True when a validation problem at `path` belongs to this section. */
export function inSection(section: EditSection, path: string): boolean {
  return section.fields.some((f) => path === f.path || path.startsWith(`${f.path}.`));
}
