/**
 * Red-flag detection measured on labelled messages: recall on emergencies, false alarms on everything else, and
 * the time it takes per message. `deno task eval redflags` prints `formatRedFlagReport(await evaluateRedFlags())`.
 */
import { detectRedFlags, RED_FLAG_CATEGORIES, type RedFlagCategory } from "../safety/red_flags.ts";

/** The labelled sets evaluated when no paths are given. */
export const RED_FLAG_EVAL_FILES: string[] = [
  new URL("../data/eval/red_flags.jsonl", import.meta.url).pathname,
  new URL("../data/eval/red_flags_holdout.jsonl", import.meta.url).pathname,
  // Written by another author after the rules, run once before any change: the honest check.
  new URL("../data/eval/red_flags_unseen.jsonl", import.meta.url).pathname,
];

/** One labelled message: an emergency category, or null for none. */
export interface RedFlagExample {
  text: string;
  category: RedFlagCategory | null;
}

/** An emergency that was not flagged, or flagged under other categories only. */
export interface RedFlagMiss {
  text: string;
  expected: RedFlagCategory;
  /** Categories that were returned instead (empty for a plain miss). */
  got: RedFlagCategory[];
}

/** A message with no emergency that was flagged. */
export interface RedFlagFalseAlarm {
  text: string;
  got: RedFlagCategory[];
}

/** Recall for one category. */
export interface RedFlagCategoryScore {
  positives: number;
  /** Flagged at all. */
  detected: number;
  /** Flagged with this category among the flags. */
  categoryMatched: number;
  recall: number;
}

/** Figures for one labelled file. */
export interface RedFlagFileReport {
  path: string;
  positives: number;
  negatives: number;
  /** Positives with any flag. */
  truePositives: number;
  /** Positives whose expected category is among the flags. */
  categoryMatched: number;
  falsePositives: number;
  recall: number;
  /** Share of positives flagged with the expected category. */
  categoryRecall: number;
  falsePositiveRate: number;
  precision: number;
  perCategory: Partial<Record<RedFlagCategory, RedFlagCategoryScore>>;
  /** Positives not flagged at all. */
  misses: RedFlagMiss[];
  /** Positives flagged, but not with their category. */
  categoryMismatches: RedFlagMiss[];
  falseAlarms: RedFlagFalseAlarm[];
  /** Mean detection time per message, and for the slowest one. */
  msPerMessage: number;
  maxMs: number;
}

/** What {@link evaluateRedFlags} measured. */
export interface RedFlagEvalReport {
  files: RedFlagFileReport[];
}

/** Reads a labelled JSONL file: one `{"text", "category"}` object a line. */
export async function readRedFlagExamples(path: string): Promise<RedFlagExample[]> {
  const lines = (await Deno.readTextFile(path)).split("\n");
  const examples: RedFlagExample[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`Cannot parse red-flag example at ${path}:${i + 1}: not JSON`);
    }
    const { text, category } = (value ?? {}) as { text?: unknown; category?: unknown };
    if (typeof text !== "string") {
      throw new Error(`Cannot read red-flag example at ${path}:${i + 1}: missing "text"`);
    }
    if (category !== null && !RED_FLAG_CATEGORIES.includes(category as RedFlagCategory)) {
      throw new Error(
        `Cannot read red-flag example at ${path}:${i + 1}: unknown category ${JSON.stringify(category)}`,
      );
    }
    examples.push({ text, category: category as RedFlagCategory | null });
  });
  return examples;
}

function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

/** Scores labelled examples (exported so tests can score their own). */
export function scoreRedFlags(path: string, examples: RedFlagExample[]): RedFlagFileReport {
  // Warm the patterns up so the first message does not carry regex compilation in its time.
  detectRedFlags("warm up: chest pain and sweating");
  const report: RedFlagFileReport = {
    path,
    positives: 0,
    negatives: 0,
    truePositives: 0,
    categoryMatched: 0,
    falsePositives: 0,
    recall: 0,
    categoryRecall: 0,
    falsePositiveRate: 0,
    precision: 0,
    perCategory: {},
    misses: [],
    categoryMismatches: [],
    falseAlarms: [],
    msPerMessage: 0,
    maxMs: 0,
  };
  let totalMs = 0;
  for (const example of examples) {
    const started = performance.now();
    const got = detectRedFlags(example.text).map((flag) => flag.category);
    const ms = performance.now() - started;
    totalMs += ms;
    report.maxMs = Math.max(report.maxMs, ms);
    if (example.category === null) {
      report.negatives++;
      if (got.length > 0) {
        report.falsePositives++;
        report.falseAlarms.push({ text: example.text, got });
      }
      continue;
    }
    report.positives++;
    const score = report.perCategory[example.category] ??= {
      positives: 0,
      detected: 0,
      categoryMatched: 0,
      recall: 0,
    };
    score.positives++;
    if (got.length === 0) {
      report.misses.push({ text: example.text, expected: example.category, got });
      continue;
    }
    report.truePositives++;
    score.detected++;
    if (got.includes(example.category)) {
      report.categoryMatched++;
      score.categoryMatched++;
    } else {
      report.categoryMismatches.push({ text: example.text, expected: example.category, got });
    }
  }
  for (const score of Object.values(report.perCategory)) {
    score.recall = ratio(score.detected, score.positives);
  }
  report.recall = ratio(report.truePositives, report.positives);
  report.categoryRecall = ratio(report.categoryMatched, report.positives);
  report.falsePositiveRate = ratio(report.falsePositives, report.negatives);
  report.precision = ratio(report.truePositives, report.truePositives + report.falsePositives);
  report.msPerMessage = ratio(totalMs, examples.length);
  return report;
}

/** Runs red-flag detection over labelled files (by default the evaluation set and its held-out companion). */
export async function evaluateRedFlags(paths: string[] = RED_FLAG_EVAL_FILES): Promise<RedFlagEvalReport> {
  const files: RedFlagFileReport[] = [];
  for (const path of paths) files.push(scoreRedFlags(path, await readRedFlagExamples(path)));
  return { files };
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

function truncate(text: string, length = 110): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= length ? flat : `${flat.slice(0, length - 1)}…`;
}

/** A readable table per file, then its misses, category mismatches and false alarms. */
export function formatRedFlagReport(report: RedFlagEvalReport): string {
  const lines: string[] = [];
  for (const file of report.files) {
    const name = file.path.split("/").slice(-1)[0];
    lines.push(
      `${name}: ${file.positives} emergencies, ${file.negatives} others`,
      `  recall ${percent(file.recall)} (category matched ${percent(file.categoryRecall)})  ` +
        `false-positive rate ${percent(file.falsePositiveRate)}  precision ${percent(file.precision)}  ` +
        `${file.msPerMessage.toFixed(3)} ms/message (max ${file.maxMs.toFixed(2)} ms)`,
      "",
      `  ${"category".padEnd(22)}${"n".padStart(5)}${"flagged".padStart(9)}${"same cat".padStart(10)}${
        "recall".padStart(9)
      }`,
    );
    for (const category of RED_FLAG_CATEGORIES) {
      const score = file.perCategory[category];
      if (!score) continue;
      lines.push(
        `  ${category.padEnd(22)}${String(score.positives).padStart(5)}${
          String(score.detected).padStart(9)
        }` +
          `${String(score.categoryMatched).padStart(10)}${percent(score.recall).padStart(9)}`,
      );
    }
    lines.push("", `  misses (${file.misses.length}):`);
    for (const miss of file.misses) lines.push(`    [${miss.expected}] ${truncate(miss.text)}`);
    lines.push(`  flagged under another category (${file.categoryMismatches.length}):`);
    for (const miss of file.categoryMismatches) {
      lines.push(`    [${miss.expected} → ${miss.got.join(", ")}] ${truncate(miss.text)}`);
    }
    lines.push(`  false alarms (${file.falseAlarms.length}):`);
    for (const alarm of file.falseAlarms) lines.push(`    [${alarm.got.join(", ")}] ${truncate(alarm.text)}`);
    lines.push("");
  }
  return lines.join("\n");
}
