import assert from "node:assert/strict";
import {
  createEndpointClient,
  EndpointError,
  type EndpointTarget,
  parseRetryAfter,
  type StreamChunk,
} from "../inference/endpoint.ts";
import { DEFAULT_TOKENS, startStub, type Stub } from "./support/endpoint_stub.ts";
import { freePort } from "./support/test_app.ts";

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

const SCHEMA = { type: "object", properties: { a: { type: "integer" } }, required: ["a"] };

Deno.test("endpoint: output constraints take each server family's own shape, learned from its info routes", async () => {
  const cases: [Stub["server"], string, (body: Record<string, unknown>) => void][] = [
    ["llama.cpp", "/v1/completions", (b) => assert.deepEqual(b.json_schema, SCHEMA)],
    ["vllm", "/v1/completions", (b) =>
      assert.deepEqual(b.response_format, {
        type: "json_schema",
        json_schema: { name: "rounds_output", schema: SCHEMA, strict: true },
      })],
    ["sglang", "/v1/completions", (b) => assert.equal(b.json_schema, JSON.stringify(SCHEMA))],
    [
      "tgi",
      "/generate_stream",
      (b) =>
        assert.deepEqual((b.parameters as Record<string, unknown>).grammar, { type: "json", value: SCHEMA }),
    ],
    ["ollama", "/api/generate", (b) => {
      assert.deepEqual(b.format, SCHEMA);
      assert.equal(b.raw, true, "Ollama must not wrap the rendered prompt in its own template");
      assert.equal(b.model, "stub");
    }],
    [null, "/v1/completions", (b) => {
      for (const key of ["json_schema", "response_format", "grammar", "format"]) {
        assert.equal(key in b, false, key);
      }
    }],
  ];
  for (const [server, path, check] of cases) {
    await withStub(async (stub) => {
      stub.server = server;
      const client = createEndpointClient(target(stub));
      const result = await collect(
        client.stream({ ...REQUEST, prompt: "p", jsonSchema: SCHEMA }, new AbortController().signal),
      );
      assert.equal(result.text, DEFAULT_TOKENS.join(""), `${server}: the text arrives`);
      assert.equal((await client.profile()).family, server ?? "openai");
      const request = stub.requests.find((r) => r.path === path);
      assert.ok(request, `${server}: the prompt went to ${path}`);
      check(request.body);
    });
  }
});

Deno.test("endpoint: chat constraints are response_format json_schema, TGI's json_object; usage is asked for", async () => {
  for (const server of ["llama.cpp", "tgi"] as const) {
    await withStub(async (stub) => {
      stub.server = server;
      const client = createEndpointClient(target(stub));
      const messages = [{ role: "user" as const, content: "q" }];
      await collect(
        client.stream({ ...REQUEST, messages, jsonSchema: SCHEMA }, new AbortController().signal),
      );
      const body = stub.requests.find((r) => r.path === "/v1/chat/completions")!.body;
      const format = body.response_format as Record<string, unknown>;
      assert.equal(format.type, server === "tgi" ? "json_object" : "json_schema");
      assert.deepEqual(body.stream_options, { include_usage: true });
    });
  }
});

Deno.test("endpoint: with no MODEL the one model the server lists is named; several are refused by name", async () => {
  await withStub(async (stub) => {
    stub.models = ["meddialog-7b.gguf"];
    const client = createEndpointClient(target(stub));
    await collect(client.stream({ ...REQUEST, prompt: "p" }, new AbortController().signal));
    assert.equal(stub.requests.at(-1)!.body.model, "meddialog-7b.gguf");
    assert.equal(
      stub.requests.at(-1)!.headers["x-scale-up-timeout"],
      "600",
      "asks a scaled-to-zero proxy to wait",
    );
  });
  await withStub(async (stub) => {
    stub.models = ["a.gguf", "b.gguf"];
    const error = await failure(stub, "openai");
    assert.equal(error.kind, "rejected");
    assert.match(error.message, /serves 2 models \(a\.gguf, b\.gguf\): set MODEL/);
    assert.equal(stub.requests.length, 0, "nothing is sent to a guessed model");
  });
});

Deno.test("endpoint: the server's usage counts the tokens, on every route", async () => {
  for (const server of ["llama.cpp", "tgi", "ollama"] as const) {
    await withStub(async (stub) => {
      stub.server = server;
      stub.enqueue({ tokens: ["a", "b"], usage: 7 });
      const client = createEndpointClient(target(stub));
      let tokens: number | undefined;
      for await (const chunk of client.stream({ ...REQUEST, prompt: "p" }, new AbortController().signal)) {
        tokens = chunk.outputTokens ?? tokens;
      }
      assert.equal(tokens, 7, server);
    });
  }
});

Deno.test("endpoint: thinking streamed apart from the answer comes out as reasoning (chat and Ollama)", async () => {
  for (const server of ["llama.cpp", "ollama"] as const) {
    await withStub(async (stub) => {
      stub.server = server;
      stub.enqueue({ reasoning: ["Let me ", "think."], tokens: ["Answer."] });
      const client = createEndpointClient(target(stub));
      const request = server === "ollama"
        ? { ...REQUEST, prompt: "p" }
        : { ...REQUEST, messages: [{ role: "user" as const, content: "q" }] };
      let reasoning = "";
      let text = "";
      for await (const chunk of client.stream(request, new AbortController().signal)) {
        reasoning += chunk.reasoning ?? "";
        text += chunk.text;
      }
      assert.equal(reasoning, "Let me think.");
      assert.equal(text, "Answer.");
    });
  }
});

Deno.test("endpoint: any error body shape is read; a refused key names its variable; a full context is too_long", async () => {
  await withStub(async (stub) => {
    // TGI's route with an OpenAI-shaped error used to crash the classifier ("detail.slice is not a function").
    stub.enqueue({
      failWith: { status: 400, body: { error: { message: "bad temperature", type: "invalid" } } },
    });
    const tgi = await failure(stub, "tgi");
    assert.equal(tgi.kind, "rejected");
    assert.match(tgi.message, /bad temperature/);
    stub.enqueue({ failWith: { status: 400, body: { object: "error", message: "vLLM says no" } } });
    assert.match((await failure(stub, "openai")).message, /vLLM says no/);
    stub.enqueue({ failWith: { status: 400, body: { detail: [{ msg: "field required" }] } } });
    assert.match((await failure(stub, "openai")).message, /field required/);
    stub.enqueue({ failWith: { status: 500, body: "plain text trouble", contentType: "text/plain" } });
    assert.match((await failure(stub, "tgi")).message, /plain text trouble/);
  });
  await withStub(async (stub) => {
    stub.enqueue({ failWith: { status: 401, body: { error: { message: "Invalid API Key" } } } });
    const client = createEndpointClient(target(stub, { token: "wrong", tokenEnv: "LLAMA_KEY" }));
    const error = await assert.rejects(
      () => collect(client.stream({ ...REQUEST, prompt: "p" }, new AbortController().signal)),
      (e: unknown) => {
        assert.ok(e instanceof EndpointError);
        assert.equal(e.kind, "unauthorized");
        assert.match(e.message, /Invalid API Key/);
        assert.match(e.message, /LLAMA_KEY/);
        assert.doesNotMatch(e.message, /HF_TOKEN/);
        return true;
      },
    );
    void error;
  });
  await withStub(async (stub) => {
    stub.enqueue({
      failWith: {
        status: 400,
        body: {
          error: {
            code: 400,
            message:
              "request (602 tokens) exceeds the available context size (512 tokens), try increasing it",
            type: "exceed_context_size_error",
            n_prompt_tokens: 602,
            n_ctx: 512,
          },
        },
      },
    });
    const error = await failure(stub, "openai");
    assert.equal(error.kind, "too_long");
    assert.equal(error.contextLimit, 512);
    assert.doesNotMatch(error.message, /try increasing it/);
    stub.enqueue({
      failWith: {
        status: 400,
        body: {
          object: "error",
          message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
        },
      },
    });
    const vllm = await failure(stub, "openai");
    assert.equal(vllm.kind, "too_long");
    assert.equal(vllm.contextLimit, 4096);
  });
});

Deno.test("endpoint: one caller's abort does not spoil what the others learn about the server", async () => {
  await withStub(async (stub) => {
    stub.server = "llama.cpp";
    const client = createEndpointClient(target(stub));
    const impatient = new AbortController();
    const first = client.profile(impatient.signal);
    impatient.abort(new DOMException("gone", "AbortError"));
    await assert.rejects(first);
    const profile = await client.profile();
    assert.equal(profile.family, "llama.cpp");
    assert.equal(client.lastFailure, null);
  });
});

Deno.test("endpoint: a server that cannot be asked what it is gets no request in a guessed format", async () => {
  const posts: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    if (request.method === "POST") posts.push(new URL(request.url).pathname);
    return Response.json({ error: { message: "Loading model" } }, { status: 503 });
  });
  try {
    const client = createEndpointClient({
      url: `http://127.0.0.1:${server.addr.port}`,
      model: null,
      api: "openai",
      adapterId: null,
      token: null,
    });
    const error = await assert.rejects(
      () => collect(client.stream({ ...REQUEST, prompt: "p" }, new AbortController().signal)),
      (e: unknown) => e instanceof EndpointError && e.kind === "unavailable" && e.retryable,
    );
    void error;
    assert.deepEqual(posts, [], "nothing was sent while the server is loading");
  } finally {
    await server.shutdown();
  }
});

Deno.test("endpoint: Ollama is told the context the prompt was fitted to; addresses stay out of messages", async () => {
  await withStub(async (stub) => {
    stub.server = "ollama";
    const client = createEndpointClient(target(stub));
    await collect(
      client.stream({ ...REQUEST, prompt: "p", contextSize: 8192 }, new AbortController().signal),
    );
    const body = stub.requests.find((r) => r.path === "/api/generate")!.body;
    assert.equal((body.options as Record<string, unknown>).num_ctx, 8192);
  });
  const port = freePort();
  const client = createEndpointClient({
    url: `http://10.0.0.1.invalid:${port}`,
    model: null,
    api: "openai",
    adapterId: null,
    token: null,
  }, { discoveryTimeoutMs: 500 });
  await assert.rejects(
    () => collect(client.stream({ ...REQUEST, prompt: "p" }, new AbortController().signal)),
    (e: unknown) => {
      assert.ok(e instanceof EndpointError);
      assert.doesNotMatch(e.message, /10\.0\.0\.1|http:\/\//, e.message);
      return true;
    },
  );
});
