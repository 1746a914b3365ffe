/**
 * Rounds against a real llama.cpp `llama-server` (tests/support/llama_server.ts): chat answers through the raw default
 * template and the chat API, Stop, teaching cases constrained on both routes, practice and its debrief, a
 * reasoning model, a small context and exactly one BOS. Random weights write word salad: these tests check what
 * the server was sent and what the clinician gets, never answer quality.
 */
import assert from "node:assert/strict";
import { seedExampleCases } from "../cases/library.ts";
import { listMessages } from "../db/messages.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { createInferenceProbe } from "../inference/health.ts";
import { HX } from "./support/chat_helpers.ts";
import { ignoreWithoutLlama, type LlamaServer, withLlamaServer } from "./support/llama_server.ts";
import { readAll, sseReader } from "./support/sse_client.ts";
import { createTestApp, DRIVER, type TestApp } from "./support/test_app.ts";

/** What the model clients sent, request by request. */
function recorder() {
  const sent: { path: string; body: Record<string, unknown> }[] = [];
  const fetchFn: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (typeof init?.body === "string") {
      try {
        sent.push({ path: url.pathname, body: JSON.parse(init.body) });
      } catch { /* not JSON */ }
    }
    return fetch(input, init);
  };
  return { sent, fetch: fetchFn };
}

/** Runs fn with an app pointed at a llama-server. */
async function withApp(
  server: LlamaServer,
  env: Record<string, string>,
  fn: (t: TestApp, sent: { path: string; body: Record<string, unknown> }[]) => Promise<void>,
) {
  const rec = recorder();
  const t = await createTestApp({ env: { INFERENCE_URL: server.url, ...env }, fetch: rec.fetch });
  try {
    await fn(t, rec.sent);
  } finally {
    await t.close();
  }
}

function post(
  t: TestApp,
  path: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return t.request(path, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

async function newSession(t: TestApp): Promise<string> {
  const response = await post(t, "/sessions", {});
  return /^\/sessions\/([0-9a-f-]{36})$/.exec(response.headers.get("location") ?? "")![1];
}

/** Tokens llama-server makes of a prompt as it would for a completion (BOS added, special tokens parsed). */
async function tokenize(server: LlamaServer, content: string): Promise<number[]> {
  const response = await fetch(`${server.url}/tokenize`, {
    method: "POST",
    body: JSON.stringify({ content, add_special: true, parse_special: true }),
  });
  return (await response.json()).tokens;
}

/** A clinician's message as it is pasted: a lab table with tabs and NBSPs, Unicode digits, other scripts. */
const MESSY = "Pt 67F, CKD3. Labs (pasted):\nDate\tCr\teGFR\tK\n01/03\t142\u00a0µmol/L\t38\t5.4\n" +
  "15/03\t168\u00a0µmol/L\t31\t５.９\nBP 152/94, HR ٨٨. 血压高。 ¿Suspender el IECA? Next steps?";

const ignore = ignoreWithoutLlama;
const opts = { ignore, sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    `llama-server [${DRIVER}]: a chat answer streams and is stored through the raw default template, with one BOS`,
  ...opts,
  fn: async () => {
    await withLlamaServer({}, async (server) => {
      await withApp(server, {}, async (t, sent) => {
        const id = await newSession(t);
        const events = await readAll(await post(t, `/sessions/${id}/messages`, { content: MESSY }, HX));
        assert.equal(events.at(-1)?.event, "done");
        const [user, reply] = await listMessages(t.database.db, id);
        assert.equal(user.content, MESSY, "the clinician's text is stored as typed");
        assert.equal(reply.status, "completed", reply.error ?? "");
        assert.ok(reply.content.length > 0, "the model's text is stored");
        assert.ok(reply.outputTokens > 0, "tokens counted");
        assert.match(
          events.map((e) => e.data).join(""),
          /msg assistant/,
          "the stored reply replaced the live slot",
        );

        const request = sent.find((r) => r.path === "/v1/completions")!;
        const prompt = request.body.prompt as string;
        assert.ok(prompt.startsWith("[INST]"), `the server adds BOS itself: ${prompt.slice(0, 20)}`);
        assert.match(
          prompt,
          /\[\/INST\]\n$/,
          "the MedDialog format, ending where the doctor's answer begins",
        );
        assert.equal(request.body.model, (await (await fetch(`${server.url}/v1/models`)).json()).data[0].id);
        assert.deepEqual(request.body.stream_options, { include_usage: true });
        const tokens = await tokenize(server, prompt);
        assert.equal(tokens[0], 1, "BOS first");
        assert.notEqual(tokens[1], 1, "and only once");
        assert.doesNotMatch(server.log(), /2 BOS tokens/);
      });
    });
  },
});

Deno.test({
  name: `llama-server [${DRIVER}]: a chat answer through the chat API, tokens from the server's usage`,
  ...opts,
  fn: async () => {
    await withLlamaServer({}, async (server) => {
      await withApp(
        server,
        { INFERENCE_TEMPLATE: "chat", INFERENCE_MAX_NEW_TOKENS: "40" },
        async (t, sent) => {
          const id = await newSession(t);
          const events = await readAll(await post(t, `/sessions/${id}/messages`, { content: MESSY }, HX));
          assert.equal(events.at(-1)?.event, "done");
          const reply = (await listMessages(t.database.db, id)).at(-1)!;
          assert.equal(reply.status, "completed", reply.error ?? "");
          assert.ok(reply.outputTokens > 0 && reply.outputTokens <= 40, `usage: ${reply.outputTokens}`);
          const request = sent.find((r) => r.path === "/v1/chat/completions")!;
          const messages = request.body.messages as { role: string; content: string }[];
          assert.equal(messages[0].role, "system");
          assert.ok(messages.at(-1)!.content.includes("血压高"));
          assert.doesNotMatch(server.log(), /2 BOS tokens/);
        },
      );
    });
  },
});

Deno.test({
  name: `llama-server [${DRIVER}]: Stop cancels the server's task and keeps the text so far`,
  ...opts,
  fn: async () => {
    // A bigger model streams slowly (~30 tokens/s on one core); -l 2-100 keeps it from ever ending on its own.
    await withLlamaServer({
      model: { embd: 1024, layers: 8, ff: 2048, f16: true },
      args: ["-l", "2-100"],
    }, async (server) => {
      await withApp(server, { INFERENCE_MAX_NEW_TOKENS: "2000" }, async (t) => {
        const id = await newSession(t);
        const reader = sseReader(await post(t, `/sessions/${id}/messages`, { content: "Dry cough?" }, HX));
        let streamed = 0;
        while (streamed < 5) {
          const event = await reader.next();
          assert.ok(event, "the stream goes on");
          if (!event.event && !event.data.includes("hx-partial")) streamed++;
        }
        assert.equal((await server.slots()).some((s) => s.is_processing), true, "the server is generating");
        const stopped = await post(t, `/sessions/${id}/stop`, {}, HX);
        assert.ok(stopped.status < 300);
        await server.waitIdle(3000);
        while (await reader.next()) { /* drain to the end */ }
        const reply = (await listMessages(t.database.db, id)).at(-1)!;
        assert.equal(reply.status, "stopped");
        assert.ok(reply.content.length > 0, "the text so far is kept");
      });
    });
  },
});

/** The case form, as an educator fills it in. */
const CASE_FORM = {
  specialty: "Cardiology",
  setting: "Emergency department",
  difficulty: "intermediate",
  level: "medical student",
  focus: "Chest pain with ST elevation",
};

/** Generates a case over SSE; returns the final result fragment (the last message with data). */
async function generate(t: TestApp): Promise<string> {
  const response = await post(t, "/cases", CASE_FORM, HX);
  assert.equal(response.status, 200);
  const events = await readAll(response);
  assert.equal(events.at(-1)?.event, "done", "the stream says it ended");
  const final = events.filter((e) => !e.event && e.data).at(-1)?.data ?? "";
  assert.match(final, /generation-done|generation-failed/, `a final state, not a progress line: ${final}`);
  return final;
}

for (const template of ["llama2-meddialog", "chat"]) {
  Deno.test({
    name:
      `llama-server [${DRIVER}]: case generation (${template}) is held to the schema and ends in a final state`,
    ...opts,
    fn: async () => {
      await withLlamaServer({ model: { ctx: 8192 }, args: ["-c", "8192"] }, async (server) => {
        await withApp(server, { INFERENCE_TEMPLATE: template }, async (t, sent) => {
          const form = await (await t.request("/cases/new")).text();
          assert.doesNotMatch(form, /was not recognised/, "llama.cpp can be held to the case format");
          const final = await generate(t);
          const requests = sent.filter((r) => r.path.endsWith("completions"));
          assert.ok(requests.length >= 1 && requests.length <= 3, `${requests.length} attempts`);
          for (const { body } of requests) {
            if (template === "chat") {
              assert.equal((body.response_format as { type: string }).type, "json_schema");
              assert.equal((body.messages as { role: string }[])[0].role, "system");
            } else {
              assert.ok(body.json_schema, "llama.cpp's json_schema on /v1/completions");
              const prompt = body.prompt as string;
              assert.match(
                prompt,
                /You write hypothetical patient cases/,
                "the case instructions reach the model",
              );
              assert.match(prompt, /"finalDiagnosis"/, "the prompt names the fields");
            }
          }
          // Held to the schema, random weights still write valid JSON that the checks may refuse.
          if (final.includes("generation-failed")) {
            assert.match(final, /nothing was saved/i);
            assert.doesNotMatch(final, /trying again/);
          }
        });
      });
    },
  });
}

Deno.test({
  name: `llama-server [${DRIVER}]: practice against the simulated patient, then the debrief`,
  ...opts,
  fn: async () => {
    await withLlamaServer({}, async (server) => {
      await withApp(server, { INFERENCE_MAX_NEW_TOKENS: "48" }, async (t, sent) => {
        await seedExampleCases(t.database.db, createLexicalEmbedder());
        const list = await (await t.request(`/cases?q=${encodeURIComponent("loin pain roofer")}`)).text();
        const caseId = /href="\/cases\/([0-9a-f-]{36})" class="case-title">Sudden severe right loin pain/
          .exec(list)![1];
        const started = await post(t, `/cases/${caseId}/practice`, {});
        const id = /^\/sessions\/([0-9a-f-]{36})$/.exec(started.headers.get("location")!)![1];
        const events = await readAll(
          await post(t, `/sessions/${id}/messages`, { content: "When did the pain start?" }, HX),
        );
        assert.equal(events.at(-1)?.event, "done");
        const reply = (await listMessages(t.database.db, id)).at(-1)!;
        assert.equal(reply.status, "completed", reply.error ?? "");
        assert.ok(reply.content.length > 0);
        const rolePrompt = sent.at(-1)!.body.prompt as string;
        assert.match(rolePrompt, /The doctor says: When did the pain start\?/);

        assert.equal((await post(t, `/sessions/${id}/debrief`, {})).status, 303);
        const debrief = await (await t.request(`/sessions/${id}/debrief`)).text();
        assert.match(debrief, /History items elicited/);
        assert.match(debrief, /The model’s narrative feedback/);
        const feedbackPrompt = sent.at(-1)!.body.prompt as string;
        assert.match(
          feedbackPrompt,
          /experienced clinical teacher/,
          "the teacher's instructions reach the model",
        );
        assert.doesNotMatch(server.log(), /2 BOS tokens/);
      });
    });
  },
});

Deno.test({
  name: `llama-server [${DRIVER}]: a reasoning model's thinking is not the answer; all thinking says so`,
  ...opts,
  fn: async () => {
    // The --think vocabulary: </s> 2, <|im_start|> 3, <|im_end|> (EOS) 4 and </think> 6 end a generation or a
    // thought; forbidding them keeps the model thinking until its allowance runs out.
    await withLlamaServer({
      model: { think: true },
      args: ["--reasoning-format", "deepseek", "-l", "2-100", "-l", "3-100", "-l", "4-100", "-l", "6-100"],
    }, async (server) => {
      const probe = await tokenize(server, "</think><|im_end|>");
      assert.deepEqual(probe.slice(-2), [6, 4], "the special token ids this test relies on");
      await withApp(server, { INFERENCE_TEMPLATE: "chat", INFERENCE_MAX_NEW_TOKENS: "48" }, async (t) => {
        const id = await newSession(t);
        const events = await readAll(
          await post(t, `/sessions/${id}/messages`, { content: "Dry cough?" }, HX),
        );
        const data = events.map((e) => e.data).join("\n");
        assert.match(data, /live-reasoning-text/, "the thinking streamed into the Reasoning section");
        const reply = (await listMessages(t.database.db, id)).at(-1)!;
        assert.equal(reply.content, "", "thinking is not stored as the answer");
        assert.equal(reply.status, "error");
        assert.equal(reply.finishReason, "no_answer");
        assert.match(
          reply.error ?? "",
          /spent its whole allowance \(48 tokens\) thinking and wrote no answer/,
        );
        assert.equal(reply.outputTokens, 48, "thinking counts against the budget");
      });
    });
  },
});

Deno.test({
  name:
    `llama-server [${DRIVER}]: a 512-token server: its size is read, a long message is fitted, a longer one refused plainly`,
  ...opts,
  fn: async () => {
    await withLlamaServer({ args: ["-c", "512"] }, async (server) => {
      await withApp(server, {}, async (t, sent) => {
        const id = await newSession(t);
        const trend = Array.from({ length: 6 }, (_, i) => `0${i + 1}/03 Cr ${140 + i * 9} eGFR ${40 - i}`)
          .join("; ");
        const events = await readAll(
          await post(t, `/sessions/${id}/messages`, { content: `Trend: ${trend}` }, HX),
        );
        assert.equal(events.at(-1)?.event, "done");
        let reply = (await listMessages(t.database.db, id)).at(-1)!;
        assert.equal(reply.status, "completed", reply.error ?? "");
        const maxTokens = sent.at(-1)!.body.max_tokens as number;
        const promptTokens = (await tokenize(server, sent.at(-1)!.body.prompt as string)).length;
        assert.ok(promptTokens + maxTokens <= 512, `${promptTokens} + ${maxTokens} fit in 512`);

        const huge = `Pasted notes: ${"BP 152/94 HR 88 SpO2 93% on air; ".repeat(60)}`;
        await readAll(await post(t, `/sessions/${id}/messages`, { content: huge }, HX));
        reply = (await listMessages(t.database.db, id)).at(-1)!;
        assert.equal(reply.status, "error");
        assert.match(reply.error ?? "", /too long for the model/);
        assert.doesNotMatch(reply.error ?? "", /try increasing it|exceed_context_size/);
      });
      // Configured larger than the server really is: the refusal teaches the real size, and the answer comes.
      await withApp(
        server,
        { INFERENCE_CONTEXT_SIZE: "4096", INFERENCE_MAX_NEW_TOKENS: "64" },
        async (t, sent) => {
          const id = await newSession(t);
          const long = (n: number) =>
            `Visit ${n}: ${"episodes of chest tightness on exertion, relieved by rest; ".repeat(6)}`;
          for (const n of [1, 2, 3]) {
            await readAll(await post(t, `/sessions/${id}/messages`, { content: long(n) }, HX));
            const reply = (await listMessages(t.database.db, id)).at(-1)!;
            assert.equal(reply.status, "completed", `visit ${n}: ${reply.error}`);
          }
          const [refused, refitted] = sent.filter((r) => r.path === "/v1/completions").slice(-2);
          assert.ok((refused.body.prompt as string).includes("Visit 1"), "the first try carried the history");
          assert.ok((refitted.body.prompt as string).includes("Visit 3"));
          assert.ok(
            !(refitted.body.prompt as string).includes("Visit 1"),
            "the refit dropped the oldest turn",
          );
          assert.match(
            server.log(),
            /exceeds the available context size/,
            "the server did refuse the first try",
          );
        },
      );
    });
  },
});

Deno.test({
  name: `llama-server [${DRIVER}]: a key the server refuses is named in /healthz and in the reply`,
  ...opts,
  fn: async () => {
    await withLlamaServer({ args: ["--api-key", "right-key"] }, async (server) => {
      const wrong = createInferenceProbe([{ url: server.url, token: "wrong-key" }]);
      assert.equal(await wrong(), "unauthorized", "llama.cpp's /health is public; /v1/models is not");
      assert.equal(await createInferenceProbe([{ url: server.url, token: "right-key" }])(), "ok");
      await withApp(server, { HF_TOKEN: "wrong-key" }, async (t) => {
        const id = await newSession(t);
        await readAll(await post(t, `/sessions/${id}/messages`, { content: "Dry cough?" }, HX));
        const reply = (await listMessages(t.database.db, id)).at(-1)!;
        assert.equal(reply.status, "error");
        assert.match(
          reply.error ?? "",
          /refused the request \(HTTP 401: Invalid API Key\): an operator needs to check the key in HF_TOKEN/,
        );
      });
    });
  },
});
