/**
 * The redaction gate (safety/gate.ts): every prompt and every embedded text passes it, model clients send
 * nothing it did not release, and the only texts it lets through unchanged are the ones declared as authored,
 * in the places this file lists. Issue 19, item 1.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../config.ts";
import { streamGeneration } from "../inference/completion.ts";
import { loadModels } from "../inference/models.ts";
import type { PromptInput } from "../inference/templates.ts";
import { authored, createOutboundGate, UngatedRequestError } from "../safety/gate.ts";
import { startStub } from "./support/endpoint_stub.ts";

const IDENTIFIERS = /Kowalski|Anna|07700|900123|anna\.k@example\.org|12\/03\/1948|55120987/;

Deno.test("gate: identifiers are replaced in every part of a prompt, consistently across the parts", async () => {
  const gate = createOutboundGate({ redact: true });
  const input: PromptInput = {
    system: "You are talking about Mrs Anna Kowalski, DOB 12/03/1948.",
    history: [{ user: "My patient Anna Kowalski has a cough.", assistant: "Ask Mrs Kowalski about fever." }],
    references: ["[1] Call 07700 900123 for Anna Kowalski's results."],
    question: "MRN 55120987: what next for Kowalski? Email anna.k@example.org.",
    answerPrefix: "For Mrs Kowalski,",
  };
  const out = await gate.prompt(input);
  const all = JSON.stringify(out);
  assert.doesNotMatch(all, IDENTIFIERS, all);
  assert.match(out.system, /\[NAME_1\]/);
  assert.match(out.history[0].assistant, /\[NAME_1\]/, "one value, one placeholder, across the parts");
  assert.match(out.answerPrefix!, /\[NAME_1\]/);
  assert.equal(
    input.question,
    "MRN 55120987: what next for Kowalski? Email anna.k@example.org.",
    "input untouched",
  );
});

Deno.test("gate: placeholders already in a prompt keep their numbers; new ones come after them", async () => {
  const gate = createOutboundGate({ redact: true });
  const out = await gate.prompt({
    system: "",
    history: [{ user: "[NAME_1] and [NAME_2] came in.", assistant: "Noted." }],
    question: "Now Mr Haddad is here too.",
  });
  assert.equal(out.history[0].user, "[NAME_1] and [NAME_2] came in.");
  assert.equal(out.question, "Now Mr [NAME_3] is here too.");
});

Deno.test("gate: only authored system text passes unchanged; with redaction off nothing is replaced", async () => {
  const gate = createOutboundGate({ redact: true });
  const script = "You are Mr Tomasz Haddad, 67, a hypothetical patient with chest pain.";
  assert.match((await gate.prompt({ system: script, history: [], question: "Hi" })).system, /\[NAME_1\]/);
  authored(script);
  assert.equal((await gate.prompt({ system: script, history: [], question: "Hi" })).system, script);
  const off = createOutboundGate({ redact: false });
  assert.equal((await off.prompt({ system: "", history: [], question: "Mr Haddad" })).question, "Mr Haddad");
  assert.deepEqual(await off.texts(["Mr Haddad"]), ["Mr Haddad"]);
});

Deno.test("gate: a text remembered as clean is redacted again when a name learned elsewhere recurs in it", async () => {
  const gate = createOutboundGate({ redact: true });
  const long = "Kowalski was reviewed in clinic and the plan was discussed at length. ".repeat(4);
  // No cue: "Kowalski" alone is not known to be a name, so this text is clean and remembered.
  assert.deepEqual(await gate.texts([long]), [long]);
  const [again, cue] = await gate.texts([long, "Mr Kowalski phoned."]);
  assert.equal(cue, "Mr [NAME_1] phoned.");
  assert.doesNotMatch(again, /Kowalski/, "the remembered text was checked again with the name known");
});

Deno.test("gate: a name a later text teaches is replaced in the texts before it, in any case", async () => {
  const gate = createOutboundGate({ redact: true });
  const long = "haddad was reviewed in clinic and the plan was discussed at length with him. ".repeat(4);
  const [earlier, short, cue] = await gate.texts([
    long,
    "HADDAD: INR 3.1",
    "Mr Haddad phoned about his warfarin.",
  ]);
  assert.equal(cue, "Mr [NAME_1] phoned about his warfarin.");
  assert.doesNotMatch(earlier, /haddad/i);
  assert.equal(short, "[NAME_1]: INR 3.1");
});

Deno.test("gate: the model client refuses a request the gate did not release, and sends nothing", async () => {
  const stub = startStub();
  try {
    const models = await loadModels(
      loadConfig({ INFERENCE_URL: stub.url, INFERENCE_TEMPLATE: "llama2-chat" }),
      {
        env: {},
        readTextFile: Deno.readTextFile,
      },
    );
    const spec = models.get(null)!;
    const client = models.client(spec);
    const handmade = {
      prompt: "Patient Anna Kowalski, phone 07700 900123",
      maxNewTokens: 8,
      temperature: 0,
      topP: 1,
      stop: [],
    };
    assert.throws(() => client.stream(handmade, AbortSignal.timeout(5000)), UngatedRequestError);
    // Releasing needs an input the gate produced: a hand-made one is refused too.
    assert.throws(
      () => models.gate.release(handmade, { system: "", history: [], question: "Anna" }),
      UngatedRequestError,
    );
    assert.equal(stub.requests.filter((r) => /completions|generate/.test(r.path)).length, 0);

    // A feature that forgets to redact and calls the model the only way there is: the model sees placeholders,
    // and so does the server's tokenizer.
    const input: PromptInput = {
      system: "Summarise for Mrs Anna Kowalski (MRN 55120987).",
      history: [],
      question: "Phone 07700 900123 or anna.k@example.org; DOB 12/03/1948.",
    };
    const chunks = streamGeneration(models, spec, input, { temperature: 0, topP: 1, maxNewTokens: 8 }, {
      signal: AbortSignal.timeout(10_000),
    });
    for await (const _ of chunks) { /* drain */ }
    const sent = stub.requests.map((r) => JSON.stringify(r.body)).join("\n");
    assert.ok(stub.requests.some((r) => /completions/.test(r.path)), "the generation was sent");
    assert.doesNotMatch(sent, IDENTIFIERS, sent);
  } finally {
    await stub.close();
  }
});

/** Source files of the product (not tests, not dependencies). */
async function productSources(): Promise<Map<string, string>> {
  const root = new URL("../", import.meta.url);
  const files = new Map<string, string>();
  const walk = async (dir: URL, rel: string) => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".") || ["node_modules", "tests", "vendor"].includes(entry.name)) continue;
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url, `${rel}${entry.name}/`);
      else if (/\.tsx?$/.test(entry.name)) files.set(`${rel}${entry.name}`, await Deno.readTextFile(url));
    }
  };
  await walk(root, "");
  return files;
}

Deno.test("gate: no code path reaches a model or embedding endpoint around the gate", async () => {
  const sources = await productSources();
  const callers = (pattern: RegExp) =>
    [...sources].filter(([, text]) => pattern.test(text)).map(([path]) => path).sort();
  // Endpoint clients are made in one place, which wraps each in the check above.
  assert.deepEqual(callers(/createEndpointClient\(/), ["inference/endpoint.ts", "inference/models.ts"]);
  // Generation requests are sent from one function, which gates the prompt and releases the request (models.ts
  // holds the check that refuses anything else).
  assert.deepEqual(callers(/\bclient\.stream\(/), ["inference/completion.ts", "inference/models.ts"]);
  // The remote embedder and the reranker redact inside themselves; nothing else builds one.
  assert.deepEqual(callers(/createEndpointEmbedder\(/), ["inference/embeddings.ts"]);
  assert.deepEqual(callers(/createReranker\(/), ["inference/rerank.ts"]);
  assert.match(sources.get("inference/rerank.ts")!, /await gate\.texts\(\[query, \.\.\.texts\]\)/);
  // Raw HTTP to a configured model, embedding or rerank address happens only in the inference clients (the
  // reranker's through its gate), server discovery and the health probe (which send no user text), and the
  // server tokenizer (which counts gated prompts only).
  assert.deepEqual(
    callers(/\bfetch(Fn)?\(\s*(?:`\$\{|target\.url|route\.url|url\b)/).filter((p) => !p.startsWith("bench/")),
    [
      "inference/embeddings.ts",
      "inference/endpoint.ts",
      "inference/health.ts",
      "inference/rerank.ts",
      "inference/server.ts",
      "inference/tokenizer.ts",
    ],
  );
  // The texts sent unredacted: the operator's system prompt, the case-writing instructions, the teacher's role,
  // and a practice case's patient (hypothetical, written by an educator). A new entry here needs a reason.
  assert.deepEqual(callers(/\bauthored\(/), [
    "cases/generate.ts",
    "cases/practice_session.ts",
    "chat/answer.ts",
    "safety/gate.ts",
  ]);
});
