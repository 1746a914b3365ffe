/**
 * Live PubMed (knowledge/pubmed.ts) against a stub that speaks the E-utilities formats: the terms that leave,
 * NCBI's parameters and rate limit (shared through the database), its failures, and a chat answer grounded in
 * the abstracts it fetched, cited with PMID, journal, year and a link, and found locally the next time.
 */
import assert from "node:assert/strict";
import { listMessages } from "../db/messages.ts";
import { takeTurn } from "../db/limits.ts";
import {
  createPubmedClient,
  NCBI_EUTILS,
  parseKeywords,
  PubmedError,
  type PubmedSettings,
  pubmedTerms,
} from "../knowledge/pubmed.ts";
import { loadVocabulary, withGroupNames } from "../knowledge/vocabulary.ts";
import { loadConfig } from "../config.ts";
import { HYPOTHETICAL_ARTICLES, startEutilsStub } from "./support/eutils_stub.ts";
import { withChat } from "./support/chat_helpers.ts";
import { readAll } from "./support/sse_client.ts";
import { createTestDatabase, DRIVER } from "./support/test_app.ts";

const ARTICLES = HYPOTHETICAL_ARTICLES;

const settings = (url: string, extra: Partial<PubmedSettings> = {}): PubmedSettings => ({
  mode: "always",
  baseUrl: url + "/",
  apiKey: null,
  tool: "rounds",
  email: "it@clinic.example",
  results: 3,
  timeoutMs: 2000,
  ...extra,
});
const noWait = () => Promise.resolve();

Deno.test("pubmed: a model's keyword list is taken only when it is one; clinical words get their group's name", async () => {
  assert.deepEqual(parseKeywords("Keywords: spironolactone, resistant hypertension, aldosterone"), [
    "spironolactone",
    "resistant hypertension",
    "aldosterone",
  ]);
  assert.deepEqual(parseKeywords("1. atrial fibrillation; 2. apixaban\nmore text"), [
    "atrial fibrillation",
    "apixaban",
  ]);
  assert.equal(parseKeywords("I think the patient should see a cardiologist as soon as possible."), null);
  assert.equal(parseKeywords("[NAME_1], hypertension"), null);
  assert.equal(parseKeywords("ĠĠ<0x0A> zx@@ ##"), null);
  const vocabulary = await loadVocabulary();
  assert.equal(
    withGroupNames("Should someone with AF and a water infection stop apixaban?", vocabulary),
    "Should someone with atrial fibrillation and a urinary tract infection stop apixaban?",
  );
});

Deno.test("pubmed: search terms are the question's content words, never its identifier placeholders", () => {
  assert.deepEqual(
    pubmedTerms("Should [NAME_1] (MRN [MRN_1]) with resistant hypertension start spironolactone?"),
    ["resistant", "hypertension", "start", "spironolactone"],
  );
  assert.deepEqual(pubmedTerms("What is the best next step?"), []);
  assert.deepEqual(pubmedTerms("Fièvre et toux chez l'enfant"), ["fièvre", "et", "toux", "chez", "l'enfant"]);
});

Deno.test("pubmed: NCBI's parameters go with every request; its errors become plain words", async () => {
  const stub = startEutilsStub(ARTICLES);
  try {
    const client = createPubmedClient(settings(stub.url, { apiKey: "k3y" }), { throttle: noWait });
    const ids = await client.search("resistant hypertension", AbortSignal.timeout(2000));
    assert.deepEqual(ids, ["39000001", "39000002"]);
    assert.deepEqual(
      { ...stub.requests[0].params },
      {
        db: "pubmed",
        term: "resistant hypertension",
        retmode: "json",
        retmax: "3",
        sort: "relevance",
        tool: "rounds",
        email: "it@clinic.example",
        api_key: "k3y",
      },
    );
    const drafts = await client.fetch(ids, AbortSignal.timeout(2000));
    assert.deepEqual(drafts.map((d) => d.sourceId), [
      "PMID:39000001#BACKGROUND",
      "PMID:39000001#RESULTS",
      "PMID:39000002#CONCLUSIONS",
    ]);
    assert.equal(drafts[0].url, "https://pubmed.ncbi.nlm.nih.gov/39000001/");
    assert.equal(
      drafts[0].title,
      "Home blood pressure telemonitoring in resistant hypertension: a hypothetical trial. J Hypothet Cardiol. 2024.",
    );

    // A 429 is tried once more in the next second; two in a row is PubMed limiting this server.
    stub.fail("rate_limited");
    assert.deepEqual(await client.search("spironolactone", AbortSignal.timeout(2000)), ["39000002"]);
    stub.fail("rate_limited", "rate_limited");
    await assert.rejects(
      client.search("spironolactone", AbortSignal.timeout(2000)),
      (e: PubmedError) => e.kind === "rate_limited" && /limiting requests/.test(e.message),
    );
    stub.fail("unavailable");
    await assert.rejects(client.search("x y", AbortSignal.timeout(2000)), /PubMed answered HTTP 502/);
    stub.fail("search_error");
    await assert.rejects(client.search("x y", AbortSignal.timeout(2000)), /PubMed refused the search/);
    stub.fail("hang");
    await assert.rejects(
      client.search("x y", AbortSignal.timeout(300)),
      (e: PubmedError) => e.kind === "timeout",
    );
    assert.equal(NCBI_EUTILS, "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/");
    assert.equal(loadConfig({}).pubmed.mode, "off", "nothing leaves unless an operator says so");
    assert.throws(() => loadConfig({ PUBMED: "sometimes" }), /PUBMED must be one of off, fallback, always/);
  } finally {
    await stub.close();
  }
});

Deno.test(`pubmed [${DRIVER}]: two instances together keep to 3 requests in any second`, async () => {
  const stub = startEutilsStub(ARTICLES);
  const database = await createTestDatabase();
  try {
    const throttle = (n: number, signal: AbortSignal) => takeTurn(database.db, "ncbi-test", n, signal);
    // When each request leaves this process (the network after it is not Rounds' to pace).
    const sent: number[] = [];
    const timedFetch: typeof fetch = (input, init) => {
      sent.push(performance.now());
      return fetch(input, init);
    };
    const a = createPubmedClient(settings(stub.url), { throttle, fetch: timedFetch });
    const b = createPubmedClient(settings(stub.url), { throttle, fetch: timedFetch });
    await Promise.all(
      Array.from(
        { length: 9 },
        (_, i) => (i % 2 ? a : b).search("hypertension", AbortSignal.timeout(20_000)),
      ),
    );
    assert.equal(stub.requests.length, 9);
    // NCBI counts any second, not calendar seconds: no four requests leave within one.
    const times = sent.sort((x, y) => x - y);
    const tightest = Math.min(...times.slice(3).map((t, i) => t - times[i]));
    assert.ok(tightest >= 1000, `four requests within ${tightest.toFixed(0)} ms`);
  } finally {
    await database.close();
    await stub.close();
  }
});

Deno.test(`pubmed [${DRIVER}]: an answer grounded in fetched abstracts, cited with journal, year and link; found locally next time`, async () => {
  const eutils = startEutilsStub(ARTICLES);
  try {
    await withChat(async ({ t, stub, session, send }) => {
      const chat = await session();
      await readAll(
        await send(chat, "Mrs Adaeze Okonkwo has resistant hypertension: is spironolactone worth it?"),
      );
      const terms = eutils.requests.filter((r) => r.path === "esearch.fcgi").map((r) => r.params.term);
      assert.ok(terms.length >= 1);
      for (const term of terms) assert.doesNotMatch(term, /okonkwo|adaeze/i, "only redacted words leave");
      assert.equal(eutils.requests.filter((r) => r.path === "efetch.fcgi").length, 1);
      // The model was shown the abstract as quoted reference material.
      const prompt = JSON.stringify(stub.requests.at(-1)!.body);
      assert.match(prompt, /<reference>/);
      assert.match(prompt, /Spironolactone lowered blood pressure in resistant hypertension/);
      const html = await (await t.request(`/sessions/${chat}`)).text();
      assert.match(
        html,
        /Spironolactone as a fourth drug for resistant hypertension \(hypothetical\)\. Hypothet Hypertens Rev\. 2023\./,
      );
      assert.match(html, /href="https:\/\/pubmed\.ncbi\.nlm\.nih\.gov\/39000002\/"/);
      assert.match(html, /PMID:39000002/);

      // The next clinician's question on the subject: the abstracts are local now, nothing is fetched again.
      const other = await session();
      await readAll(await send(other, "Spironolactone for resistant hypertension?"));
      assert.equal(eutils.requests.filter((r) => r.path === "efetch.fcgi").length, 1);
      const [, reply] = await listMessages(t.database.db, other);
      assert.equal(reply.evidence, "sources");
    }, { env: { PUBMED: "fallback", PUBMED_URL: eutils.url, NCBI_EMAIL: "it@clinic.example" } });
  } finally {
    await eutils.close();
  }
});

Deno.test(`pubmed [${DRIVER}]: PubMed down or slow: the answer goes on with local evidence, and says so`, async () => {
  const eutils = startEutilsStub(ARTICLES);
  try {
    await withChat(async ({ t, session, send }) => {
      eutils.fail("unavailable");
      const chat = await session();
      const started = Date.now();
      await readAll(await send(chat, "Resistant hypertension: what next?"));
      const [, reply] = await listMessages(t.database.db, chat);
      assert.equal(reply.status, "completed");
      assert.match(
        reply.evidenceNote ?? "",
        /PubMed could not be searched \(PubMed answered HTTP 502\)/,
      );
      assert.match(await (await t.request(`/sessions/${chat}`)).text(), /PubMed could not be searched/);

      // A name the conversation taught earlier is replaced in a later question's terms, though that question
      // is searched alone (a new subject).
      const named = await session();
      await readAll(await send(named, "Mr Haddad is 80 and lives alone."));
      await readAll(await send(named, "Haddad has resistant hypertension: spironolactone?"));
      const sent = eutils.requests.filter((r) => r.path === "esearch.fcgi").map((r) => r.params.term).join(
        " | ",
      );
      assert.match(sent, /resistant hypertension/);
      assert.doesNotMatch(sent, /haddad/i);

      eutils.fail("hang");
      const slow = await session();
      await readAll(await send(slow, "Telemonitoring of home readings: does it help?"));
      const [, late] = await listMessages(t.database.db, slow);
      assert.equal(late.status, "completed");
      assert.match(late.evidenceNote ?? "", /PubMed did not answer in time/);
      assert.ok(Date.now() - started < 10_000);
    }, { env: { PUBMED: "always", PUBMED_URL: eutils.url, PUBMED_TIMEOUT_MS: "800" } });
  } finally {
    await eutils.close();
  }
});
