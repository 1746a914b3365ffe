/**
 * Follow-up detection (chat/follow_up.ts) on labelled pairs in data/eval: for each, the previous question, the
 * new one, and whether the new one continues the previous. Reported: follow-ups found (recall), and topic
 * switches taken for follow-ups (the error that puts the last topic's sources under a new question).
 *
 * Run alone with `deno run --allow-read tasks/eval_follow_ups.ts [FILE…]`; `deno task eval followups` uses it.
 */
import { isFollowUp } from "../chat/follow_up.ts";

/** The labelled files evaluated when no paths are given. */
export const FOLLOW_UP_FILES = [
  new URL("../data/eval/follow_ups.jsonl", import.meta.url).pathname,
  // Written after the rules and run once before any change: the honest check.
  new URL("../data/eval/follow_ups_holdout.jsonl", import.meta.url).pathname,
  // Acknowledgements ("Thanks.") and results ("The scan showed…"), written before the rules for them and run
  // once: their honest check.
  new URL("../data/eval/follow_ups_holdout_2.jsonl", import.meta.url).pathname,
];

/** A pair the rules got wrong. */
export interface FollowUpError {
  line: number;
  previous: string;
  question: string;
  expected: boolean;
}

/** The figures for one file. */
export interface FollowUpFileReport {
  path: string;
  followUps: number;
  followUpsFound: number;
  switches: number;
  switchErrors: number;
  errors: FollowUpError[];
}

/** Evaluates follow-up detection on labelled JSONL files. */
export async function evaluateFollowUps(paths: string[] = FOLLOW_UP_FILES): Promise<FollowUpFileReport[]> {
  const reports: FollowUpFileReport[] = [];
  for (const path of paths) {
    const report: FollowUpFileReport = {
      path,
      followUps: 0,
      followUpsFound: 0,
      switches: 0,
      switchErrors: 0,
      errors: [],
    };
    (await Deno.readTextFile(path)).split("\n").forEach((raw, i) => {
      if (!raw.trim()) return;
      const pair = JSON.parse(raw) as { previous?: unknown; question?: unknown; followUp?: unknown };
      if (
        typeof pair.previous !== "string" || typeof pair.question !== "string" ||
        typeof pair.followUp !== "boolean"
      ) {
        throw new Error(`${path} line ${i + 1}: needs "previous", "question" and "followUp"`);
      }
      const found = isFollowUp(pair.question);
      if (pair.followUp) {
        report.followUps++;
        if (found) report.followUpsFound++;
      } else {
        report.switches++;
        if (found) report.switchErrors++;
      }
      if (found !== pair.followUp) {
        report.errors.push({
          line: i + 1,
          previous: pair.previous,
          question: pair.question,
          expected: pair.followUp,
        });
      }
    });
    reports.push(report);
  }
  return reports;
}

/** A readable report per file, with the pairs it got wrong. */
export function formatFollowUpReport(reports: FollowUpFileReport[]): string {
  const out: string[] = [];
  for (const r of reports) {
    const pct = (n: number, d: number) => (d ? ((100 * n) / d).toFixed(1) : "–");
    out.push(
      `Follow-up detection: ${r.path}`,
      `  follow-ups found        ${r.followUpsFound} / ${r.followUps} (${
        pct(r.followUpsFound, r.followUps)
      }%)`,
      `  topic switches kept new ${
        r.switches - r.switchErrors
      } / ${r.switches}; taken for follow-ups: ${r.switchErrors}`,
    );
    for (const e of r.errors) {
      out.push(
        `  line ${e.line}: ${e.expected ? "missed follow-up" : "switch taken as follow-up"}: ${e.question}`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}

if (import.meta.main) {
  console.log(formatFollowUpReport(await evaluateFollowUps(Deno.args.length ? Deno.args : undefined)));
}
