import assert from "node:assert/strict";
import {
  fitPrompt,
  PromptTooLongError,
  retryDecision,
  type RetryLimits,
  splitThinking,
} from "../inference/completion.ts";
import { EndpointError, type StreamChunk } from "../inference/endpoint.ts";
import {
  BUILTIN_TEMPLATES,
  promptForServer,
  type PromptInput,
  type RawTemplate,
} from "../inference/templates.ts";
import { localTokenCounter, type TokenCounter } from "../inference/tokenizer.ts";

const llama2 = await localTokenCounter("llama2", { readTextFile: Deno.readTextFile });
const raw = (name: string) => BUILTIN_TEMPLATES[name] as RawTemplate;

/** A counter that records how often it was asked. */
function counting(inner: TokenCounter) {
  let calls = 0;
  const counter: TokenCounter = {
    description: inner.description,
    exact: inner.exact,
    count: (texts, signal) => {
      calls++;
      return inner.count(texts, signal);
    },
  };
  return { counter, calls: () => calls };
}

const tokensOf = async (template: RawTemplate, input: PromptInput) =>
  (await llama2.count([promptForServer(template, input)]))[0] + 1;

Deno.test("fitPrompt: a prompt whose bytes fit is not counted at all", async () => {
  const { counter, calls } = counting(llama2);
  const input: PromptInput = { system: "", history: [], question: "Dry cough for two weeks?" };
  const fitted = await fitPrompt(raw("llama2-meddialog"), input, {
    contextSize: 4096,
    maxNewTokens: 512,
    counter,
  });
  assert.equal(calls(), 0);
  assert.equal(fitted.maxNewTokens, 512);
  assert.equal(fitted.droppedTurns, 0);
});

Deno.test("fitPrompt: drops the oldest turns first (counted by the tokenizer), never the question", async () => {
  const history = Array.from(
    { length: 12 },
    (_, i) => ({
      user: `Question ${i}: creatinine 1${i}8 µmol/L `.repeat(8),
      assistant: `Answer ${i} `.repeat(30),
    }),
  );
  const input: PromptInput = { system: "SYS", history, question: "What now?" };
  const template = raw("llama2-chat");
  const { counter, calls } = counting(llama2);
  const fitted = await fitPrompt(template, input, { contextSize: 1024, maxNewTokens: 256, counter });
  assert.ok(fitted.droppedTurns > 0 && fitted.droppedTurns < 12, `dropped ${fitted.droppedTurns}`);
  assert.ok(calls() <= 6, `a binary search, not one count per turn (${calls()})`);
  assert.deepEqual(fitted.input.history, history.slice(fitted.droppedTurns), "the newest turns are kept");
  assert.equal(fitted.input.question, "What now?");
  assert.ok(fitted.exact);
  const used = await tokensOf(template, fitted.input);
  assert.ok(used + fitted.maxNewTokens <= 1024, `${used} + ${fitted.maxNewTokens} fit in 1024`);
  // One more turn would not have left the answer its room.
  const oneMore = { ...input, history: history.slice(fitted.droppedTurns - 1) };
  assert.ok((await tokensOf(template, oneMore)) + 256 > 1024 - 8);
});

Deno.test("fitPrompt: references go lowest rank first; a small context gives the answer what is left; then refuses", async () => {
  const template = raw("llama2-meddialog");
  const fitted = await fitPrompt(template, {
    system: "",
    history: [],
    question: "Short?",
    references: [
      "[1] best " + "x ".repeat(100),
      "[2] next " + "y ".repeat(400),
      "[3] last " + "z ".repeat(400),
    ],
  }, { contextSize: 512, maxNewTokens: 128, counter: llama2 });
  assert.equal(fitted.droppedReferences, 2);
  assert.deepEqual(fitted.input.references?.map((r: string) => r.slice(0, 8)), ["[1] best"]);

  // 512 tokens and an answer that asks for 512: the prompt gets at most half, the answer the rest.
  const small = await fitPrompt(template, { system: "", history: [], question: "BP 152/94 ".repeat(30) }, {
    contextSize: 512,
    maxNewTokens: 512,
    counter: llama2,
  });
  assert.ok(small.maxNewTokens < 512 && small.maxNewTokens >= 128, `granted ${small.maxNewTokens}`);
  assert.ok(small.promptTokens + small.maxNewTokens <= 512);

  await assert.rejects(
    () =>
      fitPrompt(template, { system: "", history: [], question: "long ".repeat(1000) }, {
        contextSize: 512,
        maxNewTokens: 128,
        counter: llama2,
      }),
    (error: unknown) => {
      assert.ok(error instanceof PromptTooLongError);
      assert.match(error.message, /This message is too long for the model: about 1,0\d\d tokens/);
      assert.match(error.message, /context \(512 tokens\)/);
      return true;
    },
  );
});

async function collect(chunks: StreamChunk[], startsInThought = false) {
  async function* source() {
    for (const chunk of chunks) yield chunk;
  }
  let text = "";
  let reasoning = "";
  for await (const chunk of splitThinking(source(), startsInThought)) {
    text += chunk.text;
    reasoning += chunk.reasoning ?? "";
  }
  return { text, reasoning };
}

Deno.test("splitThinking: <think> blocks become reasoning, split anywhere; other text passes", async () => {
  const pieces = (s: string) => s.match(/[\s\S]{1,3}/g)!.map((text) => ({ text, finishReason: null }));
  assert.deepEqual(await collect(pieces("  <think>Is it viral?</think>\n\nRest and fluids.")), {
    text: "Rest and fluids.",
    reasoning: "Is it viral?",
  });
  assert.deepEqual(await collect(pieces("Plain answer <think> not a thought")), {
    text: "Plain answer <think> not a thought",
    reasoning: "",
  });
  assert.deepEqual(await collect(pieces("thinking on and on"), true), {
    text: "",
    reasoning: "thinking on and on",
  });
  assert.deepEqual(
    await collect([{ text: "", reasoning: "server split", finishReason: null }, {
      text: "A",
      finishReason: "stop",
    }]),
    { text: "A", reasoning: "server split" },
  );
});

const LIMITS: RetryLimits = {
  maxAttempts: 4,
  retryBaseMs: 1000,
  maxRetryWaitMs: 20_000,
  coldStartMs: 600_000,
};

Deno.test("retryDecision: a waking server is waited for minutes, a rate limit a few times, a refusal never", () => {
  const waking = new EndpointError("unavailable", "The model is waking up", 503);
  for (const attempt of [1, 5, 20]) {
    const decision = retryDecision(waking, attempt, 120_000, LIMITS);
    assert.ok(decision, `attempt ${attempt} after 2 minutes still waits`);
    assert.match(decision.message, /waking up or loading \(waiting 120 s so far\)/);
  }
  assert.equal(retryDecision(waking, 30, 600_000, LIMITS), null, "gives up after coldStartMs");
  const limited = new EndpointError("rate_limited", "Rate limited", 429, 3000);
  assert.equal(retryDecision(limited, 1, 0, LIMITS)?.waitMs, 3000, "Retry-After is honoured");
  const now = new EndpointError("unavailable", "Loading", 503, 0);
  assert.equal(retryDecision(now, 1, 0, LIMITS)?.waitMs, 1000, "Retry-After: 0 is not a busy loop");
  assert.equal(retryDecision(limited, 4, 0, LIMITS), null);
  assert.equal(retryDecision(new EndpointError("unauthorized", "401", 401), 1, 0, LIMITS), null);
});

Deno.test("fitPrompt: a limit on the prompt alone (TGI's max_input_tokens) is kept as well as the context", async () => {
  const history = Array.from(
    { length: 6 },
    (_, i) => ({ user: `Question ${i} `.repeat(30), assistant: "ok" }),
  );
  const input: PromptInput = { system: "", history, question: "What now?" };
  const fitted = await fitPrompt(raw("llama2-meddialog"), input, {
    contextSize: 4096,
    maxNewTokens: 256,
    maxPromptTokens: 300,
    counter: llama2,
  });
  assert.ok(fitted.promptTokens <= 300, `${fitted.promptTokens} ≤ 300`);
  assert.ok(fitted.droppedTurns > 0);
});
