import assert from "node:assert/strict";
import {
  createEndpointClient,
  EndpointError,
  type EndpointTarget,
  parseRetryAfter,
  type StreamChunk,
} from "../inference/endpoint.ts";
import { startStub, type Stub } from "./endpoint_stub.ts";
import { freePort } from "./test_app.ts";

const REQUEST = { maxNewTokens: 64, temperature: 0.2, topP: 0.9, stop: ["</s>"] };

function target(stub: Stub, extra: Partial<EndpointTarget> = {}): EndpointTarget {
  return { url: stub.url, model: null, api: "openai", adapterId: null, token: "hf_test", ...extra };
}

async function collect(
  stream: AsyncGenerator<StreamChunk>,
): Promise<{ text: string; finish: string | null }> {
  let text = "";
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.text;
    finish = chunk.finishReason ?? finish;
  }
  return { text, finish };
}

async function withStub(fn: (stub: Stub) => Promise<void>): Promise<void> {
  const stub = startStub();
  try {
    await fn(stub);
  } finally {
    await stub.close();
  }
}

Deno.test("endpoint: OpenAI chat streaming sends the messages and parameters and yields the text", async () => {
  await withStub(async (stub) => {
    stub.enqueue({ tokens: ["Rest", " and", " fluids"], finishReason: "stop" });
    const client = createEndpointClient(target(stub, { model: "meddialog-7b" }));
    const messages = [{ role: "system" as const, content: "S" }, { role: "user" as const, content: "Q" }];
    const result = await collect(client.stream({ ...REQUEST, messages }, new AbortController().signal));
    assert.deepEqual(result, { text: "Rest and fluids", finish: "stop" });
    const [request] = stub.requests;
    assert.equal(request.path, "/v1/chat/completions");
    assert.equal(request.headers.authorization, "Bearer hf_test");
    assert.deepEqual(request.body.messages, messages);
    assert.equal(request.body.model, "meddialog-7b");
    assert.equal(request.body.max_tokens, 64);
    assert.equal(request.body.temperature, 0.2);
    assert.equal(request.body.top_p, 0.9);
    assert.equal(request.body.stream, true);
  });
});

Deno.test("endpoint: raw prompts go to /v1/completions with the prompt verbatim", async () => {
  await withStub(async (stub) => {
    stub.enqueue({ tokens: ["Hello", " doctor"], finishReason: "length" });
    const client = createEndpointClient(target(stub));
    const prompt = "<s>[INST]Dry cough?[/INST]\n";
    assert.deepEqual(await collect(client.stream({ ...REQUEST, prompt }, new AbortController().signal)), {
      text: "Hello doctor",
      finish: "length",
    });
    assert.equal(stub.requests[0].path, "/v1/completions");
    assert.equal(stub.requests[0].body.prompt, prompt);
    assert.equal(stub.requests[0].body.max_tokens, 64);
  });
});

Deno.test("endpoint: TGI /generate_stream with a LoRA adapter; the EOS token is not text", async () => {
  await withStub(async (stub) => {
    stub.enqueue({ tokens: ["A", "B"] });
    const client = createEndpointClient(target(stub, { api: "tgi", adapterId: "meddialog-lora" }));
    const prompt = "<s>[INST]q[/INST]\n";
    assert.deepEqual(await collect(client.stream({ ...REQUEST, prompt }, new AbortController().signal)), {
      text: "AB",
      finish: "eos_token",
    });
    const { path, body } = stub.requests[0];
    assert.equal(path, "/generate_stream");
    assert.equal(body.inputs, prompt);
    assert.deepEqual(body.parameters, {
      max_new_tokens: 64,
      do_sample: true,
      temperature: 0.2,
      top_p: 0.9,
      stop: ["</s>"],
      adapter_id: "meddialog-lora",
    });
  });
});

Deno.test("endpoint: TGI with temperature 0 decodes greedily instead of sending an invalid temperature", async () => {
  await withStub(async (stub) => {
    const client = createEndpointClient(target(stub, { api: "tgi" }));
    await collect(client.stream({ ...REQUEST, temperature: 0, prompt: "p" }, new AbortController().signal));
    const parameters = stub.requests[0].body.parameters as Record<string, unknown>;
    assert.equal(parameters.do_sample, false);
    assert.equal("temperature" in parameters, false);
  });
});

async function failure(stub: Stub, api: "openai" | "tgi", chat = false): Promise<EndpointError> {
  const client = createEndpointClient(target(stub, { api }));
  const request = chat
    ? { ...REQUEST, messages: [{ role: "user" as const, content: "q" }] }
    : { ...REQUEST, prompt: "p" };
  try {
    await collect(client.stream(request, new AbortController().signal));
  } catch (error) {
    assert.ok(error instanceof EndpointError, `expected EndpointError, got ${error}`);
    return error;
  }
  assert.fail("expected the stream to fail");
}

for (const api of ["openai", "tgi"] as const) {
  Deno.test(`endpoint (${api}): 429 with Retry-After is rate_limited and keeps the wait`, async () => {
    await withStub(async (stub) => {
      stub.enqueue({ failWith: { status: 429, retryAfter: "3", body: { error: "Model is overloaded" } } });
      const error = await failure(stub, api);
      assert.equal(error.kind, "rate_limited");
      assert.equal(error.status, 429);
      assert.equal(error.retryAfterMs, 3000);
      assert.ok(error.retryable);
    });
  });

  Deno.test(`endpoint (${api}): 503 is unavailable (retryable); 400 is rejected (not)`, async () => {
    await withStub(async (stub) => {
      stub.enqueue({ failWith: { status: 503, body: { error: "Model is loading" } } });
      const unavailable = await failure(stub, api);
      assert.equal(unavailable.kind, "unavailable");
      assert.ok(unavailable.retryable);
      assert.equal(stub.requests.length, 1, "the client must not retry on its own");
      stub.enqueue({
        failWith: { status: 400, body: { error: "Input validation error: max_new_tokens too large" } },
      });
      const rejected = await failure(stub, api);
      assert.equal(rejected.kind, "rejected");
      assert.equal(rejected.retryable, false);
      assert.match(rejected.message, /max_new_tokens too large/);
    });
  });

  Deno.test(`endpoint (${api}): an error event mid-stream fails the stream`, async () => {
    await withStub(async (stub) => {
      stub.enqueue({ tokens: ["a", "b", "c"], errorAfter: 2 });
      const error = await failure(stub, api);
      assert.equal(error.kind, "failed");
      assert.match(error.message, /CUDA out of memory/);
    });
  });

  Deno.test(`endpoint (${api}): a malformed chunk is reported as malformed`, async () => {
    await withStub(async (stub) => {
      stub.enqueue({ tokens: ["a", "b"], malformedAfter: 1 });
      assert.equal((await failure(stub, api)).kind, "malformed");
    });
  });
}

Deno.test("endpoint: a chat model without a chat template gets an actionable 422 message", async () => {
  await withStub(async (stub) => {
    stub.enqueue({
      failWith: {
        status: 422,
        body: { error: "Template error: template not found", error_type: "template_error" },
      },
    });
    const error = await failure(stub, "openai", true);
    assert.equal(error.kind, "rejected");
    assert.match(error.message, /HTTP 422/);
    assert.match(error.message, /configure a raw template such as llama2-meddialog/);
  });
});

Deno.test("endpoint: connection refused is unreachable", async () => {
  const client = createEndpointClient({
    url: `http://127.0.0.1:${freePort()}`,
    model: null,
    api: "openai",
    adapterId: null,
    token: null,
  });
  await assert.rejects(
    () => collect(client.stream({ ...REQUEST, prompt: "p" }, new AbortController().signal)),
    (error: unknown) => error instanceof EndpointError && error.kind === "unreachable" && error.retryable,
  );
});

Deno.test("endpoint: aborting closes the upstream connection", async () => {
  await withStub(async (stub) => {
    stub.enqueue({ tokens: Array(100).fill("x"), delayMs: 50 });
    const client = createEndpointClient(target(stub));
    const controller = new AbortController();
    const stream = client.stream({ ...REQUEST, prompt: "p" }, controller.signal);
    await stream.next();
    controller.abort(new DOMException("stop", "AbortError"));
    await assert.rejects(() => collect(stream));
    await stub.waitFor((r) => r[0].abortedAt !== null, 1000);
  });
});

Deno.test("endpoint: aborting closes the connection even when fetch's own abort wiring is lost", async () => {
  // Deno links a fetch's abort to its body only weakly; after a GC it can be gone (Stop then left the GPU
  // generating). This fetch never sees the signal at all, so only the client's own wiring can close the stream.
  await withStub(async (stub) => {
    stub.enqueue({ tokens: Array(100).fill("x"), delayMs: 50 });
    const unlinked: typeof fetch = (input, init) => fetch(input, { ...init, signal: undefined });
    for (const api of ["openai", "tgi"] as const) {
      const client = createEndpointClient(target(stub, { api }), { fetch: unlinked });
      const controller = new AbortController();
      const stream = client.stream({ ...REQUEST, prompt: "p" }, controller.signal);
      await stream.next();
      controller.abort(new DOMException("stop", "AbortError"));
      await assert.rejects(() => collect(stream));
      const index = stub.requests.length - 1;
      await stub.waitFor((r) => r[index].abortedAt !== null, 1000);
      stub.enqueue({ tokens: Array(100).fill("x"), delayMs: 50 });
    }
  });
});

Deno.test("parseRetryAfter: seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("2"), 2000);
  assert.equal(parseRetryAfter("0.5"), 500);
  assert.equal(
    parseRetryAfter("Wed, 21 Oct 2015 07:28:10 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")),
    10_000,
  );
  assert.equal(parseRetryAfter("soon"), null);
  assert.equal(parseRetryAfter(null), null);
});
