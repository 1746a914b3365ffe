/**
 * The clinical vocabulary (issue 20, item 1): its file reads, a clinician's words find a dialogue written in a
 * patient's, an operator's file adds groups, and everyday words are left as they are.
 */
import assert from "node:assert/strict";
import { expandQuery, loadVocabulary, parseVocabulary } from "../knowledge/vocabulary.ts";
import { ingestFile } from "../knowledge/ingest.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { retrieve } from "../knowledge/retrieve.ts";
import { createTestDatabase, DRIVER } from "./support/test_app.ts";

Deno.test("vocabulary: the shipped file reads, and a clinician's words are expanded, a patient's are not", async () => {
  const vocabulary = await loadVocabulary();
  assert.ok(vocabulary.groups.length >= 200, `${vocabulary.groups.length} groups`);
  const expanded = expandQuery("CCB oedema in a 61-year-old", vocabulary);
  assert.match(expanded, /^CCB oedema in a 61-year-old\n/, "the question stays first");
  assert.match(expanded, /calcium channel blocker/);
  assert.match(expanded, /swelling/);
  // Capitals only: "mi" inside words or lower case is not myocardial infarction.
  assert.doesNotMatch(expandQuery("my mi casa", vocabulary), /infarction/);
  assert.match(expandQuery("Suspected MI", vocabulary), /heart attack/);
  // Everyday words already match what patients wrote: left alone.
  assert.equal(expandQuery("my ankles swell every evening", vocabulary), "my ankles swell every evening");
  assert.equal(expandQuery("bicycle gears", vocabulary), "bicycle gears");
  const operator = parseVocabulary("# local terms\nwater tablet | diuretic | furosemide\nnot a group\n");
  assert.equal(operator.groups.length, 1);
  assert.match(expandQuery("water tablet and cramps", operator), /diuretic; furosemide/);
});

Deno.test(`vocabulary [${DRIVER}]: a clinician's question finds the dialogue a patient wrote`, async () => {
  const database = await createTestDatabase();
  const dir = await Deno.makeTempDir();
  try {
    const embedder = createLexicalEmbedder();
    await Deno.writeTextFile(
      `${dir}/healthcaremagic.json`,
      JSON.stringify([
        {
          instruction: "Answer.",
          input: "My ankles swell every evening since I started amlodipine 10 mg for blood pressure.",
          output: "Swollen ankles are a well known side effect of amlodipine; ask about a lower dose.",
        },
        {
          instruction: "Answer.",
          input: "I have a sore throat and a fever since Monday.",
          output: "Most sore throats are viral and settle within a week; paracetamol helps.",
        },
      ]),
    );
    await ingestFile(database.db, embedder, `${dir}/healthcaremagic.json`);
    const vocabulary = await loadVocabulary();
    const asked = "CCB-induced oedema";
    // At the lexical embedder's evidence threshold: as written, nothing shares a word with the question.
    const minScore = 0.15;
    const plain = await retrieve(database.db, embedder, asked, { k: 3, minScore });
    const expanded = await retrieve(database.db, embedder, asked, { k: 3, minScore, vocabulary });
    assert.equal(plain.results.length, 0, "as written: no evidence");
    assert.match(expanded.results[0]?.snippet.text ?? "", /amlodipine/);
  } finally {
    await database.close();
    await Deno.remove(dir, { recursive: true });
  }
});
