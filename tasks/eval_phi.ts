/**
 * PHI redaction quality on the labelled examples in data/eval: precision, recall and F1 overall and per type, the
 * spans missed and the false positives, and the time per message. A gold span counts as found when a predicted
 * span of the same type overlaps it; exact-offset and type-agnostic figures are reported beside it.
 *
 * Run alone with `deno run --allow-read tasks/eval_phi.ts [FILE…]`; `deno task eval phi` uses the same functions.
 */
import { PHI_TYPES, type PhiType, redactPhi } from "../safety/phi.ts";

/** The labelled files evaluated when no paths are given. */
export const PHI_EVAL_FILES = [
  new URL("../data/eval/phi.jsonl", import.meta.url).pathname,
  new URL("../data/eval/phi_holdout.jsonl", import.meta.url).pathname,
  // Written by another author after the rules, run once before any change: the honest check.
  new URL("../data/eval/phi_unseen.jsonl", import.meta.url).pathname,
  // Identifiers as other keyboards and copy-paste write them (tasks/phi_variants.ts): full-width, other-script
  // digits, zero-width characters, non-breaking spaces, dash variants, lower case, spelled-out e-mails.
  new URL("../data/eval/phi_variants.jsonl", import.meta.url).pathname,
  // A name introduced with a cue, found again in lower or upper case; surnames that are everyday words ("Mr
  // Brown", "brown sputum") left alone in lower case. Written with the rule, 2026-12-07.
  new URL("../data/eval/phi_recurrence.jsonl", import.meta.url).pathname,
];

/** How many misses and false positives a file report keeps. */
const MAX_ERRORS = 40;

/** Counts and scores for one way of matching. */
export interface PhiScores {
  /** Gold spans. */
  spans: number;
  /** Predicted spans. */
  predicted: number;
  /** Gold spans found (recall's numerator). */
  truePositives: number;
  /** Predicted spans that match a gold span (precision's numerator). */
  correctPredictions: number;
  precision: number;
  recall: number;
  f1: number;
}

/** A missed gold span or a false positive, with the line it came from. */
export interface PhiError {
  line: number;
  type: PhiType;
  text: string;
  /** The type it was predicted as (for a miss) or labelled as (for a false positive), when a span overlaps. */
  otherType?: PhiType;
  context: string;
}

/** The figures for one labelled file. */
export interface PhiFileReport {
  path: string;
  examples: number;
  examplesWithoutPhi: number;
  /** Same type and overlapping: the headline figure. */
  overall: PhiScores;
  /** Same type and the same offsets. */
  exact: PhiScores;
  /** Overlapping, whatever the type: what matters for privacy. */
  anyType: PhiScores;
  perType: Record<PhiType, PhiScores>;
  misses: PhiError[];
  missesTotal: number;
  falsePositives: PhiError[];
  falsePositivesTotal: number;
  msPerMessage: number;
  meanChars: number;
}

/** The figures for every file evaluated. */
export interface PhiEvalReport {
  files: PhiFileReport[];
}

interface Span {
  type: PhiType;
  start: number;
  end: number;
}

interface Example {
  line: number;
  text: string;
  gold: Span[];
}

/** Evaluates PHI redaction on labelled JSONL files (default: the main and held-out sets in data/eval). */
export async function evaluatePhi(paths: string[] = PHI_EVAL_FILES): Promise<PhiEvalReport> {
  const files: PhiFileReport[] = [];
  for (const path of paths) {
    files.push(evaluateFile(path, parseExamples(path, await Deno.readTextFile(path))));
  }
  return { files };
}

function parseExamples(path: string, content: string): Example[] {
  const examples: Example[] = [];
  content.split("\n").forEach((raw, i) => {
    if (!raw.trim()) return;
    const line = i + 1;
    const fail = (why: string) => new Error(`Cannot parse PHI example at ${path} line ${line}: ${why}`);
    let record: { text?: unknown; spans?: unknown };
    try {
      record = JSON.parse(raw);
    } catch (error) {
      throw fail(`invalid JSON (${(error as Error).message})`);
    }
    if (typeof record.text !== "string" || !Array.isArray(record.spans)) {
      throw fail(`needs "text" and "spans"`);
    }
    const text = record.text;
    const gold: Span[] = [];
    let from = 0;
    for (const span of record.spans as { type?: unknown; text?: unknown }[]) {
      if (!PHI_TYPES.includes(span.type as PhiType)) {
        throw fail(`unknown span type ${JSON.stringify(span.type)}`);
      }
      if (typeof span.text !== "string" || !span.text) throw fail(`span without text`);
      const start = locate(text, span.text, from);
      if (start < 0) throw fail(`span "${span.text}" does not occur in the text after the previous span`);
      gold.push({ type: span.type as PhiType, start, end: start + span.text.length });
      from = start + span.text.length;
    }
    examples.push({ line, text, gold });
  });
  return examples;
}

/** The first occurrence at or after `from` that is not inside a longer word, else the first occurrence. */
function locate(text: string, needle: string, from: number): number {
  let first = -1;
  for (let at = text.indexOf(needle, from); at >= 0; at = text.indexOf(needle, at + 1)) {
    if (first < 0) first = at;
    const before = text[at - 1] ?? " ", after = text[at + needle.length] ?? " ";
    if (!/[\p{L}\p{N}]/u.test(before) && !/[\p{L}\p{N}]/u.test(after)) return at;
  }
  return first;
}

type Match = (gold: Span, predicted: Span) => boolean;
const overlaps = (a: Span, b: Span) => a.start < b.end && b.start < a.end;
const sameTypeOverlap: Match = (g, p) => g.type === p.type && overlaps(g, p);
const exactMatch: Match = (g, p) => g.type === p.type && g.start === p.start && g.end === p.end;
const anyTypeOverlap: Match = (g, p) => overlaps(g, p);

function emptyScores(): PhiScores {
  return { spans: 0, predicted: 0, truePositives: 0, correctPredictions: 0, precision: 0, recall: 0, f1: 0 };
}

function finish(s: PhiScores): PhiScores {
  s.precision = s.predicted ? s.correctPredictions / s.predicted : 1;
  s.recall = s.spans ? s.truePositives / s.spans : 1;
  s.f1 = s.precision + s.recall ? (2 * s.precision * s.recall) / (s.precision + s.recall) : 0;
  return s;
}

function evaluateFile(path: string, examples: Example[]): PhiFileReport {
  // Warm the regexes up, then time the pass that is scored.
  for (const e of examples.slice(0, 20)) redactPhi(e.text);
  const started = performance.now();
  const predictions = examples.map((e) =>
    redactPhi(e.text).redactions.map(({ type, start, end }): Span => ({ type, start, end }))
  );
  const elapsed = performance.now() - started;

  const overall = emptyScores(), exact = emptyScores(), anyType = emptyScores();
  const perType = Object.fromEntries(PHI_TYPES.map((t) => [t, emptyScores()])) as Record<PhiType, PhiScores>;
  const misses: PhiError[] = [], falsePositives: PhiError[] = [];
  examples.forEach((example, i) => {
    const predicted = predictions[i];
    const { gold } = example;
    for (
      const [scores, match] of [[overall, sameTypeOverlap], [exact, exactMatch], [
        anyType,
        anyTypeOverlap,
      ]] as const
    ) {
      scores.spans += gold.length;
      scores.predicted += predicted.length;
      scores.truePositives += gold.filter((g) => predicted.some((p) => match(g, p))).length;
      scores.correctPredictions += predicted.filter((p) => gold.some((g) => match(g, p))).length;
    }
    for (const g of gold) {
      const t = perType[g.type];
      t.spans++;
      if (predicted.some((p) => sameTypeOverlap(g, p))) t.truePositives++;
      else misses.push(describe(example, g, predicted.find((p) => overlaps(g, p))?.type));
    }
    for (const p of predicted) {
      const t = perType[p.type];
      t.predicted++;
      if (gold.some((g) => sameTypeOverlap(g, p))) t.correctPredictions++;
      else falsePositives.push(describe(example, p, gold.find((g) => overlaps(g, p))?.type));
    }
  });
  const chars = examples.reduce((n, e) => n + e.text.length, 0);
  return {
    path,
    examples: examples.length,
    examplesWithoutPhi: examples.filter((e) => !e.gold.length).length,
    overall: finish(overall),
    exact: finish(exact),
    anyType: finish(anyType),
    perType: Object.fromEntries(PHI_TYPES.map((t) => [t, finish(perType[t])])) as Record<PhiType, PhiScores>,
    misses: misses.slice(0, MAX_ERRORS),
    missesTotal: misses.length,
    falsePositives: falsePositives.slice(0, MAX_ERRORS),
    falsePositivesTotal: falsePositives.length,
    msPerMessage: examples.length ? elapsed / examples.length : 0,
    meanChars: examples.length ? chars / examples.length : 0,
  };
}

function describe(example: Example, span: Span, otherType?: PhiType): PhiError {
  const { text, line } = example;
  const context =
    (text.slice(Math.max(0, span.start - 30), span.start) + "⟦" + text.slice(span.start, span.end) +
      "⟧" + text.slice(span.end, span.end + 30)).replace(/\s+/g, " ");
  return { line, type: span.type, text: text.slice(span.start, span.end), otherType, context };
}

/** A readable table per file, then its misses and false positives. */
export function formatPhiReport(report: PhiEvalReport): string {
  const pct = (x: number) => (x * 100).toFixed(1).padStart(6);
  const row = (label: string, s: PhiScores) =>
    `${label.padEnd(16)}${String(s.spans).padStart(6)}${String(s.predicted).padStart(6)}` +
    `${String(s.truePositives).padStart(6)}${pct(s.precision)}${pct(s.recall)}${pct(s.f1)}`;
  const out: string[] = [];
  for (const file of report.files) {
    out.push(
      `PHI redaction: ${file.path}`,
      `${file.examples} examples (${file.examplesWithoutPhi} without PHI), ` +
        `${file.msPerMessage.toFixed(3)} ms per message (mean ${Math.round(file.meanChars)} characters)`,
      "",
      `${"".padEnd(16)}${"gold".padStart(6)}${"pred".padStart(6)}${"found".padStart(6)}` +
        `${"P%".padStart(6)}${"R%".padStart(6)}${"F1%".padStart(6)}`,
      row("overall", file.overall),
      row("exact offsets", file.exact),
      row("any type", file.anyType),
    );
    for (const type of PHI_TYPES) {
      const s = file.perType[type];
      if (s.spans || s.predicted) out.push(row(`  ${type}`, s));
    }
    const list = (title: string, errors: PhiError[], total: number, as: string) => {
      out.push("", `${title} (${total}${total > errors.length ? `, first ${errors.length}` : ""}):`);
      for (const e of errors) {
        out.push(`  line ${e.line} ${e.type}${e.otherType ? ` (${as} ${e.otherType})` : ""}: ${e.context}`);
      }
    };
    list("Missed", file.misses, file.missesTotal, "found as");
    list("False positives", file.falsePositives, file.falsePositivesTotal, "labelled");
    out.push("");
  }
  return out.join("\n");
}

if (import.meta.main) {
  console.log(formatPhiReport(await evaluatePhi(Deno.args.length ? Deno.args : undefined)));
}
