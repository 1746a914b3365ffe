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

Deno.test("warm: keeping warm runs at once and stops with its handle (no timer left behind)", async () => {
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const warmth = keepPatternsWarm({ redaction: true, vocabulary: await loadVocabulary(null) });
    warmth.stop();
  } finally {
    console.error = original;
  }
  assert.deepEqual(errors, []);
  // The test sanitizer fails this test if the interval outlived stop().
});

// The memory reducer's two collections come about 0.6 s apart after a quiet spell: the first must be followed by
// a touch at once, and any collection by one within a second, or the patterns are dropped at the next.
Deno.test("warm: the patterns run after a collection that ends a quiet spell, and within a second of any other", async () => {
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
  const text = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.deepEqual(JSON.parse(text), {
    atStart: 1,
    afterQuietCollection: 1,
    afterSecondCollectionSoon: 1,
    aSecondAfterTheLastTouch: 2,
    afterStop: 2,
  });
});
