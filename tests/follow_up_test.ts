/**
 * Follow-ups keep their subject only when they are follow-ups (issue 20, item 2): the rules, their figures on
 * the labelled sets, and a chat without a model whose new subject no longer gets the last topic's sources.
 */
import assert from "node:assert/strict";
import { type AnswerDeps, beginAnswer } from "../chat/answer.ts";
import { isFollowUp, retrievalQuery } from "../chat/follow_up.ts";
import { getChat } from "../db/chats.ts";
import { createRegistry } from "../inference/models.ts";
import { defaultMinScore, retrieve } from "../knowledge/retrieve.ts";
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

Deno.test(`follow-ups [${DRIVER}]: a follow-up's search begins as soon as the questions it continues are known`, async () => {
  await withChat(async ({ t, session, send }) => {
    const db = t.database.db;
    const dir = await Deno.makeTempDir();
    const path = `${dir}/healthcaremagic.json`;
    await Deno.writeTextFile(path, JSON.stringify(ROWS.map((r) => ({ instruction: "Answer.", ...r }))));
    const embedder = createLexicalEmbedder();
    await ingestFile(db, embedder, path);
    await Deno.remove(dir, { recursive: true });
    const croup = "My toddler has a barking cough and noisy breathing at night, a toddler of two";
    const id = await session();
    await readAll(await send(id, croup));
    const minScore = defaultMinScore(embedder.id);
    const deps: AnswerDeps = {
      db,
      models: createRegistry([]),
      systemPrompt: "",
      knowledge: { embedder, k: 5, minScore },
      redactPhi: true,
    };
    // Begun with the conversation that comes back with the stored question (it used to wait for the engine), and
    // the same search the engine would make: the follow-up with the question it continues.
    const question = "And is a steroid needed?";
    const earlier = Promise.resolve(await listMessages(db, id));
    const head = beginAnswer(deps, (await getChat(db, id))!, { content: question }, earlier);
    assert.ok(head.search, "the follow-up's search is begun with the turns");
    const begun = await head.search.result;
    const direct = await retrieve(db, embedder, retrievalQuery(question, [croup]), {
      k: 5,
      minScore,
      followUp: true,
    });
    assert.deepEqual(begun.results.map((r) => r.snippet.id), direct.results.map((r) => r.snippet.id));
    assert.match(begun.results[0].snippet.question ?? "", /croup|barking/);
    // In a chat with nothing before it, the same words are searched as they are.
    const empty = beginAnswer(
      deps,
      (await getChat(db, await session()))!,
      { content: question },
      Promise.resolve([]),
    );
    const alone = await retrieve(db, embedder, question, { k: 5, minScore });
    assert.deepEqual(
      (await empty.search!.result).results.map((r) => r.snippet.id),
      alone.results.map((r) => r.snippet.id),
    );
  }, { noModel: true });
});

/**
 * Two dialogues in MedDialog's text format: one whose second exchange a clinician's follow-up means but words
 * otherwise, one that shares the follow-up's words.
 */
const DIALOGUES = `id=501
https://www.example.org/rounds-test/q/501
Description
Q. Ibuprofen for a sprained ankle while on lisinopril?
Dialogue
Patient:
Hi, I take lisinopril 10 mg for blood pressure. I sprained my ankle yesterday and a friend suggested ibuprofen. Is that OK?
Doctor:
Anti-inflammatory tablets such as ibuprofen can raise blood pressure and, together with lisinopril, strain the kidneys. Paracetamol with rest, ice, compression and elevation of the sprained ankle is the safer first choice.
Patient:
Thank you. And if that does not settle it, for how many days is the anti-inflammatory safe with my tablets?
Doctor:
Keep to the lowest dose for no more than three to five days, take it with food, drink well, and stop and seek advice if you pass much less urine or your readings rise.

id=502
https://www.example.org/rounds-test/q/502
Description
Q. How long can I take ibuprofen for back pain?
Dialogue
Patient:
How long can I keep taking ibuprofen for my back pain if paracetamol is not enough?
Doctor:
For back pain, ibuprofen can be used for a week or two beside paracetamol if it is not enough, with food, and stopped if your stomach hurts.
`;

Deno.test(`follow-ups [${DRIVER}]: the dialogue a follow-up continues gives its next exchange as the second source`, async () => {
  await withChat(async ({ t, session, send }) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/meddialog.txt`, DIALOGUES);
      await ingestFile(t.database.db, createLexicalEmbedder(), `${dir}/meddialog.txt`);
      const sourcesOf = async (id: string) => {
        const reply = (await listMessages(t.database.db, id)).filter((m) => m.role === "assistant").at(-1)!;
        return ((await sourcesOfMessages(t.database.db, [reply.id])).get(reply.id) ?? [])
          .map((s) => s.snippet?.sourceId ?? "");
      };
      const first =
        "Hi, I take lisinopril 10 mg for blood pressure. I sprained my ankle yesterday and a friend " +
        "suggested ibuprofen. Is that OK?";
      const followUp = "Thanks. If paracetamol is not enough, how long could I use ibuprofen for?";
      const chat = await session();
      await readAll(await send(chat, first));
      assert.equal((await sourcesOf(chat))[0], "501#1");
      await readAll(await send(chat, followUp));
      // The follow-up's own words find the back-pain dialogue first, and the dialogue's next exchange not at all.
      const alone = await session();
      await readAll(await send(alone, followUp));
      const aloneSources = await sourcesOf(alone);
      assert.equal(aloneSources[0], "502#1", aloneSources.join(" | "));
      // In the conversation: the dialogue it continues, then what that doctor said next.
      const sources = await sourcesOf(chat);
      assert.deepEqual(sources.slice(0, 2), ["501#1", "501#2"], sources.join(" | "));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }, { noModel: true });
});
