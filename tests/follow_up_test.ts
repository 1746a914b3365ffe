/**
 * Follow-ups keep their subject only when they are follow-ups (issue 20, item 2): the rules, their figures on
 * the labelled sets, and a chat without a model whose new subject no longer gets the last topic's sources.
 */
import assert from "node:assert/strict";
import { isFollowUp, retrievalQuery } from "../chat/follow_up.ts";
import { listMessages } from "../db/messages.ts";
import { sourcesOfMessages } from "../db/snippets.ts";
import { ingestFile } from "../knowledge/ingest.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { evaluateFollowUps } from "../tasks/eval_follow_ups.ts";
import { withChat } from "./support/chat_helpers.ts";
import { readAll } from "./support/sse_client.ts";
import { DRIVER } from "./support/test_app.ts";

Deno.test("follow-ups: what continues a question, and what starts a subject of its own", () => {
  for (
    const q of [
      "and the dose?",
      "What about in children?",
      "Is it safe in pregnancy?",
      "How long?",
      "Could it be angina?",
      "apixaban or warfarin?",
      "colchicine dose",
      "Permethrin for everyone?",
      "jaw pain on chewing too",
      "Thanks. If paracetamol is not enough, how long could I use ibuprofen for?",
      "Thank you, that is reassuring. If I do start HRT, how long am I allowed to stay on it?",
      "The CT came back negative. What usually happens next?",
      "The chest X-ray was normal, what now?",
      "Okay thanks. Can she take it while breastfeeding?",
      "Great, that is clear. How long before she can drive?",
    ]
  ) {
    assert.ok(isFollowUp(q), `follow-up: ${q}`);
  }
  for (
    const q of [
      "dry cough after a cold",
      "Dry cough for three weeks after a cold, what could it be?",
      "My daughter has a rash and a fever, is it serious?",
      "Headache for three days",
      "Back pain",
      "Dolor de garganta y fiebre en un niño",
      "Thanks. Different question: a 4-year-old with a barking cough at night",
      "Thank you! Purple spots that do not fade on a feverish toddler's legs",
      "Right knee swollen after a fall",
      "Great toe hot and red overnight",
      "Okay thanks. New patient, a 30-year-old with palpitations",
      "The patient is a 60-year-old man with crushing chest pain and sweating",
      "My pregnancy test is positive and I have pain low on one side",
    ]
  ) {
    assert.ok(!isFollowUp(q), `new subject: ${q}`);
  }
  // A follow-up of a follow-up goes back to the question with the subject, no further.
  assert.equal(
    retrievalQuery("and for how long?", ["Back pain", "Croup in a toddler", "Dexamethasone dose?"]),
    "and for how long?\nDexamethasone dose?\nCroup in a toddler",
  );
  assert.equal(retrievalQuery("dry cough after a cold", ["Croup in a toddler"]), "dry cough after a cold");
});

Deno.test("follow-ups: the labelled sets (topic switches are never taken for follow-ups)", async () => {
  const [main, holdout, acknowledged] = await evaluateFollowUps();
  assert.ok(main.followUps >= 50 && main.switches >= 25 && holdout.followUps + holdout.switches >= 30);
  assert.ok(acknowledged.followUps >= 10 && acknowledged.switches >= 5);
  assert.equal(main.switchErrors, 0);
  assert.equal(holdout.switchErrors, 0);
  assert.equal(acknowledged.switchErrors, 0);
  assert.ok(main.followUpsFound / main.followUps >= 0.95, `main ${main.followUpsFound}/${main.followUps}`);
  // The held-out sets' first runs, 9 of 19 and 10 of 11 (1 of 11 before the rules they check): floors, not goals.
  assert.ok(holdout.followUpsFound >= 9, `holdout ${holdout.followUpsFound}/${holdout.followUps}`);
  assert.ok(
    acknowledged.followUpsFound >= 10,
    `holdout 2 ${acknowledged.followUpsFound}/${acknowledged.followUps}`,
  );
});

const ROWS = [
  {
    input: "I have had a dry cough for three weeks after a cold, no fever. Should I worry?",
    output:
      "A dry cough lingering for weeks after a viral cold is common and usually settles within eight weeks.",
  },
  {
    input: "My toddler has a barking cough and noisy breathing at night.",
    output:
      "A barking cough with noisy breathing at night in a toddler sounds like croup. Keep the child calm.",
  },
  {
    input: "What dose of dexamethasone is used for croup in a toddler?",
    output:
      "A single oral dose of dexamethasone, 0.15 mg/kg, is usual for mild to moderate croup in a toddler.",
  },
];

Deno.test(`follow-ups [${DRIVER}]: a new subject is searched alone; a follow-up keeps the subject before it`, async () => {
  await withChat(async ({ t, session, send }) => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/healthcaremagic.json`;
    await Deno.writeTextFile(path, JSON.stringify(ROWS.map((r) => ({ instruction: "Answer.", ...r }))));
    await ingestFile(t.database.db, createLexicalEmbedder(), path);
    const sourcesOf = async (id: string) => {
      const reply = (await listMessages(t.database.db, id)).filter((m) => m.role === "assistant").at(-1)!;
      return ((await sourcesOfMessages(t.database.db, [reply.id])).get(reply.id) ?? [])
        .map((s) => s.snippet?.question ?? "");
    };
    const croup =
      "My toddler has a barking cough and noisy breathing at night, worse at night, a toddler of two";
    // A new subject starts clean. Before, the previous question joined every query and the croup dialogue was
    // the first source here.
    const switched = await session();
    await readAll(await send(switched, croup));
    assert.match((await sourcesOf(switched))[0], /barking cough/);
    await readAll(await send(switched, "dry cough after a cold"));
    const fresh = await sourcesOf(switched);
    assert.match(fresh[0], /dry cough for three weeks/, fresh.join(" | "));
    // A follow-up keeps its subject: the steroid asked about is croup's.
    const followed = await session();
    await readAll(await send(followed, croup));
    await readAll(await send(followed, "And is a steroid needed?"));
    assert.match((await sourcesOf(followed))[0], /croup|barking/);
    await Deno.remove(dir, { recursive: true });
  }, { noModel: true });
});
