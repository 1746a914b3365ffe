import assert from "node:assert/strict";
import { formatDuration, startProgress } from "../tasks/progress.ts";

function capture(options: Parameters<typeof startProgress>[1]) {
  const lines: string[] = [];
  const progress = startProgress("work", { ...options, intervalMs: 0, write: (text) => lines.push(text) });
  return { progress, lines };
}

Deno.test("progress in a log: counts, rate, share and ETA; time alone when there is nothing to count", () => {
  const counted = capture({ unit: "records", total: 10, terminal: false });
  counted.progress.update(5, "added 5");
  assert.match(counted.lines[0], /^work: 5\/10 records · [\d,]+\/s \(50%\) · ETA \d+:\d\d · added 5\n$/);

  const timed = capture({ terminal: false });
  timed.progress.update(0);
  assert.match(timed.lines[0], /^work: 0:00\n$/, "no made-up counts when the work reports none");
  timed.progress.update(0, "12,214 snippets linked", 0.3);
  assert.match(timed.lines[1], /^work: 30% · 0:00 · ETA \d+:\d\d · 12,214 snippets linked\n$/);
});

Deno.test("progress on a terminal: one redrawn line with a bar, cleared at the end", () => {
  const { progress, lines } = capture({ terminal: true });
  progress.update(0, "linking", 0.5);
  assert.ok(lines[0].startsWith("\r\x1b[2K"), "the line is redrawn in place");
  assert.match(lines[0].slice(5), /^work \[#{12}-{12}\] 50% · 0:00 · ETA \d+:\d\d · linking$/);
  progress.finish();
  assert.equal(lines.at(-1), "\r\x1b[2K");
});

Deno.test("durations read as m:ss or h:mm:ss, and ? when unknown", () => {
  assert.equal(formatDuration(5), "0:05");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(NaN), "?");
});
