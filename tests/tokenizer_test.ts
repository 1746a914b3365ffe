/**
 * Token counting: the estimate never undercounts Llama-2's tokenizer on the project's own text and on messy
 * clinical messages; Llama-2's vocabulary and a tokenizer.json count locally; a real llama-server's /tokenize is
 * used as it answers, and TGI's and vLLM's shapes through a stub; a server that fails is estimated, never thrown.
 */
import assert from "node:assert/strict";
import llamaTokenizer from "llama-tokenizer-js";
import {
  estimateCounter,
  estimateTokens,
  localTokenCounter,
  ONE_TOKEN_WORDS,
  serverTokenCounter,
} from "../inference/tokenizer.ts";
import { llama2Tokens, MESSY_MESSAGES, projectTexts } from "../tasks/eval_tokens.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";
import { freePort } from "./support/test_app.ts";

const files = { readTextFile: Deno.readTextFile };
const FIXTURE = new URL("./fixtures/tokenizer.json", import.meta.url).pathname;

/** Runs fn with console.warn captured; returns what was warned. */
async function capturingWarnings(fn: () => Promise<void>): Promise<string[]> {
  const warned: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warned.push(args.join(" "));
  try {
    await fn();
  } finally {
    console.warn = original;
  }
  return warned;
}

/** A stub server for the shapes a real one will not give on demand; records what it was sent. */
function stubServer(handler: (path: string, body: Record<string, unknown>) => Response | Promise<Response>) {
  const seen: { path: string; body: Record<string, unknown>; authorization: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const path = new URL(request.url).pathname;
    const body = await request.json();
    seen.push({ path, body, authorization: request.headers.get("authorization") });
    return await handler(path, body);
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test("estimateTokens: never below Llama-2's count on every text the project ships and on messy messages", async () => {
  const project = await projectTexts();
  const texts = [...project.map((t) => t.text), ...MESSY_MESSAGES];
  assert.ok(texts.length > 4500, `${texts.length} texts: the corpus, eval sets or cases were not all read`);
  const under = texts
    .map((text) => ({ text: text.slice(0, 60), estimate: estimateTokens(text), real: llama2Tokens(text) }))
    .filter((t) => t.estimate < t.real);
  assert.deepEqual(under, [], `${under.length} of ${texts.length} texts undercounted`);

  // Not wildly high on plain English: the corpus's doctors' answers, and one reply.
  const ratios = project.filter((t) => t.set === "corpus").map((t) =>
    estimateTokens(t.text) / llama2Tokens(t.text)
  )
    .sort((a, b) => a - b);
  const median = ratios[Math.floor(ratios.length / 2)];
  assert.ok(median < 1.7, `median estimate ÷ real on the corpus: ${median.toFixed(2)}`);
  const reply =
    "Thank you for your question. A dry cough after a cold often lasts three weeks; if you have " +
    "fever, breathlessness or blood in the sputum, please see your doctor within the next few days.";
  const ratio = estimateTokens(reply) / llama2Tokens(reply);
  assert.ok(ratio >= 1 && ratio < 1.7, `estimate ÷ real on a plain reply: ${ratio.toFixed(2)}`);
});

Deno.test("estimateTokens: a digit or a non-ASCII character is a token at least; never above UTF-8 bytes + 1", () => {
  assert.equal(estimateTokens(""), 0);
  const samples = [
    ...MESSY_MESSAGES,
    "١٢٣٤٥٦٧٨٩٠",
    "１２３",
    "٣٧٫٥",
    "🦙🦙🦙",
    "9",
    "a",
    "\u00a0\u2009\u202f",
    "0".repeat(500),
  ];
  for (const text of samples) {
    const estimate = estimateTokens(text);
    const floor = [...text].filter((c) => /[0-9]/.test(c) || c.codePointAt(0)! > 0x7f).length;
    assert.ok(estimate >= floor, `${JSON.stringify(text.slice(0, 30))}: ${estimate} < ${floor}`);
    assert.ok(estimate <= new TextEncoder().encode(text).length + 1, JSON.stringify(text.slice(0, 30)));
    assert.ok(estimate >= llama2Tokens(text), JSON.stringify(text.slice(0, 30)));
  }
  // Each word the estimate takes as one token is one in Llama-2, after a space.
  const split = [...ONE_TOKEN_WORDS].filter((w) => llamaTokenizer.encode(` ${w}`, false, false).length !== 1);
  assert.deepEqual(split, []);
  const counter = estimateCounter();
  assert.equal(counter.exact, false);
  assert.equal(counter.description, "estimate (errs high)");
});

Deno.test("localTokenCounter llama2: Llama-2's counts, with <s>, </s> and <unk> as one token each", async () => {
  const llama2 = await localTokenCounter("llama2", files);
  assert.equal(llama2.exact, true);
  assert.equal(llama2.description, "Llama-2 tokenizer (llama-tokenizer-js)");
  // llama-tokenizer-js's own cases: "grabbed" is ▁gr ab bed; a newline is ▁ and the byte <0x0A>; the llama emoji
  // is ▁ and its 4 UTF-8 bytes.
  assert.deepEqual(await llama2.count(["grabbed", "\n", "🦙", "镇", "Hello world", "BP 142/91", ""]), [
    3,
    2,
    5,
    2,
    2,
    9,
    0,
  ]);
  const [inst, withBos, bare, wrapped] = await llama2.count([
    "[INST]hi[/INST]",
    "<s>[INST]hi[/INST]",
    "hi",
    "<unk>hi</s>",
  ]);
  assert.equal(inst, 8);
  assert.equal(withBos, 1 + inst, "<s> is one token, and the text after it keeps its leading space");
  assert.equal(wrapped, 2 + bare);
});

Deno.test("localTokenCounter: a tokenizer.json counts with no specials added and special strings parsed", async () => {
  const local = await localTokenCounter(FIXTURE, files);
  assert.equal(local.exact, true);
  assert.match(local.description, /tokenizer\.json at .*fixtures\/tokenizer\.json/);
  // The fixture's BPE merges ▁chest and ▁pain whole and fuses unknown letters into one <unk>; its post-processor
  // would add <s>, which is not counted.
  assert.deepEqual(await local.count(["chest pain", "chest pains", "<s>chest</s>", "chest xyz", ""]), [
    2,
    3,
    3,
    3,
    0,
  ]);

  // No tokenizer_config.json beside it: still counts.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(FIXTURE, `${dir}/tokenizer.json`);
    const alone = await localTokenCounter(`${dir}/tokenizer.json`, files);
    assert.deepEqual(await alone.count(["chest pain"]), [2]);
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, "{not json");
    await assert.rejects(
      () => localTokenCounter(`${dir}/tokenizer.json`, files),
      /Cannot read .*tokenizer_config\.json beside the tokenizer/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(
    () => localTokenCounter("/nonexistent/tokenizer.json", files),
    /Cannot read the tokenizer \/nonexistent\/tokenizer\.json/,
  );
});

Deno.test({
  name: "serverTokenCounter: a real llama-server's /tokenize, its key sent, control tokens parsed as it does",
  ignore: ignoreWithoutLlama,
  fn: async () => {
    await withLlamaServer({ args: ["--api-key", "sekret"] }, async (server) => {
      const counter = serverTokenCounter({
        url: `${server.url}/v1`,
        token: "sekret",
        model: null,
        family: "llama.cpp",
      });
      assert.equal(counter.description, `llama.cpp /tokenize at ${server.url}`);
      assert.equal(counter.exact, true);
      const texts = [
        "<s>[INST]Dry cough[/INST]",
        "[INST]Dry cough[/INST]",
        "<unk>",
        ...MESSY_MESSAGES.slice(0, 9),
      ];
      const warned = await capturingWarnings(async () => {
        const counts = await counter.count(texts);
        for (const [i, text] of texts.entries()) {
          const response = await fetch(`${server.url}/tokenize`, {
            method: "POST",
            headers: { authorization: "Bearer sekret" },
            body: JSON.stringify({ content: text, add_special: false, parse_special: true }),
          });
          assert.equal(counts[i], (await response.json()).tokens.length, JSON.stringify(text.slice(0, 30)));
        }
        assert.equal(counts[0], counts[1] + 1, "<s> counts as the one BOS token");
        assert.equal(counts[2], 1, "<unk> is one control token");
      });
      assert.deepEqual(warned, []);

      // Without the key: a 401, so the estimate, and one line that says why.
      const keyless = serverTokenCounter({ url: server.url, token: null, model: null, family: "llama.cpp" });
      const lines = await capturingWarnings(async () => {
        assert.deepEqual(await keyless.count(["BP 142/91"]), [estimateTokens("BP 142/91")]);
      });
      assert.equal(lines.length, 1);
      assert.match(lines[0], /llama\.cpp http:\/\/127\.0\.0\.1:\d+\/tokenize failed \(HTTP 401: .+\)/);
    });
  },
});

Deno.test("serverTokenCounter: TGI's tokens without the BOS and EOS it adds, vLLM's count, both at the root", async () => {
  const stub = stubServer((_path, body) => {
    if (body.inputs !== undefined) {
      const words = String(body.inputs).split(" ");
      let at = 0;
      const tokens = words.map((w, i) => {
        const token = { id: 100 + i, text: w, start: at, stop: at + w.length };
        at += w.length + 1;
        return token;
      });
      // "eos" asks for an EOS at the end too, as a tokenizer with a template that adds both would.
      const eos = words.includes("eos") ? [{ id: 2, text: "", start: 0, stop: 0 }] : [];
      // "nooffsets" answers as TGI does when a tokenizer gives no offsets: every span empty.
      if (words.includes("nooffsets")) return Response.json(tokens.map((t) => ({ ...t, start: 0, stop: 0 })));
      return Response.json([{ id: 1, text: "", start: 0, stop: 0 }, ...tokens, ...eos]);
    }
    return Response.json({ count: String(body.prompt).split(" ").length, max_model_len: 4096, tokens: [] });
  });
  try {
    const tgi = serverTokenCounter({ url: `${stub.url}/v1/`, token: "hf_k", model: null, family: "tgi" });
    assert.deepEqual(await tgi.count(["chest pain now", "chest eos", "a nooffsets"]), [3, 2, 2]);
    assert.deepEqual(stub.seen[0], {
      path: "/tokenize",
      body: { inputs: "chest pain now" },
      authorization: "Bearer hf_k",
    });

    const vllm = serverTokenCounter({ url: stub.url, token: null, model: "meddialog", family: "vllm" });
    assert.deepEqual(await vllm.count(["a b", "c d e"]), [2, 3]);
    const last = stub.seen.at(-1)!;
    assert.equal(last.authorization, null);
    assert.deepEqual(last.body, { model: "meddialog", prompt: last.body.prompt, add_special_tokens: false });
    const unnamed = serverTokenCounter({ url: stub.url, token: null, model: null, family: "vllm" });
    await unnamed.count(["x"]);
    assert.deepEqual(stub.seen.at(-1)!.body, { prompt: "x", add_special_tokens: false });

    // Many texts, a few requests at a time, counts in order.
    const many = Array.from({ length: 25 }, (_, i) => Array.from({ length: i + 1 }, () => "w").join(" "));
    assert.deepEqual(await vllm.count(many), many.map((_, i) => i + 1));
  } finally {
    await stub.close();
  }
});

Deno.test("serverTokenCounter: down, 404, 5xx, slow or unreadable is estimated, logged once, and asked again", async () => {
  let mode: "404" | "500" | "slow" | "shape" | "ok" = "404";
  const stub = stubServer(async (_path, body) => {
    if (mode === "404") return new Response("Not Found", { status: 404 });
    if (mode === "500") return Response.json({ error: { message: "tokenizer crashed" } }, { status: 500 });
    if (mode === "slow") await new Promise((resolve) => setTimeout(resolve, 2500));
    if (mode === "shape") return Response.json({ tokens: "none" });
    return Response.json({ tokens: String(body.content).split(" ") });
  });
  const texts = ["BP 142/91, HR 104", "患者男性，65岁"];
  const estimated = texts.map(estimateTokens);
  try {
    const counter = serverTokenCounter({ url: stub.url, token: null, model: null, family: "llama.cpp" });
    const warned = await capturingWarnings(async () => {
      assert.deepEqual(await counter.count(texts), estimated, "a 404 is estimated, not thrown");
      mode = "500";
      assert.deepEqual(await counter.count(texts), estimated);
      mode = "shape";
      assert.deepEqual(await counter.count(texts), estimated);
      mode = "ok";
      assert.deepEqual(await counter.count(texts), [4, 1], "the server is asked again on the next call");
    });
    assert.equal(warned.length, 1, `one line a minute at most: ${warned.join(" | ")}`);
    assert.match(
      warned[0],
      /\/tokenize failed \(HTTP 404: Not Found\); counting with an estimate that errs high/,
    );

    const fresh = serverTokenCounter({ url: stub.url, token: null, model: null, family: "llama.cpp" });
    mode = "500";
    const crashed = await capturingWarnings(async () => void await fresh.count(texts));
    assert.match(crashed[0], /HTTP 500: tokenizer crashed/);

    const slow = serverTokenCounter({ url: stub.url, token: null, model: null, family: "llama.cpp" });
    mode = "slow";
    const started = performance.now();
    const late = await capturingWarnings(async () => assert.deepEqual(await slow.count(texts), estimated));
    assert.ok(performance.now() - started < 2400, "given up after about 2 s");
    assert.match(late[0], /no answer within the time limit/);

    const down = serverTokenCounter({
      url: `http://127.0.0.1:${freePort()}`,
      token: null,
      model: null,
      family: "vllm",
    });
    const refused = await capturingWarnings(async () => assert.deepEqual(await down.count(texts), estimated));
    assert.equal(refused.length, 1);
    assert.match(refused[0], /vllm http:\/\/127\.0\.0\.1:\d+\/tokenize failed/);
  } finally {
    await stub.close();
  }
});

Deno.test("serverTokenCounter: the caller's abort rejects instead of estimating", async () => {
  const stub = stubServer(async () => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return Response.json({ tokens: [1] });
  });
  try {
    const counter = serverTokenCounter({ url: stub.url, token: null, model: null, family: "llama.cpp" });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("Stop pressed")), 50);
    await assert.rejects(() => counter.count(["a", "b"], controller.signal), /Stop pressed/);
    await assert.rejects(() => counter.count(["a"], controller.signal), /Stop pressed/);
  } finally {
    await stub.close();
  }
});
