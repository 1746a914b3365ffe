import assert from "node:assert/strict";
import { isFollowUp } from "../chat/follow_up.ts";
import { expandQuery, loadVocabulary } from "../knowledge/vocabulary.ts";
import { redactPhi } from "../safety/phi.ts";
import { detectRedFlags } from "../safety/red_flags.ts";
import { keepPatternsWarm, touchPatterns, WARM_MESSAGE } from "../warm.ts";

// A pattern stays compiled only if it runs, and many run only once an earlier one has found something (a cue's
// value, a name's later mentions): the sample must keep finding what each family finds, or keeping warm quietly
// stops covering it.
Deno.test("warm: the sample message reaches every pattern family a message meets", async () => {
  const found = new Set(redactPhi(WARM_MESSAGE).redactions.map((r) => r.type));
  for (const type of ["NAME", "DATE", "MRN", "SSN", "PHONE", "EMAIL", "ADDRESS", "ZIP"] as const) {
    assert.ok(found.has(type), `the sample has no ${type} for the redactor to find`);
  }
  const flags = detectRedFlags(WARM_MESSAGE).map((f) => f.category);
  assert.ok(flags.includes("cardiac"), `red flags found: ${flags.join(", ") || "none"}`);
  const vocabulary = await loadVocabulary(null);
  const expanded = expandQuery(WARM_MESSAGE, vocabulary);
  assert.match(expanded.slice(WARM_MESSAGE.length), /atrial fibrillation/);
  assert.equal(isFollowUp("And for children?"), true);
  assert.equal(
    isFollowUp(WARM_MESSAGE),
    false,
    "the sample has subjects of its own: the rules past the openings run",
  );
});

Deno.test("warm: touching the patterns changes nothing and fails on nothing, with or without redaction", async () => {
  const vocabulary = await loadVocabulary(null);
  touchPatterns({ redaction: true, vocabulary });
  touchPatterns({ redaction: false, vocabulary: null });
  // Later calls of the same functions answer as before.
  assert.equal(redactPhi("Call 07700 900123").text, "Call [PHONE_1]");
});

Deno.test("warm: keeping warm runs every step at once, one event-loop turn apart, and fails on none", async () => {
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const warmth = keepPatternsWarm({ redaction: true, vocabulary: await loadVocabulary(null) });
    // Four steps, each after a timer turn.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    warmth.stop();
  } finally {
    console.error = original;
  }
  assert.deepEqual(errors, []);
});

// The memory reducer's two full collections come about 0.6 s apart: every collection must be followed by a run
// within 0.4 s, or the patterns are dropped at the next one.
Deno.test("warm: the patterns run within 0.4 s of every collection, never twice within it, and not after stop", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--expose-gc",
      "--allow-read",
      "--allow-env",
      new URL("./support/warm_probe.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const { runs, collections, stoppedAt } = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    runs: number[];
    collections: number[];
    stoppedAt: number;
  };
  const probe = JSON.stringify({ runs, collections, stoppedAt });
  assert.ok(runs[0] < collections[0], `a run at start: ${probe}`);
  // Every collection before the last two (the probe stops while their run waits) is followed by a run within
  // 0.4 s, with room for a late timer on a busy machine.
  for (const at of collections.slice(0, -2)) {
    assert.ok(
      runs.some((run) => run >= at && run <= at + 400 + 250),
      `no run within 0.4 s of ${at}: ${probe}`,
    );
  }
  for (let i = 1; i < runs.length; i++) {
    assert.ok(runs[i] - runs[i - 1] >= 395, `two runs within 0.4 s: ${probe}`);
  }
  assert.ok(runs.every((run) => run <= stoppedAt), `a run after stop: ${probe}`);
  assert.ok(runs.length <= collections.length + 1, `more runs than collections: ${probe}`);
});
