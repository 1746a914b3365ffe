/**
 * What changed between two versions of a case, field by field, in words an educator reads: "Vital signs ·
 * heart rate · value: 102 → 400". Lists of short strings compare as lists; lists of records (investigations,
 * checklist items) compare row by row.
 */
import { EDIT_SECTIONS, inSection } from "./edit.ts";

/** One changed field. */
export interface CaseChange {
  /** The section it belongs to ("Vital signs"), or "Other". */
  section: string;
  /** The field within it, in words ("heart rate · value", "row 3 · result"). */
  field: string;
  before: string | null;
  after: string | null;
}

/** Leaves of a value by dotted path; a list of strings is one leaf (its items on separate lines). */
function flatten(value: unknown, path: string, out: Map<string, string>): Map<string, string> {
  if (value === null || value === undefined || value === "") return out;
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== "object" || v === null)) {
      if (value.length) out.set(path, value.join("\n"));
      return out;
    }
    value.forEach((v, i) => flatten(v, path ? `${path}.${i}` : String(i), out));
    return out;
  }
  if (typeof value === "object") {
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      flatten(v, path ? `${path}.${key}` : key, out);
    }
    return out;
  }
  out.set(path, String(value));
  return out;
}

/** "heartRate" → "heart rate"; "2" → "row 3". */
function words(part: string): string {
  if (/^\d+$/.test(part)) return `row ${Number(part) + 1}`;
  return part.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

/** The changes from `before` to `after`, in page order of the sections. */
export function diffCases(before: unknown, after: unknown): CaseChange[] {
  const a = flatten(before, "", new Map());
  const b = flatten(after, "", new Map());
  const paths = [...new Set([...a.keys(), ...b.keys()])];
  const order = (path: string) => {
    const index = EDIT_SECTIONS.findIndex((s) => inSection(s, path));
    return index === -1 ? EDIT_SECTIONS.length : index;
  };
  return paths
    .filter((p) => a.get(p) !== b.get(p))
    .map((path) => {
      const section = EDIT_SECTIONS.find((s) => inSection(s, path));
      const field = section?.fields.find((f) => path === f.path || path.startsWith(`${f.path}.`));
      const rest = field ? path.slice(field.path.length).split(".").filter(Boolean) : path.split(".");
      return {
        order: order(path),
        path,
        change: {
          section: section?.title ?? "Other",
          field: [field?.label ?? "", ...rest.map(words)].filter(Boolean).join(" · "),
          before: a.get(path) ?? null,
          after: b.get(path) ?? null,
        },
      };
    })
    .sort((x, y) => x.order - y.order || x.path.localeCompare(y.path, "en", { numeric: true }))
    .map((x) => x.change);
}
