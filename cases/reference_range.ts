/**
 * Reading a result against its reference range, as a lab report flags it: H above, L below. Ranges are written
 * by people: "130–170", "4.0-11.0", "<5", "≤ 5", ">60", "2.20 to 2.60", with Unicode dashes, decimal commas
 * and spaces. A range that cannot be read, or a result that is not a number, gets no flag (never a guess).
 */

/** A reference range's bounds; either may be absent ("<5" has no low bound). */
export interface ReferenceRange {
  low: number | null;
  high: number | null;
  /** "<5" and ">60" leave out the bound itself; "≤5", "130–170" include it. */
  exclusive?: boolean;
}

const NUMBER = String.raw`[-−]?\d+(?:[.,]\d+)?`;
const toNumber = (text: string) => Number(text.replace("−", "-").replace(",", "."));

/** The bounds of a written range, or null when it is not one. */
export function parseReferenceRange(text: string): ReferenceRange | null {
  const t = text.normalize("NFKC").trim();
  if (!t) return null;
  const between = new RegExp(`^(${NUMBER})\\s*(?:[-–—‒]|to)\\s*(${NUMBER})$`, "i").exec(t);
  if (between) {
    const [low, high] = [toNumber(between[1]), toNumber(between[2])];
    return low <= high ? { low, high } : null;
  }
  const below = new RegExp(`^(<=|≤|up to|<)\\s*(${NUMBER})$`, "i").exec(t);
  if (below) return { low: null, high: toNumber(below[2]), exclusive: below[1] === "<" };
  const above = new RegExp(`^(>=|≥|over|>)\\s*(${NUMBER})$`, "i").exec(t);
  if (above) {
    return { low: toNumber(above[2]), high: null, exclusive: above[1] === ">" || /over/i.test(above[1]) };
  }
  return null;
}

/** "H" when a numeric result is above its range, "L" when below, null otherwise (or when either is unreadable). */
export function resultFlag(value: number | string, referenceRange: string): "H" | "L" | null {
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  const range = parseReferenceRange(referenceRange);
  if (!range) return null;
  if (range.high !== null && (value > range.high || (range.exclusive && value === range.high))) return "H";
  if (range.low !== null && (value < range.low || (range.exclusive && value === range.low))) return "L";
  return null;
}
