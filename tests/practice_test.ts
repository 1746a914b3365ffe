/**
 * Practice with a simulated patient: trigger matching, the patient's prompt holding only asked-about facts
 * (checked in what the stub received), checklist scoring on scripted transcripts, and the debrief pages.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { rows } from "../db/migrate.ts";
import { readExampleCases, seedExampleCases } from "../cases/library.ts";
import { matchesTrigger, patientSystemPrompt, revealedFacts, scoreTranscript } from "../cases/practice.ts";
import type { Case } from "../cases/schema.ts";
import { listMessages } from "../db/messages.ts";
import { getChat } from "../db/chats.ts";
import { NO_PATIENT_REPLY } from "../chat/answer.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { type ChatFixture, startEarlyInAMinute, withChat } from "./support/chat_helpers.ts";
import { readAll } from "./support/sse_client.ts";
import { DRIVER } from "./support/test_app.ts";

const examples = await readExampleCases();
const renalColic: Case = examples.find((e) => e.file === "renal-colic.json")!.value;
const fact = (id: string) => renalColic.script.facts.find((f) => f.id === id)!;

const QUESTIONS = [
  "Hello, I'm one of the doctors. When did this pain start?",
  "Does it spread anywhere, like to your groin?",
  "Have you noticed any blood in your urine?",
];

Deno.test("practice: triggers match whole words, loosely stemmed, and phrases in order", () => {
  assert.ok(matchesTrigger("Do you smoke at all?", "smoking"));
  assert.ok(
    matchesTrigger("Any pains in your chest?", "chest pain") === false,
    "a phrase must keep its order",
  );
  assert.ok(matchesTrigger("Any chest pains?", "chest pain"));
  assert.ok(!matchesTrigger("Is it worse when you breathe in?", "worry"));
  assert.ok(!matchesTrigger("What brought you in?", "bro"));
});

Deno.test("practice: only facts asked about reach the patient's prompt, never the diagnosis", () => {
  const revealed = revealedFacts(renalColic, QUESTIONS.slice(0, 2));
  assert.deepEqual(revealed.map((r) => [r.fact.id, r.turn]), [["onset", 1], ["radiation", 2]]);
  const prompt = patientSystemPrompt(renalColic, revealed.map((r) => r.fact));
  assert.ok(prompt.includes(fact("onset").detail));
  assert.ok(prompt.includes(fact("radiation").detail));
  for (const hidden of ["family", "urine", "concerns"]) {
    assert.ok(!prompt.includes(fact(hidden).detail), hidden);
  }
  assert.ok(!prompt.toLowerCase().includes(renalColic.finalDiagnosis.toLowerCase()));
  assert.ok(!prompt.includes(renalColic.historyOfPresentIllness.slice(0, 60)), "the case notes stay out");
  assert.match(prompt, /never name or guess one/);
});

Deno.test("practice: a scripted transcript scores the same every time, with the turn that earned each item", () => {
  const score = scoreTranscript(renalColic, [
    ...QUESTIONS,
    "I think this is a kidney stone. I'll give you strong painkillers and an anti-sickness medicine.",
  ]);
  assert.deepEqual(
    score,
    scoreTranscript(
      renalColic,
      [...QUESTIONS, score.results.length ? "" : ""].slice(0, 3).concat(
        "I think this is a kidney stone. I'll give you strong painkillers and an anti-sickness medicine.",
      ),
    ),
  );
  const byFact = (id: string) => score.results[renalColic.checklist.findIndex((i) => i.factId === id)];
  assert.deepEqual([byFact("onset").status, byFact("onset").turn], ["elicited", 1]);
  assert.deepEqual([byFact("radiation").status, byFact("radiation").turn], ["elicited", 2]);
  assert.deepEqual([byFact("urine").status, byFact("urine").turn], ["elicited", 3]);
  assert.equal(byFact("family").status, "missed");
  assert.equal(byFact("onset").evidence, QUESTIONS[0]);
  assert.equal(score.results.find((r) => r.category === "examination")?.status, "in_person");
  assert.equal(score.history.total, renalColic.checklist.filter((i) => i.factId).length);
  assert.ok(score.history.elicited >= 3);
  assert.equal(score.learnerTurns, 4);
  const empty = scoreTranscript(renalColic, []);
  assert.equal(empty.history.elicited, 0);
  assert.ok(empty.results.every((r) => r.status === "missed" || r.status === "in_person"));
});

/** The text the model was asked to continue: the prompt, or every chat message. */
function promptOf(body: Record<string, unknown>): string {
  return typeof body.prompt === "string"
    ? body.prompt
    : (body.messages as { content: string }[]).map((m) => m.content).join("\n");
}

async function startPractice(f: ChatFixture): Promise<string> {
  await seedExampleCases(f.t.database.db, createLexicalEmbedder());
  const list = await (await f.t.request(`/cases?q=${encodeURIComponent("loin pain roofer")}`)).text();
  const caseId =
    /href="\/cases\/([0-9a-f-]{36})" class="case-title">Sudden severe right loin pain/.exec(list)![1];
  const casePage = await (await f.t.request(`/cases/${caseId}`)).text();
  assert.ok(casePage.includes(`action="/cases/${caseId}/practice"`));
  const started = await f.post(`/cases/${caseId}/practice`);
  assert.equal(started.status, 303);
  return /^\/sessions\/([0-9a-f-]{36})$/.exec(started.headers.get("location")!)![1];
}

Deno.test(`practice [${DRIVER}]: the model plays the patient from the script, told only what was asked`, async () => {
  await withChat(async (f) => {
    const id = await startPractice(f);
    const page = await (await f.t.request(`/sessions/${id}`)).text();
    assert.match(page, /Practice with a simulated patient\./);
    assert.match(
      page,
      /Argh, sorry, I can(&#39;|’|')t sit still./,
      "the patient opening line is the first message",
    );
    assert.match(page, /End and debrief/);

    for (const [i, question] of QUESTIONS.entries()) {
      f.stub.enqueue({ tokens: ["It ", "started ", "this ", "morning."] });
      const events = await readAll(await f.send(id, question));
      assert.equal(events.at(-1)?.event, "done");
      const prompt = promptOf(f.stub.requests[i].body);
      assert.ok(prompt.includes(fact("onset").detail), `turn ${i + 1}: onset stays revealed`);
      assert.equal(prompt.includes(fact("radiation").detail), i >= 1, `turn ${i + 1}: radiation`);
      assert.equal(prompt.includes(fact("urine").detail), i >= 2, `turn ${i + 1}: urine`);
      assert.ok(!prompt.includes(fact("family").detail), "never asked about the family");
      assert.ok(!prompt.includes(renalColic.finalDiagnosis), "never the diagnosis");
      assert.doesNotMatch(prompt, /<reference/, "practice is not grounded in the knowledge base");
    }
    const messages = await listMessages(f.t.database.db, id);
    assert.equal(messages.length, 1 + QUESTIONS.length * 2, "stored like chat");
    assert.ok(
      messages.filter((m) => m.role === "assistant").slice(1).every((m) =>
        m.content === "It started this morning."
      ),
    );

    f.stub.enqueue({ tokens: ["You ", "asked ", "about ", "onset ", "clearly."] });
    const ended = await f.post(`/sessions/${id}/debrief`);
    assert.equal(ended.status, 303);
    assert.equal(ended.headers.get("location"), `/sessions/${id}/debrief`);
    const feedbackPrompt = promptOf(f.stub.requests.at(-1)!.body);
    assert.ok(feedbackPrompt.includes(`Learner: ${QUESTIONS[1]}`));
    const debrief = await (await f.t.request(`/sessions/${id}/debrief`)).text();
    assert.match(
      debrief,
      new RegExp(
        `History items elicited: <strong>3 of ${
          renalColic.checklist.filter((i) => i.factId).length
        }</strong>`,
      ),
    );
    assert.match(debrief, /Turn 2: “Does it spread anywhere, like to your groin\?”/);
    assert.match(debrief, /The model’s narrative feedback/);
    assert.match(debrief, /not by an\s+examiner/);
    assert.match(debrief, /You asked about onset clearly\./);
    assert.ok((await getChat(f.t.database.db, id))!.debrief, "the debrief is stored");
    assert.match(await (await f.t.request(`/sessions/${id}`)).text(), /See the debrief/);
  });
});

Deno.test(`practice [${DRIVER}]: without a model the patient says why, and the debrief still scores`, async () => {
  await withChat(async (f) => {
    const id = await startPractice(f);
    const events = await readAll(await f.send(id, QUESTIONS[0]));
    assert.equal(events.at(-1)?.event, "done");
    const reply = (await listMessages(f.t.database.db, id)).at(-1)!;
    assert.equal(reply.content, NO_PATIENT_REPLY);
    assert.equal((await f.post(`/sessions/${id}/debrief`)).status, 303);
    const debrief = await (await f.t.request(`/sessions/${id}/debrief`)).text();
    assert.match(debrief, /History items elicited: <strong>1 of/);
    assert.match(debrief, /No model is configured, so there is no narrative feedback\./);
  }, { noModel: true });
});

Deno.test(`practice [${DRIVER}]: debriefs only exist for practice sessions`, async () => {
  await withChat(async (f) => {
    const chat = await f.session();
    assert.equal((await f.post(`/sessions/${chat}/debrief`)).status, 404);
    assert.equal((await f.t.request(`/sessions/${chat}/debrief`)).status, 404);
    const id = await startPractice(f);
    const notYet = await f.t.request(`/sessions/${id}/debrief`);
    assert.equal(notYet.status, 404);
    assert.match(await notYet.text(), /has not been ended yet/);
    assert.equal((await f.post(`/cases/00000000-0000-0000-0000-000000000000/practice`)).status, 404);
  });
});

Deno.test(`practice [${DRIVER}]: the debrief sends the transcript with identifiers replaced (issue 19, item 1)`, async () => {
  await withChat(async (f) => {
    const id = await startPractice(f);
    const introduction = "Hello, I'm Dr Amara Okafor. If you need me later, ring 07700 900123 or write to " +
      "amara.okafor@example.org. When did this pain start?";
    f.stub.enqueue({ tokens: ["This ", "morning."] });
    await readAll(await f.send(id, introduction));
    const turnPrompt = promptOf(f.stub.requests.at(-1)!.body);
    assert.doesNotMatch(turnPrompt, /Okafor|07700|example\.org/, "the turn itself went out redacted");
    f.stub.enqueue({ tokens: ["Good ", "opening."] });
    assert.equal((await f.post(`/sessions/${id}/debrief`)).status, 303);
    const feedbackPrompt = promptOf(f.stub.requests.at(-1)!.body);
    assert.match(feedbackPrompt, /Learner: Hello, I'm Dr \[NAME_1\]/);
    assert.doesNotMatch(feedbackPrompt, /Okafor|07700|900123|example\.org/, feedbackPrompt);
    // The learner's own record keeps what they wrote.
    const debrief = await (await f.t.request(`/sessions/${id}/debrief`)).text();
    assert.match(debrief, /Turn 1: “Hello, I(&#39;|')m Dr Amara Okafor/);
  });
});

Deno.test(`practice [${DRIVER}]: debriefs count against the user's model calls per minute and tokens (issue 19, item 10)`, async () => {
  await startEarlyInAMinute();
  await withChat(async (f) => {
    const id = await startPractice(f);
    f.stub.defaultScript = { tokens: ["It ", "started ", "this ", "morning."] };
    await readAll(await f.send(id, "When did the pain start?")); // one model call
    f.stub.defaultScript = { tokens: ["Good ", "opening."] };
    assert.equal((await f.post(`/sessions/${id}/debrief`)).status, 303); // two
    assert.equal((await f.post(`/sessions/${id}/debrief`)).status, 303); // three
    const before = f.stub.requests.length;
    const over = await f.post(`/sessions/${id}/debrief`, {}, { "hx-request": "true" });
    assert.equal(over.status, 429);
    assert.match(await over.text(), /You have asked the model 3 times this minute/);
    assert.equal(f.stub.requests.length, before, "the refused debrief did not reach the model");
    const usage = await f.t.database.db.execute(sql`select tokens from token_usage`);
    assert.ok(Number(rows<{ tokens: number }>(usage)[0].tokens) > 0, "the feedback's tokens were charged");
  }, { env: { RATE_LIMIT_MESSAGES_PER_MINUTE: "3" } });
});
