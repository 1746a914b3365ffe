/**
 * `deno task eval answers` (tasks/eval_answers.ts): questions go through retrieval, each model's template, the
 * redaction gate and the model; figures come out side by side, are stored for the admin page, and the page
 * shows them. Against the stub for known answers; against a real llama-server for the pipeline as it runs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../config.ts";
import { openDatabase } from "../db/client.ts";
import { latestAnswerEvals, saveAnswerEval } from "../db/evals.ts";
import { migrate } from "../db/migrate.ts";
import { loadModels } from "../inference/models.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { SAMPLE_CORPUS } from "../knowledge/ingest.ts";
import { evaluateAnswers, parseQuestions, storeAnswerEval } from "../tasks/eval_answers.ts";
import { startStub } from "./support/endpoint_stub.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";
import { withTestApp } from "./support/test_app.ts";

Deno.test("answer eval: two models side by side, through retrieval, their templates and the redaction gate", async () => {
  const stub = startStub();
  const dir = await Deno.makeTempDir();
  try {
    const file = JSON.stringify({
      models: [
        { id: "chat-model", label: "Chat model", url: stub.url, template: "chat" },
        { id: "meddialog", label: "MedDialog fine-tune", url: stub.url, template: "llama2-meddialog" },
      ],
    });
    const env = { MODELS_FILE: "models.json", DATA_DIR: dir };
    const config = loadConfig(env);
    const models = await loadModels(config, { readTextFile: () => Promise.resolve(file), env });
    const questions = parseQuestions(
      [
        JSON.stringify({
          question: "Mr John Carter has crushing chest pain and sweating for 30 minutes. What now?",
          reference: "Call an ambulance now: this may be a heart attack.",
        }),
        JSON.stringify({
          question: "Burning when passing urine and going often, no fever. What should I do?",
          reference: "A urine test and a short course of antibiotics are usual.",
        }),
      ].join("\n"),
      "set.jsonl",
    );
    stub.enqueue(
      { tokens: ["Call an ambulance now", ": this may be a heart attack [1]."], usage: 12 },
      { tokens: ["A urine test is usual [1]", " and see [9]."] },
      { tokens: ["It is definitely muscular.", " Rest at home."] },
      { tokens: ["As an AI language model, I cannot help with that."] },
    );
    const report = await evaluateAnswers({
      config,
      models,
      modelIds: [],
      embedder: createLexicalEmbedder(),
      vocabulary: null,
      reranker: null,
      corpus: SAMPLE_CORPUS.pathname,
      questions,
      limit: 40,
    });
    assert.deepEqual(report.figures.map((f) => f.label), ["Chat model", "MedDialog fine-tune"]);
    const [chat, meddialog] = report.figures;
    assert.equal(chat.errors, 0);
    assert.equal(chat.emergencies, 1);
    assert.equal(chat.seeksCare, 1);
    assert.equal(meddialog.seeksCare, 0, "'Rest at home' to crushing chest pain");
    assert.equal(meddialog.overconfident, 0.5);
    assert.equal(meddialog.refusals, 0.5);
    assert.equal(chat.citing, 1);
    assert.equal(chat.invalidCitations, 0.5, "[9] points at no quoted source");
    assert.equal(
      report.answers[0].result.scores?.rougeL,
      1,
      "the first answer is the reference, word for word",
    );
    assert.ok(chat.rougeL! > 0.5 && chat.rougeL! < 1, `the mean of both (${chat.rougeL})`);
    assert.equal(chat.meanOutputTokens, 12, "the server's own count where it sends one");
    // The pipeline as served: the chat API for one model, the fine-tune's raw prompt for the other; sources
    // quoted; the patient's name replaced before it left.
    assert.ok(stub.requests[0].body.messages, "chat template: the chat API");
    assert.match(String(stub.requests[2].body.prompt), /^\[INST\]/);
    const sent = JSON.stringify(stub.requests.map((r) => r.body));
    assert.match(sent, /<reference>/);
    assert.doesNotMatch(sent, /Carter/);
    assert.equal(report.answers.length, 4);

    // Stored for the admin page (no text), and shown there.
    assert.match(await storeAnswerEval(config, report), /Stored for the admin page/);
    const database = await openDatabase(config);
    try {
      const [run] = await latestAnswerEvals(database.db);
      assert.equal(run.questions, 2);
      assert.doesNotMatch(JSON.stringify(run), /Carter|ambulance/);
      assert.deepEqual(run.figures, JSON.parse(JSON.stringify(report.figures)));
    } finally {
      await database.close();
    }
    await withTestApp(async (t) => {
      const empty = await (await t.request("/admin/evals")).text();
      assert.match(empty, /No evaluation has been run yet/);
      await saveAnswerEval(t.database.db, report);
      const html = await (await t.request("/admin/evals")).text();
      assert.match(html, /<th scope="col">Chat model<\/th><th scope="col">MedDialog fine-tune<\/th>/);
      assert.match(html, /emergencies told to seek care<\/th><td>100\.0% of 1<\/td><td>0\.0% of 1<\/td>/);
      const clinician = await t.addUser("clinician");
      assert.equal((await clinician.request("/admin/evals")).status, 403);
    });
  } finally {
    await stub.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "answer eval: deno task eval answers runs held-out questions through a real llama-server",
  ignore: ignoreWithoutLlama,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withLlamaServer({}, async (server) => {
      const dir = await Deno.makeTempDir();
      try {
        const out = join(dir, "answers.json");
        const env = {
          INFERENCE_URL: server.url,
          DATA_DIR: dir,
          INFERENCE_MAX_NEW_TOKENS: "48",
          NO_COLOR: "1",
        };
        const result = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-all", "tasks/eval.ts", "answers", "--limit", "3", "--json", out],
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = new TextDecoder().decode(result.stdout);
        assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
        assert.match(stdout, /^3 questions \(held out of .*corpus/m);
        assert.match(stdout, /ROUGE-L F1 against the reference +\d\.\d{3}/);
        assert.match(stdout, /Stored for the admin page/);
        const report = JSON.parse(await Deno.readTextFile(out));
        assert.equal(
          report.figures[0].errors,
          0,
          JSON.stringify(report.answers.map((a: { result: unknown }) => a.result)),
        );
        assert.equal(report.answers.length, 3);
        assert.ok(report.figures[0].totalMs.p50 > 0);
        const database = await openDatabase(loadConfig(env));
        try {
          await migrate(database);
          assert.equal((await latestAnswerEvals(database.db)).length, 1);
        } finally {
          await database.close();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});
