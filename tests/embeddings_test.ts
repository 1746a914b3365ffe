/**
 * Embeddings from any common server: OpenAI-style `/v1/embeddings` against a real llama.cpp server, Ollama's
 * `/api/embed`, TEI's `/embed` and Hugging Face feature-extraction against a stub in their wire formats, and the
 * dimension of the stored vectors following the configured embedder (an empty database switches; a full one is
 * refused at start until `deno task ingest --reembed`).
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { join } from "node:path";
import { type Database, openPglite } from "../db/client.ts";
import { rows } from "../db/migrate.ts";
import { addExampleCases } from "../cases/library.ts";
import {
  declaredDimensions,
  ensureVectorIndex,
  openVectorColumns,
  vectorCandidates,
} from "../db/snippets.ts";
import { ConfigError, loadConfig } from "../config.ts";
import { EndpointError } from "../inference/endpoint.ts";
import { createEmbedder, embeddingRoute } from "../inference/embeddings.ts";
import { errorReason } from "../inference/server.ts";
import {
  type Embedder,
  EmbedderMismatchError,
  prepareVectorStore,
  vectorLiteral,
} from "../knowledge/embedder.ts";
import { ingestFile } from "../knowledge/ingest.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { ignoreWithoutLlama, type LlamaServer, startLlamaServer } from "./support/llama_server.ts";
import { runTask, startServer } from "./support/server_process.ts";
import { createTestDatabase, DRIVER, freePort } from "./support/test_app.ts";

const FAST = { retryBaseMs: 1, timeoutMs: 10_000 };

/** A request the stub saw. */
interface Seen {
  method: string;
  path: string;
  authorization: string | null;
  body: Record<string, unknown> | null;
}

/** A stub embedding server on a free port: `answer` decides each reply; `seen` records the requests. */
function stubServer(answer: (path: string, body: Record<string, unknown> | null, n: number) => Response) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const text = await request.text();
    const body = text ? JSON.parse(text) : null;
    const path = new URL(request.url).pathname;
    seen.push({ method: request.method, path, authorization: request.headers.get("authorization"), body });
    return answer(path, body, seen.filter((s) => s.path === path).length);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    posts: (path: string) => seen.filter((s) => s.method === "POST" && s.path === path),
    close: () => server.shutdown(),
  };
}

/** A deterministic vector per text, not of unit length (the embedder normalises). */
function vectorOf(text: string, dimensions = 8): number[] {
  let seed = 0;
  for (const char of text) seed = (seed * 31 + char.charCodeAt(0)) % 9973;
  return Array.from({ length: dimensions }, (_, i) => 2 * Math.sin(seed + i));
}

function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function inputsOf(body: Record<string, unknown> | null): string[] {
  return (body?.input ?? body?.inputs) as string[];
}

function norm(vector: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i] * vector[i];
  return Math.sqrt(sum);
}

Deno.test("embeddings: the URL's path picks the API, and EMBEDDING_API names one for a bare address", () => {
  const cases: [string | null, string | null, string, string | null][] = [
    ["http://127.0.0.1:8080/v1/embeddings", null, "openai", "http://127.0.0.1:8080/v1/embeddings"],
    ["http://127.0.0.1:8080/v1", null, "openai", "http://127.0.0.1:8080/v1/embeddings"],
    ["https://api.openai.com/v1/", null, "openai", "https://api.openai.com/v1/embeddings"],
    ["http://localhost:11434/api/embed", null, "ollama", "http://localhost:11434/api/embed"],
    ["http://127.0.0.1:8081/embed", null, "tei", "http://127.0.0.1:8081/embed"],
    ["https://x.endpoints.huggingface.cloud", null, "hf", "https://x.endpoints.huggingface.cloud"],
    [null, null, "hf", null],
    ["http://127.0.0.1:8080", "openai", "openai", "http://127.0.0.1:8080/v1/embeddings"],
    ["http://localhost:11434", "ollama", "ollama", "http://localhost:11434/api/embed"],
    ["http://localhost:11434/v1", "ollama", "ollama", "http://localhost:11434/v1/api/embed"],
    ["http://127.0.0.1:8081", "tei", "tei", "http://127.0.0.1:8081/embed"],
    ["http://127.0.0.1:8081/embed", "hf", "hf", "http://127.0.0.1:8081/embed"],
  ];
  for (const [url, api, expectedApi, expectedUrl] of cases) {
    assert.deepEqual(
      embeddingRoute(url, api as never),
      { api: expectedApi, url: expectedUrl },
      `${url} with ${api}`,
    );
  }
});

Deno.test("embeddings: an error body's reason is read whatever its shape", () => {
  assert.equal(
    errorReason(`{"error": "model \\"nomic\\" not found, try pulling it first"}`),
    'model "nomic" not found, try pulling it first',
  );
  assert.equal(
    errorReason(
      `{"error":{"code":400,"message":"\\"input\\" or \\"content\\" must be provided","type":"x"}}`,
    ),
    '"input" or "content" must be provided',
  );
  assert.equal(
    errorReason(`{"object":"error","message":"This model does not support embeddings","code":400}`),
    "This model does not support embeddings",
  );
  assert.equal(errorReason(`{"detail": "Not Found"}`), "Not Found");
  assert.equal(
    errorReason(`{"detail":[{"loc":["body","input"],"msg":"field required","type":"value_error.missing"}]}`),
    "body.input: field required",
  );
  assert.equal(
    errorReason(`{"error": ["Input validation error: inputs must have less than 512 tokens"]}`),
    "Input validation error: inputs must have less than 512 tokens",
  );
  assert.equal(
    errorReason("upstream connect error\n  or disconnect"),
    "upstream connect error or disconnect",
  );
  assert.equal(errorReason("<html><body><h1>502 Bad Gateway</h1></body></html>"), "502 Bad Gateway");
  assert.equal(errorReason({ error: { message: "parsed already" } }), "parsed already");
  assert.equal(errorReason(""), "");
  assert.equal(errorReason("x".repeat(1000)).length, 300, "a long body is cut to one readable line");
});

Deno.test("embeddings: Ollama's /api/embed gets {model, input}; the one model /api/tags lists is used", async () => {
  const stub = stubServer((path, body) =>
    path === "/api/tags"
      ? json({ models: [{ name: "nomic-embed-text:latest" }] })
      : json({ model: body?.model, embeddings: inputsOf(body).map((t) => vectorOf(t)) })
  );
  try {
    const embedder = await createEmbedder(
      { embeddingUrl: `${stub.url}/api/embed`, embeddingModel: null, hfToken: null },
      { ...FAST, batchSize: 2 },
    );
    assert.equal(embedder.id, "endpoint:nomic-embed-text:latest");
    assert.equal(embedder.dimensions, 8);
    assert.match(embedder.description, /Ollama \/api\/embed at http:\/\/127\.0\.0\.1:\d+\/api\/embed/);
    const texts = ["dry cough", "chest pain", "rash on the arm"];
    const vectors = await embedder.embed(texts);
    assert.equal(vectors.length, 3);
    for (const [i, v] of vectors.entries()) {
      assert.ok(Math.abs(norm(v) - 1) < 1e-5, "unit length");
      const raw = vectorOf(texts[i]);
      assert.ok(Math.abs(v[0] - raw[0] / norm(raw)) < 1e-5, `vector ${i} belongs to its text`);
    }
    const posts = stub.posts("/api/embed");
    assert.deepEqual(Object.keys(posts[0].body!).sort(), ["input", "model"], "the start's probe");
    assert.deepEqual(posts.slice(1).map((p) => inputsOf(p.body).length).sort(), [1, 2], "batches of 2");
    assert.ok(posts.every((p) => p.body?.model === "nomic-embed-text:latest"));
  } finally {
    await stub.close();
  }
});

Deno.test("embeddings: TEI's /embed gets {inputs, normalize, truncate}, batched to /info's max_client_batch_size", async () => {
  const stub = stubServer((path, body) =>
    path === "/info"
      ? json({ model_id: "BAAI/bge-small-en-v1.5", max_client_batch_size: 2 })
      : json(inputsOf(body).map((t) => vectorOf(t, 12)))
  );
  try {
    const embedder = await createEmbedder(
      { embeddingUrl: `${stub.url}/embed`, embeddingModel: null, hfToken: "hf_secret" },
      FAST,
    );
    assert.equal(embedder.id, `endpoint:${stub.url}/embed`, "no model name: the URL identifies the vectors");
    assert.equal(embedder.dimensions, 12);
    const texts = ["a", "b", "c", "d", "e"];
    const vectors = await embedder.embed(texts);
    for (const [i, v] of vectors.entries()) {
      const raw = vectorOf(texts[i], 12);
      assert.ok(Math.abs(v[3] - raw[3] / norm(raw)) < 1e-6, `vector ${i} is its text's, in order`);
    }
    const posts = stub.posts("/embed");
    assert.deepEqual(Object.keys(posts[0].body!).sort(), ["inputs", "normalize", "truncate"]);
    assert.equal(posts[0].body!.normalize, true);
    assert.equal(posts[0].body!.truncate, true);
    assert.ok(posts.slice(1).every((p) => inputsOf(p.body).length <= 2), "never more than /info allows");
    assert.equal(posts.slice(1).reduce((n, p) => n + inputsOf(p.body).length, 0), 5);
    assert.ok(stub.seen.every((s) => s.authorization === "Bearer hf_secret"), "HF_TOKEN is the key");
  } finally {
    await stub.close();
  }
});

Deno.test("embeddings: OpenAI-style answers are read in index order; several listed models stop the start", async () => {
  let models = [{ id: "text-embedding-3-small" }];
  const stub = stubServer((path, body) => {
    if (path === "/v1/models") return json({ object: "list", data: models });
    const data = inputsOf(body).map((t, index) => ({ object: "embedding", index, embedding: vectorOf(t) }));
    return json({ object: "list", data: data.reverse(), usage: { prompt_tokens: 1, total_tokens: 1 } });
  });
  try {
    const embedder = await createEmbedder(
      { embeddingUrl: `${stub.url}/v1`, embeddingModel: null, hfToken: null },
      FAST,
    );
    assert.equal(embedder.id, "endpoint:text-embedding-3-small");
    const [a, b] = await embedder.embed(["first", "second"]);
    assert.ok(
      Math.abs(a[0] - vectorOf("first")[0] / norm(vectorOf("first"))) < 1e-6,
      "data[] sorted by index",
    );
    assert.ok(Math.abs(b[0] - vectorOf("second")[0] / norm(vectorOf("second"))) < 1e-6);
    assert.deepEqual(stub.posts("/v1/embeddings")[1].body, {
      model: "text-embedding-3-small",
      input: ["first", "second"],
    });

    models = [{ id: "bge-m3" }, { id: "nomic-embed" }, { id: "llama-3-8b" }];
    await assert.rejects(
      createEmbedder(
        { embeddingUrl: `${stub.url}/v1/embeddings`, embeddingModel: null, hfToken: null },
        FAST,
      ),
      (error: unknown) => {
        assert.ok(error instanceof EndpointError);
        assert.equal(
          error.message,
          `embeddings: ${stub.url}/v1/models lists 3 models (bge-m3, nomic-embed, llama-3-8b): set ` +
            "EMBEDDING_MODEL to the one that embeds",
        );
        return true;
      },
    );
    const named = await createEmbedder(
      { embeddingUrl: `${stub.url}/v1/embeddings`, embeddingModel: "bge-m3", hfToken: null },
      FAST,
    );
    assert.equal(named.id, "endpoint:bge-m3");
    assert.equal(stub.posts("/v1/embeddings").at(-1)!.body!.model, "bge-m3");
  } finally {
    await stub.close();
  }
});

Deno.test("embeddings: 429 and 503 are retried, honouring Retry-After; a 400 fails at once with the reason", async () => {
  let failures = [
    json({ error: { message: "Rate limit reached" } }, 429, { "retry-after": "0.05" }),
    json({ error: "Model is loading" }, 503, { "retry-after": "0.05" }),
  ];
  const stub = stubServer((path, body) => {
    if (path === "/v1/models") return json({ data: [] });
    const failure = failures.shift();
    return failure ?? json({ data: inputsOf(body).map((t, index) => ({ index, embedding: vectorOf(t) })) });
  });
  try {
    // A base wait of a minute: only Retry-After can make this quick.
    const started = performance.now();
    const embedder = await createEmbedder(
      { embeddingUrl: `${stub.url}/v1/embeddings`, embeddingModel: null, hfToken: null },
      { retryBaseMs: 60_000 },
    );
    assert.ok(performance.now() - started < 5000, "Retry-After decides the wait");
    assert.equal(embedder.id, `endpoint:${stub.url}/v1/embeddings`, "a server that lists no model");
    assert.equal(stub.posts("/v1/embeddings").length, 3, "two refusals, then the probe's vectors");
    assert.ok(stub.posts("/v1/embeddings").every((p) => !("model" in p.body!)), "no model is invented");

    failures = [json({ detail: [{ loc: ["body", "input"], msg: "field required" }] }, 422)];
    const before = stub.posts("/v1/embeddings").length;
    await assert.rejects(
      embedder.embed(["anything"]),
      (error: unknown) => {
        assert.ok(error instanceof EndpointError);
        assert.equal(
          error.message,
          `embeddings: ${stub.url}/v1/embeddings answered 422: body.input: field required`,
        );
        return true;
      },
    );
    assert.equal(stub.posts("/v1/embeddings").length, before + 1, "not retried");
  } finally {
    await stub.close();
  }
});

Deno.test("embeddings: a refused key names the variable that held it", async () => {
  const stub = stubServer(() => json({ error: { message: "Incorrect API key provided" } }, 401));
  try {
    const attempts: [Record<string, string | null>, string][] = [
      [{ embeddingApiKey: "sk-1", hfToken: "hf_1" }, "(the key came from EMBEDDING_API_KEY)"],
      [{ embeddingApiKey: null, hfToken: "hf_1" }, "(the key came from HF_TOKEN)"],
      [
        { embeddingApiKey: null, hfToken: null },
        "(no key was sent: set EMBEDDING_API_KEY to the server's key)",
      ],
    ];
    for (const [keys, note] of attempts) {
      await assert.rejects(
        createEmbedder({
          embeddingUrl: `${stub.url}/v1/embeddings`,
          embeddingModel: "m",
          embeddingApiKey: keys.embeddingApiKey,
          hfToken: keys.hfToken,
        }, FAST),
        (error: unknown) => {
          assert.ok(error instanceof EndpointError);
          assert.equal(
            error.message,
            `embeddings: ${stub.url}/v1/embeddings answered 401: Incorrect API key provided ${note}`,
          );
          return true;
        },
      );
    }
    assert.deepEqual(stub.seen.map((s) => s.authorization), ["Bearer sk-1", "Bearer hf_1", null]);
  } finally {
    await stub.close();
  }
});

Deno.test("embeddings: Hugging Face feature-extraction through @huggingface/inference; a 404 hints at the API", async () => {
  const stub = stubServer((path, body) =>
    path === "/"
      ? json(inputsOf(body).map((t) => vectorOf(t, 6)))
      : new Response("404 page not found", { status: 404 })
  );
  try {
    const embedder = await createEmbedder(
      { embeddingUrl: stub.url, embeddingModel: null, hfToken: "hf_x" },
      FAST,
    );
    assert.equal(embedder.dimensions, 6);
    assert.match(embedder.description, /^Hugging Face feature-extraction at http/);
    assert.equal((await embedder.embed(["one", "two"])).length, 2);
    assert.deepEqual(inputsOf(stub.posts("/").at(-1)!.body), ["one", "two"]);
    assert.equal(stub.seen.at(-1)!.authorization, "Bearer hf_x");

    await assert.rejects(
      createEmbedder({ embeddingUrl: `${stub.url}/somewhere`, embeddingModel: null, hfToken: null }, FAST),
      (error: unknown) => {
        assert.ok(error instanceof EndpointError);
        assert.match(
          error.message,
          /^embeddings: http:\/\/127\.0\.0\.1:\d+\/somewhere answered 404: 404 page not found/,
        );
        assert.match(error.message, /set EMBEDDING_API\)$/);
        return true;
      },
    );
  } finally {
    await stub.close();
  }
});

/** An embedder of any dimension, computed here: the database side's tests need no server. */
function fixedEmbedder(dimensions: number, id = `test:${dimensions}`): Embedder {
  return {
    id,
    description: `test embedder (${dimensions} dimensions)`,
    dimensions,
    batchSize: 64,
    embed: (texts) =>
      Promise.resolve(texts.map((t) => {
        const v = Float32Array.from(vectorOf(t, dimensions));
        const n = norm(v);
        return v.map((x) => x / n);
      })),
  };
}

async function indexPresent(db: Database["db"]): Promise<boolean> {
  return rows<{ present: boolean }>(
    await db.execute(sql`select to_regclass('snippets_embedding_idx') is not null as present`),
  )[0].present;
}

Deno.test(`vector store [${DRIVER}]: an empty database takes the embedder's dimension; stored vectors refuse another`, async () => {
  const empty = await createTestDatabase();
  try {
    const embedder = fixedEmbedder(256);
    const line = await prepareVectorStore(empty.db, embedder);
    assert.equal(
      line,
      "knowledge: the empty knowledge base and case library now store 256-dimension vectors for test:256 (was 384)",
    );
    assert.equal(await declaredDimensions(empty.db, "snippets"), 256);
    assert.equal(await declaredDimensions(empty.db, "cases"), 256);
    assert.equal(await indexPresent(empty.db), true, "the vector index is rebuilt for the new dimension");
    assert.equal(await prepareVectorStore(empty.db, embedder), null, "a second start changes nothing");

    // Stored (the COPY path on PGlite, JSON on Postgres) and searched at 256 dimensions.
    const corpus = await Deno.makeTempDir({ prefix: "rounds-embed-" });
    const file = join(corpus, "hcm.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify([
        {
          instruction: "x",
          input: "Dry cough for two weeks.",
          output: "Usually post-viral; review if it lasts.",
        },
        { instruction: "x", input: "Itchy rash on both arms.", output: "Try an emollient and avoid soap." },
      ]),
    );
    assert.equal((await ingestFile(empty.db, embedder, file)).added, 2);
    await Deno.remove(corpus, { recursive: true });
    const [cough] = rows<{ id: string; text: string }>(
      await empty.db.execute(sql`select id, text from snippets where text like '%cough%'`),
    );
    const [query] = await embedder.embed([cough.text]);
    const [best] = await vectorCandidates(empty.db, vectorLiteral(query), { limit: 1 });
    assert.equal(best.id, cough.id, "the same text is found again");
    assert.ok(best.score > 0.99, `by its own vector (score ${best.score})`);
    assert.ok((await addExampleCases(empty.db, embedder)) > 0, "cases store 256-dimension vectors too");

    await assert.rejects(
      prepareVectorStore(empty.db, fixedEmbedder(384, "lexical-ish")),
      (error: unknown) => {
        assert.ok(error instanceof EmbedderMismatchError);
        assert.match(
          error.message,
          /^The knowledge base holds 256-dimension vectors \(2 snippets by test:256\) and the case library holds 256-dimension vectors \(\d+ cases by test:256\), but the configured embedder lexical-ish makes 384-dimension vectors\. Run `deno task ingest --reembed` to re-embed every snippet and case with lexical-ish \(it changes the embedding columns to 384 dimensions and rebuilds the vector index\)/,
        );
        return true;
      },
    );
    assert.equal(await declaredDimensions(empty.db, "snippets"), 256, "a refused start changes nothing");

    // A re-embed into another dimension that stopped half-way: no index can be built, and the start says to finish.
    await openVectorColumns(empty.db, fixedEmbedder(384, "lexical-ish"));
    assert.equal(await declaredDimensions(empty.db, "snippets"), null);
    assert.equal(await ensureVectorIndex(empty.db), false, "no index on a column without a dimension");
    await assert.rejects(
      prepareVectorStore(empty.db, fixedEmbedder(384, "lexical-ish")),
      (error: unknown) => {
        assert.ok(error instanceof EmbedderMismatchError);
        assert.match(
          error.message,
          /^The knowledge base is part-way through an interrupted re-embed \(2 snippets by test:256\)/,
        );
        assert.match(
          error.message,
          /Run `deno task ingest --reembed` to finish re-embedding every snippet and case/,
        );
        return true;
      },
    );
  } finally {
    await empty.close();
  }

  const casesOnly = await createTestDatabase();
  try {
    await addExampleCases(casesOnly.db, createLexicalEmbedder());
    await assert.rejects(prepareVectorStore(casesOnly.db, fixedEmbedder(768)), (error: unknown) => {
      assert.ok(error instanceof EmbedderMismatchError);
      assert.match(
        error.message,
        /^The case library holds 384-dimension vectors \(\d+ cases by lexical-hash-v1\)/,
      );
      assert.match(error.message, /makes 768-dimension vectors/);
      return true;
    });
    assert.equal(await declaredDimensions(casesOnly.db, "snippets"), 384, "nothing switched half-way");
    await assert.rejects(prepareVectorStore(casesOnly.db, fixedEmbedder(3072)), /at most 2000/);
  } finally {
    await casesOnly.close();
  }
});

Deno.test("embeddings: a remote embedder replaces identifiers inside itself, unless PHI_REDACTION is off", async () => {
  const stub = stubServer((path, body) =>
    path === "/api/tags"
      ? json({ models: [{ name: "nomic-embed-text" }] })
      : json({ embeddings: inputsOf(body).map((t) => vectorOf(t)) })
  );
  const text = "John Smith, born 03/04/1948, MRN 2231-889, has a dry cough";
  try {
    // Nothing to wrap: whoever builds the embedder (the app, ingest, search, eval) gets the redacting one.
    const remote = await createEmbedder(
      { embeddingUrl: stub.url, embeddingApi: "ollama", embeddingModel: null, hfToken: null },
      FAST,
    );
    assert.equal(remote.dimensions, 8);
    await remote.embed([text]);
    const sent = JSON.stringify(stub.posts("/api/embed").at(-1)!.body);
    assert.doesNotMatch(sent, /John|Smith|1948|2231/);
    assert.match(sent, /\[NAME_1\]/);

    const off = await createEmbedder(
      {
        embeddingUrl: stub.url,
        embeddingApi: "ollama",
        embeddingModel: null,
        hfToken: null,
        security: { phiRedaction: "off" },
      },
      FAST,
    );
    await off.embed([text]);
    assert.match(JSON.stringify(stub.posts("/api/embed").at(-1)!.body), /John Smith/);
  } finally {
    await stub.close();
  }
});

Deno.test("config: EMBEDDING_API must name an API, with an address; EMBEDDING_API_KEY is read", () => {
  const config = loadConfig({
    EMBEDDING_URL: "http://127.0.0.1:8080",
    EMBEDDING_API: "OpenAI",
    EMBEDDING_API_KEY: "k",
  });
  assert.equal(config.embeddingApi, "openai");
  assert.equal(config.embeddingApiKey, "k");
  assert.equal(loadConfig({}).embeddingApi, null);
  assert.throws(
    () => loadConfig({ EMBEDDING_URL: "http://127.0.0.1:8080", EMBEDDING_API: "cohere" }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, [
        'EMBEDDING_API must be one of openai, ollama, tei, hf (or unset, to follow the path of EMBEDDING_URL), got "cohere"',
      ]);
      return true;
    },
  );
  assert.throws(
    () => loadConfig({ EMBEDDING_API: "ollama" }),
    /EMBEDDING_URL must be set with EMBEDDING_API=ollama/,
  );
});

/** A database for task processes: a PGlite directory, or a fresh database on the test Postgres. */
async function taskDatabase() {
  const dir = await Deno.makeTempDir({ prefix: "rounds-embed-task-" });
  const postgres = DRIVER === "postgres" ? await createTestDatabase() : null;
  const env: Record<string, string> = postgres?.driver === "postgres"
    ? { DATABASE_URL: postgres.url }
    : { DATA_DIR: dir };
  return {
    env,
    dir,
    /** Runs fn on the database; on PGlite only while no task holds the directory. */
    async use<T>(fn: (db: Database["db"]) => Promise<T>): Promise<T> {
      if (postgres) return await fn(postgres.db);
      const database = await openPglite({ dataDir: join(dir, "pglite") });
      try {
        return await fn(database.db);
      } finally {
        await database.close();
      }
    },
    async close() {
      await postgres?.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** llama-server serving embeddings of a tiny model; a physical batch that holds the sample corpus's snippets. */
function embeddingServer(embd: number, extra: string[] = []): Promise<LlamaServer> {
  return startLlamaServer({
    model: { embd },
    args: ["--embeddings", "--pooling", "mean", "-b", "2048", "-ub", "2048", ...extra],
  });
}

function assertOneLine(text: string, expected: string | RegExp) {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const hit = lines.find((l) => typeof expected === "string" ? l === expected : expected.test(l));
  assert.ok(hit, `no line ${expected} in:\n${text}`);
  assert.ok(!/^\s+at /m.test(text) && !/Stack backtrace|Uncaught/.test(text), `a stack trace:\n${text}`);
}

Deno.test({
  name:
    `llama.cpp embeddings [${DRIVER}]: the sample corpus through /v1/embeddings, the model from /v1/models, a search finds it`,
  ignore: ignoreWithoutLlama,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const llama = await embeddingServer(384);
    const database = await taskDatabase();
    try {
      const env = { ...database.env, EMBEDDING_URL: `${llama.url}/v1` };
      const ingest = await runTask("ingest", ["data/corpus"], env);
      assert.equal(ingest.code, 0, ingest.text);
      assert.match(
        ingest.text,
        /embeddings: OpenAI-style \/v1\/embeddings at http:\/\/127\.0\.0\.1:\d+\/v1\/embeddings \(\S+tiny-embd384\.gguf, the model the server lists\), 384 dimensions/,
      );
      const stored = await database.use(async (db) =>
        rows<{ embedder: string; dims: number; n: number; text: string }>(
          await db.execute(sql`select embedder, vector_dims(embedding) as dims, count(*)::int as n,
            min(text) as text from snippets group by 1, 2`),
        )
      );
      assert.equal(stored.length, 1, JSON.stringify(stored));
      assert.match(stored[0].embedder, /^endpoint:\S+tiny-embd384\.gguf$/);
      assert.equal(Number(stored[0].dims), 384);
      assert.ok(stored[0].n > 50, `the sample corpus is stored (${stored[0].n} snippets)`);

      const search = await runTask("search", ["--json", "--min-score", "0", "--k", "3", stored[0].text], env);
      assert.equal(search.code, 0, search.text);
      const results = JSON.parse(
        search.text.slice(search.text.indexOf("["), search.text.lastIndexOf("]") + 1),
      );
      assert.equal(results[0].text, stored[0].text, "the snippet searched for comes first");
      assert.ok(results[0].score > 0.99, `its own vector is found (score ${results[0].score})`);

      // Back to the built-in embedder: the same dimension, so only the vectors change.
      const back = await runTask("ingest", ["--reembed"], database.env);
      assert.equal(back.code, 0, back.text);
      assert.match(
        back.text,
        new RegExp(`Re-embedded ${stored[0].n} snippets and 0 cases with lexical-hash-v1 in [^;]+\\.`),
      );
    } finally {
      await llama.close();
      await database.close();
    }
  },
});

Deno.test({
  name:
    `llama.cpp dimension change [${DRIVER}]: 384 stored, a 256 server is refused naming both; --reembed switches`,
  ignore: ignoreWithoutLlama,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const small = await embeddingServer(256);
    const database = await taskDatabase();
    try {
      // A knowledge base of the built-in 384-dimension embedder, and the example cases, as a first start leaves it.
      const lexical = await runTask("ingest", ["data/corpus/icliniq.json"], database.env);
      assert.equal(lexical.code, 0, lexical.text);
      await database.use((db) => addExampleCases(db, createLexicalEmbedder()));
      const env = { ...database.env, EMBEDDING_URL: `${small.url}/v1/embeddings` };

      const refusal =
        /^The knowledge base holds 384-dimension vectors \(5 snippets by lexical-hash-v1\) and the case library holds 384-dimension vectors \(\d+ cases by lexical-hash-v1\), but the configured embedder endpoint:\S+tiny-embd256\.gguf makes 256-dimension vectors\. Run `deno task ingest --reembed`/;
      const search = await runTask("search", ["cough"], env);
      assert.equal(search.code, 1, search.text);
      assertOneLine(search.text, refusal);
      const ingest = await runTask("ingest", ["data/corpus/mashqa.json"], env);
      assert.equal(ingest.code, 1, ingest.text);
      assertOneLine(ingest.text, refusal);
      const server = startServer({ ...env, PORT: String(freePort()) });
      const status = await server.status;
      assert.equal(status.code, 1, server.output());
      assertOneLine(server.output(), refusal);

      const reembed = await runTask("ingest", ["--reembed"], env);
      assert.equal(reembed.code, 0, reembed.text);
      assert.match(
        reembed.text,
        /Re-embedded 5 snippets and \d+ cases with endpoint:\S+tiny-embd256\.gguf in .+?; vectors now have 256 dimensions \(were 384\)\./,
      );
      assert.match(reembed.text, /vector index built in/);
      const state = await database.use(async (db) => ({
        snippets: await declaredDimensions(db, "snippets"),
        cases: await declaredDimensions(db, "cases"),
        index: await indexPresent(db),
        embedders: rows<{ embedder: string }>(
          await db.execute(sql`select embedder from snippets union select embedder from cases`),
        ).map((r) => r.embedder),
      }));
      assert.deepEqual({ ...state, embedders: state.embedders.length }, {
        snippets: 256,
        cases: 256,
        index: true,
        embedders: 1,
      });

      const found = await runTask("search", ["--json", "--min-score", "0", "tingling hands"], env);
      assert.equal(found.code, 0, found.text);
      assert.ok(JSON.parse(found.text.slice(found.text.indexOf("["))).length > 0, found.text);
      const again = await runTask("ingest", ["--reembed"], env);
      assert.match(again.text, /already embedded by endpoint:\S+: nothing to do/);
    } finally {
      await small.close();
      await database.close();
    }
  },
});

Deno.test({
  name:
    `llama.cpp empty database [${DRIVER}]: the server starts on a 256-dimension model, switching the columns`,
  ignore: ignoreWithoutLlama,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const small = await embeddingServer(256);
    const database = await taskDatabase();
    const server = startServer({
      ...database.env,
      EMBEDDING_URL: `${small.url}/v1`,
      PORT: String(freePort()),
    });
    try {
      // A first start embeds the sample corpus and the example cases through a CPU llama-server: 50-54 s alone on
      // this 2-core machine, and past 60 s beside the rest of CI. What is tested is the switch, not the time.
      await server.waitFor(/^listening on http/, 180_000);
      const output = server.output();
      assert.match(
        output,
        /knowledge: the empty knowledge base and case library now store 256-dimension vectors for endpoint:\S+tiny-embd256\.gguf \(was 384\)/,
      );
      assert.match(output, /embeddings: OpenAI-style \/v1\/embeddings at .* 256 dimensions/);
      assert.match(output, /cases: added the \d+ example cases/);
      if (DRIVER === "pglite") assert.match(output, /knowledge: loaded the sample corpus \(\d+ snippets/);
    } finally {
      if ((await Promise.race([server.status, null])) === null) server.kill("SIGTERM");
      await server.status;
      await small.close();
    }
    try {
      assert.equal(await database.use((db) => declaredDimensions(db, "snippets")), 256);
    } finally {
      await database.close();
    }
  },
});

Deno.test({
  name: `llama.cpp start failures [${DRIVER}]: one line with the server's reason, exit 1, no stack trace`,
  ignore: ignoreWithoutLlama,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const chatOnly = await startLlamaServer({ model: { embd: 384 } });
    const database = await taskDatabase();
    try {
      const notEmbedding = {
        ...database.env,
        EMBEDDING_URL: `${chatOnly.url}/v1/embeddings`,
        EMBEDDING_MODEL: "tiny",
      };
      const reason = `embeddings: ${chatOnly.url}/v1/embeddings answered 501: This server does not support ` +
        "embeddings. Start it with `--embeddings`";
      const server = startServer({ ...notEmbedding, PORT: String(freePort()) });
      assert.equal((await server.status).code, 1, server.output());
      assertOneLine(server.output(), reason);
      for (const [task, args] of [["ingest", ["data/corpus/icliniq.json"]], ["search", ["cough"]]] as const) {
        const run = await runTask(task, [...args], notEmbedding);
        assert.equal(run.code, 1, run.text);
        assertOneLine(run.text, reason);
      }

      const port = freePort();
      const closed = { ...database.env, EMBEDDING_URL: `http://127.0.0.1:${port}/v1` };
      const refused = `embeddings: cannot connect to http://127.0.0.1:${port}/v1/models (connection refused)`;
      const down = startServer({ ...closed, PORT: String(freePort()) });
      assert.equal((await down.status).code, 1, down.output());
      assertOneLine(down.output(), refused);
      const search = await runTask("search", ["cough"], closed);
      assert.equal(search.code, 1, search.text);
      assertOneLine(search.text, refused);
    } finally {
      await chatOnly.close();
      await database.close();
    }
  },
});

Deno.test({
  name: "llama.cpp --api-key: a refused key names the variable that held it; the right key works",
  ignore: ignoreWithoutLlama,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const llama = await embeddingServer(384, ["--api-key", "right-key"]);
    try {
      const config = { embeddingUrl: `${llama.url}/v1`, embeddingModel: null };
      for (
        const [keys, note] of [
          [{ embeddingApiKey: "wrong-key", hfToken: "hf_other" }, "the key came from EMBEDDING_API_KEY"],
          [{ embeddingApiKey: null, hfToken: "hf_other" }, "the key came from HF_TOKEN"],
          [
            { embeddingApiKey: null, hfToken: null },
            "no key was sent: set EMBEDDING_API_KEY to the server's key",
          ],
        ] as const
      ) {
        await assert.rejects(createEmbedder({ ...config, ...keys }, FAST), (error: unknown) => {
          assert.ok(error instanceof EndpointError);
          assert.equal(
            error.message,
            `embeddings: ${llama.url}/v1/models answered 401: Invalid API Key (${note})`,
          );
          return true;
        });
      }
      const embedder = await createEmbedder(
        { ...config, embeddingApiKey: "right-key", hfToken: "hf_other" },
        FAST,
      );
      assert.equal(embedder.dimensions, 384);
      assert.equal((await embedder.embed(["a dry cough", "a wet cough"])).length, 2);
    } finally {
      await llama.close();
    }
  },
});
