/**
 * The training export (chat/training.ts, tasks/export.ts): clinicians' feedback given through the app becomes
 * SFT and preference records whose prompt is byte for byte what the model server was sent, with identifiers
 * replaced, duplicates dropped and whole conversations on one side of the split; datasets convert the same way.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { listMessages } from "../db/messages.ts";
import { listAudit } from "../db/audit.ts";
import {
  type ExampleKind,
  examplesFromFeedback,
  exportFeedback,
  formatExample,
  type Split,
  splitOf,
  trainingWriter,
} from "../chat/training.ts";
import { BUILTIN_TEMPLATES, type PromptTemplate } from "../inference/templates.ts";
import { HX, withChat } from "./support/chat_helpers.ts";
import { readAll } from "./support/sse_client.ts";
import { DRIVER } from "./support/test_app.ts";
import type { Db } from "../db/client.ts";

type Line = Record<string, unknown> & { split: Split; kind: ExampleKind };

async function exportAll(db: Db, template: PromptTemplate, testFraction = 0) {
  const lines: Line[] = [];
  const writer = trainingWriter({
    template,
    testFraction,
    seed: "test",
    write: (kind, split, line) => {
      assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"), "one record per line");
      lines.push({ ...JSON.parse(line), kind, split });
    },
  });
  const result = await exportFeedback(db, writer, { systemPrompt: "Answer as a careful clinician." });
  return { lines, counts: writer.counts, ...result };
}

const IDENTIFIERS = [/Adaeze/, /Okonkwo/, /48213377/, /7946/];

Deno.test(`training [${DRIVER}]: feedback becomes records in the served prompt format, redacted and deduplicated`, async () => {
  await withChat(async ({ t, stub, session, send, post }) => {
    const db = t.database.db;
    stub.enqueue(
      { tokens: ["Arrange an ECG today", " for Mrs Okonkwo."] },
      { tokens: ["Consider a stress test."] },
      { tokens: ["First", " try"] },
      { tokens: ["Second", " try"] },
      { tokens: ["Second", " try"] },
      { tokens: ["Unmarked reply"] },
    );
    const feedback = (chat: string, id: string, rating: string, correction = "") =>
      post(`/sessions/${chat}/messages/${id}/feedback`, { rating, correction }, HX);

    // A conversation: the first answer marked good, the follow-up's corrected.
    const a = await session();
    await readAll(
      await send(a, "Mrs Adaeze Okonkwo, MRN 48213377, has exertional chest tightness. Next step?"),
    );
    await readAll(await send(a, "And if the ECG is normal?"));
    const [, goodReply, , badReply] = await listMessages(db, a);
    assert.equal((await feedback(a, goodReply.id, "up")).status, 200);
    const correction = "Offer CT coronary angiography first, and tell Mrs Okonkwo's GP (020 7946 0958).";
    assert.equal((await feedback(a, badReply.id, "down", correction)).status, 200);

    // Two versions of one answer: the first marked bad, the regenerated one good.
    const b = await session();
    await readAll(await send(b, "Differential for cough?"));
    const first = (await listMessages(db, b))[1];
    await readAll(
      await post(`/sessions/${b}/messages/${first.id}/regenerate`, { client_id: "regen-0001" }, HX),
    );
    const second = (await listMessages(db, b))[2];
    await feedback(b, first.id, "down");
    await feedback(b, second.id, "up");

    // The same question and good answer in another conversation: one record, not two.
    const c = await session();
    await readAll(await send(c, "Differential for cough?"));
    await feedback(c, (await listMessages(db, c))[1].id, "up");

    // Left out: a reply with no feedback, a practice session's, and one written without a model.
    const d = await session();
    await readAll(await send(d, "Unmarked question"));
    const practice = await session();
    await readAll(await send(practice, "Where does it hurt?"));
    await feedback(practice, (await listMessages(db, practice))[1].id, "up");
    await db.execute(sql`update chat_sessions set kind = 'practice' where id = ${practice}`);

    const { lines, counts, skipped, conversations } = await exportAll(
      db,
      BUILTIN_TEMPLATES["llama2-meddialog"],
    );
    assert.equal(conversations, 3, "the practice session and the one without feedback are not read");
    const sft = lines.filter((l) => l.kind === "sft");
    const preference = lines.filter((l) => l.kind === "preference");
    assert.deepEqual(sft.map((l) => l.origin).sort(), ["correction", "good", "good"]);
    assert.deepEqual(preference.map((l) => l.origin).sort(), ["correction", "versions"]);
    assert.equal(counts.duplicates, 1);
    assert.deepEqual(skipped, {});

    // The prompt is exactly what the server was sent for that answer; the completion ends as in training.
    const good = sft.find((l) => l.origin === "good" && String(l.completion).startsWith("Arrange"))!;
    assert.equal(good.prompt, stub.requests[0].body.prompt);
    const placeholder = String(good.prompt).match(/\[NAME_\d+\]/)?.[0];
    assert.ok(placeholder, `the patient's name is a placeholder in ${good.prompt}`);
    assert.match(String(good.completion), /^Arrange an ECG today for (Mrs )?\[NAME_\d+\]\.<\/s>$/);
    assert.ok(
      String(good.completion).includes(placeholder!),
      "the answer names the patient as the prompt does",
    );
    const corrected = sft.find((l) => l.origin === "correction")!;
    assert.equal(
      corrected.prompt,
      stub.requests[1].body.prompt,
      "the follow-up's prompt carries the history",
    );
    assert.match(String(corrected.completion), /^Offer CT coronary angiography first.*<\/s>$/);
    const pair = preference.find((l) => l.origin === "correction")!;
    assert.equal(pair.chosen, corrected.completion);
    assert.equal(pair.rejected, "Consider a stress test.</s>");
    const versions = preference.find((l) => l.origin === "versions")!;
    assert.equal(versions.chosen, "Second try</s>");
    assert.equal(versions.rejected, "First try</s>");
    assert.deepEqual(versions.source, {
      conversation: b,
      question_message: first.replyTo,
      reply_message: first.id,
      model: first.model,
      feedback: -1,
      chosen_message: second.id,
    });
    const everything = JSON.stringify(lines);
    for (const identifier of IDENTIFIERS) assert.doesNotMatch(everything, identifier);
    assert.equal(new Set(lines.map((l) => l.id)).size, lines.length, "ids are unique");

    // The chat format: TRL's conversational shape, the system prompt first.
    const chat = await exportAll(db, BUILTIN_TEMPLATES.chat);
    const chatGood = chat.lines.find((l) => l.kind === "sft" && l.origin === "good")!;
    assert.deepEqual((chatGood.prompt as { role: string }[]).map((m) => m.role), ["system", "user"]);
    assert.equal((chatGood.completion as { role: string }[])[0].role, "assistant");

    // A held-out split keeps each conversation on one side, and is the same for the same seed.
    const split = await exportAll(db, BUILTIN_TEMPLATES["llama2-meddialog"], 0.5);
    const sides = new Map<unknown, Set<Split>>();
    for (const l of split.lines) {
      const conversation = (l.source as { conversation: string }).conversation;
      sides.set(conversation, (sides.get(conversation) ?? new Set()).add(l.split));
      assert.equal(l.split, splitOf(conversation, { testFraction: 0.5, seed: "test" }));
    }
    for (const set of sides.values()) assert.equal(set.size, 1);

    // The admin page counts the files and downloads each; only administrators reach it, and downloads are audited.
    const page = await t.request("/admin/training?format=llama2-meddialog&test=0&sources=on&chosen=1");
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<a href="\/admin\/training\/sft-train\.jsonl\?[^"]*" download="sft-train\.jsonl">/);
    assert.match(html, /From 3 conversations with feedback; 1 duplicate record left out/);
    const download = await t.request("/admin/training/preference-train.jsonl?format=llama2-meddialog&test=0");
    assert.equal(download.status, 200);
    assert.match(
      download.headers.get("content-disposition") ?? "",
      /attachment; filename="rounds-preference-train/,
    );
    const downloaded = (await download.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(downloaded.map((l) => l.origin).sort(), ["correction", "versions"]);
    for (const identifier of IDENTIFIERS) assert.doesNotMatch(JSON.stringify(downloaded), identifier);
    const audited = await listAudit(db, { action: "training.export" }, 10);
    assert.deepEqual(audited.map((e) => [e.actor, e.objectType, e.objectId, e.outcome]), [
      ["admin@example.test", "training", "preference-train.jsonl", "200"],
    ]);
    const refused = await t.request("/admin/training?format=alpaca");
    assert.equal(refused.status, 422);
    assert.match(await refused.text(), /Unknown template &quot;alpaca&quot;|Unknown template "alpaca"/);
    assert.equal((await t.request("/admin/training/secrets.jsonl")).status, 404);
    const clinician = await t.addUser("clinician");
    assert.equal((await clinician.request("/admin/training")).status, 403);
  }, { env: { INFERENCE_TEMPLATE: "llama2-meddialog" } });
});

Deno.test("training: a reply written without a model is never a target, but a correction of one still is", async () => {
  const now = new Date();
  const base = {
    sessionId: "c1",
    status: "completed" as const,
    finishReason: null,
    redFlags: null,
    redactions: null,
    error: null,
    clientId: null,
    model: null,
    outputTokens: 0,
    stopRequested: false,
    superseded: false,
    feedback: null,
    correction: null,
    evidence: null,
    evidenceNote: null,
    createdAt: now,
    updatedAt: now,
  };
  const rows = [
    {
      ...base,
      id: "q1",
      seq: 1,
      role: "user" as const,
      content: "Haddad has a chest infection: dose of amoxicillin?",
      replyTo: null,
    },
    {
      ...base,
      id: "a1",
      seq: 2,
      role: "assistant" as const,
      content: "No model is connected…",
      replyTo: "q1",
      finishReason: "no_model",
      feedback: 1,
    },
    { ...base, id: "q2", seq: 3, role: "user" as const, content: "And for a child?", replyTo: null },
    {
      ...base,
      id: "a2",
      seq: 4,
      role: "assistant" as const,
      content: "No model is connected…",
      replyTo: "q2",
      finishReason: "no_model",
      correction: "Weight-based: check the local formulary. Mr Haddad is 80, so check his renal function.",
    },
    {
      ...base,
      id: "q3",
      seq: 5,
      role: "user" as const,
      content: "Anything else?",
      replyTo: null,
    },
    {
      ...base,
      id: "a3",
      seq: 6,
      role: "assistant" as const,
      content: "Partial",
      replyTo: "q3",
      status: "stopped" as const,
      feedback: 1,
    },
  ];
  const lines: string[] = [];
  const writer = trainingWriter({
    template: BUILTIN_TEMPLATES.mistral,
    testFraction: 0,
    seed: "s",
    write: (_kind, _split, line) => void lines.push(line),
  });
  const { examples, skipped } = await examplesFromFeedback(new Map([["c1", rows]]), new Map(), {
    systemPrompt: "Be careful.",
  });
  assert.deepEqual(examples.map((e) => [e.kind, e.origin]), [["sft", "correction"]]);
  assert.deepEqual(skipped, {
    "marked good, but written without a model": 1,
    "marked good, but the reply did not finish": 1,
  });
  for (const e of examples) await writer.add(e);
  const record = JSON.parse(lines[0]);
  // Mistral: the system text before the first turn; the retrieval-only reply is not in the history either
  // (it is the stored text the model would have been shown, so it is kept as it was served).
  // The name is learnt from the correction, written last, and still replaced in the first question.
  assert.match(
    record.prompt,
    /^\[INST\] Be careful\.\n\n\[NAME_1\] has a chest infection: dose of amoxicillin\?/,
  );
  assert.equal(
    record.completion,
    "Weight-based: check the local formulary. Mr [NAME_1] is 80, so check his renal function.</s>",
  );
  assert.doesNotMatch(lines.join(""), /Haddad/);
  const again = formatExample(examples[0], BUILTIN_TEMPLATES.mistral);
  assert.equal(again.id, record.id, "the same example, the same id");
});

Deno.test("training: deno task export converts a dataset file, redacted and deduplicated, with a manifest", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "healthcaremagic.json");
    const record = (input: string, output: string) => ({ instruction: "Answer the patient.", input, output });
    await Deno.writeTextFile(
      file,
      JSON.stringify([
        record(
          "I am John Carter (NHS 943 476 5919). My ankle is swollen after a fall.",
          "Ice, rest, X-ray if you cannot bear weight.",
        ),
        record(
          "I am John Carter (NHS 943 476 5919). My ankle is swollen after a fall.",
          "Ice, rest, X-ray if you cannot bear weight.",
        ),
        record(
          "Tengo fiebre y tos desde hace tres días, ¿qué hago?",
          "Beba líquidos; consulte si tiene dificultad para respirar.",
        ),
        record("", "An answer with no question."),
      ]),
    );
    const out = join(dir, "out");
    const run = async (...args: string[]) => {
      const result = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "tasks/export.ts", ...args],
        env: { DATA_DIR: join(dir, "data"), NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decode = (b: Uint8Array) => new TextDecoder().decode(b);
      return { code: result.code, stdout: decode(result.stdout), stderr: decode(result.stderr) };
    };
    const done = await run(
      "training",
      "--dataset",
      file,
      "--out",
      out,
      "--template",
      "llama2-meddialog",
      "--test-fraction",
      "0",
    );
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /SFT: +2 train, 0 held out/);
    assert.match(done.stdout, /1 duplicate record\(s\) dropped/);
    assert.match(done.stdout, /skipped 1: empty "input"/);
    const manifest = JSON.parse(await Deno.readTextFile(join(out, "manifest.json")));
    assert.equal(manifest.template, "llama2-meddialog");
    assert.deepEqual(manifest.files, { "sft-train.jsonl": 2 });
    assert.equal(manifest.duplicates_dropped, 1);
    const lines = (await Deno.readTextFile(join(out, "sft-train.jsonl"))).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(lines.length, 2);
    assert.match(lines[0].prompt, /^\[INST\]I am \[NAME_1\] \(NHS \[[A-Z_]+_1\]\)\. My ankle is swollen/);
    assert.equal(lines[0].completion, "Ice, rest, X-ray if you cannot bear weight.</s>");
    assert.match(lines[1].prompt, /Tengo fiebre y tos desde hace tres días/);
    assert.doesNotMatch(JSON.stringify(lines), /Carter|943 476 5919/);

    const nothing = await run("training", "--out", join(dir, "empty"));
    assert.equal(nothing.code, 0, nothing.stderr);
    assert.match(nothing.stdout, /Nothing to write yet: no reply has been marked good or corrected/);

    const wrong = await run("training", "--test-fraction", "2");
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--test-fraction must be a number from 0 to 0.5/);
    const unknown = await run("training", "--template", "alpaca");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown template "alpaca": use chat, llama2-chat/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
