/**
 * The optional reranker (RERANK_URL): both wire formats against a real llama.cpp server started with
 * `--reranking` (it serves Cohere-style `/v1/rerank` and TEI's `/rerank`), retrieval reordered by the server's
 * scores, identifiers replaced before anything leaves, and retrieval's own order kept when the reranker fails.
 */
import assert from "node:assert/strict";
import { createReranker, readScores, rerankRoute } from "../inference/rerank.ts";
import { EndpointError } from "../inference/endpoint.ts";
import { openIngestRun, refreshSearchTerms, storeBatch } from "../db/snippets.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { lexicalSnippets } from "./support/snippets.ts";
import { retrieve } from "../knowledge/retrieve.ts";
import { loadConfig } from "../config.ts";
import { createTestDatabase, DRIVER } from "./support/test_app.ts";
import { ignoreWithoutLlama, withLlamaServer } from "./support/llama_server.ts";
import type { Db } from "../db/client.ts";

Deno.test("rerank: the URL's path picks the format, and RERANK_API names one for a bare address", () => {
  const cases: [string, "tei" | "cohere" | null, string, string][] = [
    ["http://127.0.0.1:8080/v1/rerank", null, "cohere", "http://127.0.0.1:8080/v1/rerank"],
    ["https://api.cohere.com/v2/rerank", null, "cohere", "https://api.cohere.com/v2/rerank"],
    ["http://tei:80/rerank", null, "tei", "http://tei:80/rerank"],
    ["http://127.0.0.1:8080/", null, "cohere", "http://127.0.0.1:8080/v1/rerank"],
    ["http://tei:80", "tei", "tei", "http://tei:80/rerank"],
    ["http://127.0.0.1:8080/rerank", "cohere", "cohere", "http://127.0.0.1:8080/rerank"],
  ];
  for (const [url, api, kind, posted] of cases) {
    assert.deepEqual(rerankRoute(url, api), { api: kind, url: posted }, url);
  }
});

Deno.test("rerank: both answer shapes read into one score per text; a short answer is refused", () => {
  assert.deepEqual(readScores([{ index: 1, score: 0.2 }, { index: 0, score: 0.9 }], 2, "u"), [0.9, 0.2]);
  assert.deepEqual(
    readScores({ results: [{ index: 0, relevance_score: -1.5 }, { index: 1, relevance_score: 2 }] }, 2, "u"),
    [-1.5, 2],
  );
  assert.throws(() => readScores([{ index: 0, score: 1 }], 2, "u"), /scored 1 of the 2 texts/);
  assert.throws(() => readScores({ error: "no" }, 2, "u"), EndpointError);
  assert.throws(
    () => readScores([{ index: 5, score: 1 }, { index: 0, score: "x" }], 2, "u"),
    /scored 0 of the 2/,
  );
});

Deno.test("rerank: RERANK_API or RERANK_MODEL without RERANK_URL is a configuration error", () => {
  assert.throws(() => loadConfig({ RERANK_API: "tei" }), /RERANK_URL must be set/);
  assert.throws(() => loadConfig({ RERANK_API: "voyage", RERANK_URL: "http://x/rerank" }), /RERANK_API/);
  const config = loadConfig({ RERANK_URL: "http://127.0.0.1:9/rerank" });
  assert.equal(config.rerankTop, 20);
  assert.equal(config.rerankUrl, "http://127.0.0.1:9/rerank");
});

const QUESTION = "Chest tightness when climbing stairs, settles with rest";
const TEXTS = [
  "Chest tightness on exertion that settles with rest suggests stable angina; arrange an ECG and review.",
  "Climbing stairs makes my knees ache; rest helps and the swelling settles overnight.",
  "Tightness in the chest with wheeze after a cold: a trial of a reliever inhaler, review if it persists.",
  "Chest pain at rest lasting over 20 minutes needs emergency care now.",
  "Stairs leave me breathless and my ankles swell by evening; my chest feels tight when lying flat.",
  "A rash with blisters along one side of the chest: shingles, antivirals within 72 hours of the rash.",
];

async function withSnippets(fn: (db: Db) => Promise<void>): Promise<void> {
  const database = await createTestDatabase();
  try {
    const db = database.db;
    const { run } = await openIngestRun(db, {
      inputKey: "rerank",
      path: "rerank",
      format: "chatdoctor",
      source: null,
    });
    const batch = lexicalSnippets(TEXTS, "Rerank", "rerank");
    await storeBatch(db, batch, { runId: run.id, recordsDone: batch.length, duplicates: 0, skipped: 0 });
    await refreshSearchTerms(db);
    await fn(db);
  } finally {
    await database.close();
  }
}

Deno.test({
  name:
    `rerank [${DRIVER}]: llama-server's /v1/rerank and /rerank both score, and retrieval follows the scores`,
  ignore: ignoreWithoutLlama,
  fn: () =>
    withLlamaServer({ args: ["--reranking"] }, async (server) => {
      for (const url of [server.url, `${server.url}/v1/rerank`, `${server.url}/rerank`]) {
        const reranker = await createReranker({ url, model: null, api: null, token: null });
        const scores = await reranker.rerank(QUESTION, TEXTS);
        assert.equal(scores.length, TEXTS.length, url);
        for (const score of scores) assert.ok(Number.isFinite(score), url);
      }

      // Scores from this tiny random-weight model change between calls (batching), so the order is checked
      // against the answer the server gave to the retrieval's own request, recorded on the way.
      let exchange: { documents: string[]; answer: unknown } | null = null;
      const recording: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        const answer = await response.clone().json();
        exchange = { documents: JSON.parse(String(init?.body)).documents, answer };
        return response;
      };
      await withSnippets(async (db) => {
        const embedder = createLexicalEmbedder();
        const plain = await retrieve(db, embedder, QUESTION, { k: 6, minScore: 0 });
        // Three of the six come within 40% of the best BM25 score (knowledge/retrieve.ts): enough to reorder.
        assert.ok(plain.results.length >= 3, "several candidates to reorder");
        const reranker = await createReranker({ url: server.url, model: null, api: null, token: null }, {
          fetch: recording,
        });
        const reranked = await retrieve(db, embedder, QUESTION, { k: 6, minScore: 0, reranker });
        const texts = reranked.results.map((r) => r.snippet.text);
        assert.deepEqual(
          new Set(texts),
          new Set(plain.results.map((r) => r.snippet.text)),
          "the same candidates",
        );
        const { documents, answer } = exchange!;
        const scores = readScores(answer, documents.length, server.url);
        const expected = documents.map((text, i) => ({ text, score: scores[i] }))
          .sort((a, b) => b.score - a.score).map((d) => d.text);
        assert.deepEqual(texts, expected, "the server's order");
        assert.deepEqual(reranked.results.map((r) => r.rank), texts.map((_, i) => i + 1));
        // The score users see stays the similarity, not the reranker's scale.
        for (const r of reranked.results) assert.ok(r.score >= 0 && r.score <= 1);
      });
    }),
});

Deno.test({
  name:
    `rerank [${DRIVER}]: identifiers are replaced before the question and snippets leave; a failing reranker leaves retrieval's order`,
  ignore: ignoreWithoutLlama,
  fn: () =>
    withLlamaServer({ args: ["--reranking"] }, async (server) => {
      const sent: string[] = [];
      let broken = false;
      const recording: typeof fetch = (input, init) => {
        sent.push(String(init?.body ?? ""));
        if (broken) return Promise.reject(new TypeError("connection refused"));
        return fetch(input, init);
      };
      const reranker = await createReranker(
        { url: `${server.url}/v1/rerank`, model: null, api: null, token: null },
        { fetch: recording },
      );
      const question = `Jane Whitfield, DOB 03/04/1961, NHS 943 476 5919: ${QUESTION}`;
      await withSnippets(async (db) => {
        const embedder = createLexicalEmbedder();
        const reranked = await retrieve(db, embedder, question, { k: 4, minScore: 0, reranker });
        assert.ok(reranked.results.length > 0);
        const body = sent.at(-1)!;
        assert.match(body, /climbing stairs/i, "the question went");
        for (const identifier of ["Whitfield", "03/04/1961", "943 476 5919"]) {
          assert.ok(!body.includes(identifier), `${identifier} never leaves`);
        }

        broken = true;
        const plain = await retrieve(db, embedder, question, { k: 4, minScore: 0 });
        const fallback = await retrieve(db, embedder, question, { k: 4, minScore: 0, reranker });
        assert.deepEqual(
          fallback.results.map((r) => r.snippet.id),
          plain.results.map((r) => r.snippet.id),
          "retrieval's own order when the reranker is down",
        );
        assert.equal(fallback.evidence, "sources");
      });
    }),
});

Deno.test("rerank: a reranker that does not answer within its time is given up", async () => {
  const never: typeof fetch = (_input, init) =>
    new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
  await assert.rejects(
    createReranker({ url: "http://127.0.0.1:9/rerank", model: null, api: null, token: null }, {
      fetch: never,
      timeoutMs: 50,
    }),
    /did not answer within 0.1 s/,
  );
});
