/**
 * Knowledge → Documents over HTTP, on the test database (PGlite, or Postgres with TEST_DATABASE_URL): uploads
 * of real files become cited snippets; duplicates, unknown kinds, empty and oversized files and people who may
 * not upload get specific answers; progress streams; re-ingest, retry with a column mapping, delete, resume.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { rows } from "../db/migrate.ts";
import { getDocument, listDocuments } from "../db/documents.ts";
import { retrieve } from "../knowledge/retrieve.ts";
import { citationLabel } from "../knowledge/citation.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { makePdf } from "./support/documents.ts";
import { createTestDatabase, type TestApp, withTestApp } from "./support/test_app.ts";
import { CSRF_HEADER } from "../routes/auth.ts";

const PATHWAY = makePdf([
  ["Chest pain pathway", "For adults with suspected acute coronary syndrome in the emergency department."],
  [
    "Give aspirin 300 mg chewed at once unless there is a true aspirin allergy.",
    "Record a 12-lead ECG within 10 minutes of arrival and repeat it if the pain returns.",
    "Measure high-sensitivity troponin at presentation and again at 3 hours.",
  ],
], { title: "Chest pain pathway 2026" });

const FAQ_CSV = "question,answer,topic\n" +
  '"How long should a sore throat last?","Most sore throats settle within a week; see a doctor after 10 days.",ENT\n' +
  '"Can I take ibuprofen with ramipril?","Avoid regular ibuprofen with ramipril: it can harm the kidneys.",Pharmacy\n';

function upload(files: File[], fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  for (const file of files) form.append("files", file);
  for (const [key, value] of Object.entries(fields)) form.set(key, value);
  return form;
}

const pdfFile = (name = "pathway.pdf", bytes: Uint8Array = PATHWAY) =>
  new File([bytes as Uint8Array<ArrayBuffer>], name, { type: "application/pdf" });
const csvFile = (name = "faq.csv", text = FAQ_CSV) => new File([text], name, { type: "text/csv" });

async function post(t: TestApp, form: FormData, htmx = true): Promise<Response> {
  return await t.request("/knowledge/documents", {
    method: "POST",
    body: form,
    headers: htmx ? { "hx-request": "true" } : {},
  });
}

async function auditActions(t: TestApp): Promise<string[]> {
  return rows<{ action: string }>(
    await t.database.db.execute(
      sql`select action from audit_log where action like 'document.%' order by at, action`,
    ),
  ).map((r) => r.action);
}

Deno.test("documents: a PDF and a CSV uploaded together become snippets cited by page and by row", async () => {
  await withTestApp(async (t) => {
    const response = await post(t, upload([pdfFile(), csvFile()], { specialty: "Emergency medicine" }));
    assert.equal(response.status, 202);
    const panel = await response.text();
    assert.match(panel, /pathway\.pdf, faq\.csv are being added: the progress shows below/);
    assert.match(panel, /hx-sse:connect="\/knowledge\/documents\/live"/, "one live stream for the list");
    assert.equal(panel.match(/hx-sse:connect/g)?.length, 1);
    await t.documents.idle();

    const docs = await listDocuments(t.database.db);
    assert.deepEqual(
      docs.map((d) => [d.fileName, d.format, d.status, d.title, d.added, d.specialty, d.source])
        .sort(),
      [
        ["faq.csv", "csv", "ready", null, 2, "Emergency medicine", "faq"],
        [
          "pathway.pdf",
          "pdf",
          "ready",
          "Chest pain pathway 2026",
          2,
          "Emergency medicine",
          "Clinic documents",
        ],
      ],
    );
    const result = await retrieve(
      t.database.db,
      createLexicalEmbedder(),
      "aspirin dose and ECG timing in chest pain",
      { k: 3, minScore: 0.05 },
    );
    const top = result.results[0].snippet;
    assert.equal(citationLabel(top), "Chest pain pathway 2026, p. 2");
    assert.equal(top.source, "Clinic documents");

    const page = await (await t.request("/knowledge/documents")).text();
    assert.match(page, /Added: 2 snippets in the knowledge base/);
    assert.match(page, /Chest pain pathway 2026<\/a>/);
    const search = await (await t.request("/knowledge/search?q=ibuprofen+ramipril", {
      headers: { "hx-request": "true" },
    })).text();
    assert.match(
      search,
      />Pharmacy<\/a><span class="source-meta">faq · 3 · Emergency medicine/,
    );
    assert.deepEqual(await auditActions(t), ["document.upload", "document.upload"]);
  });
});

/**
 * Uploads a table of `rows` rows over a real socket, checks that the answer arrived before the table was stored,
 * and reads the documents list every 50 ms until it says the table was added: the statuses the list showed, in
 * order. curl asks, from its own process as a browser would: answers fetched from this process would be read
 * only when its loop, which the reading shares, got round to them, and the test would time itself.
 */
async function uploadTableAndWatch(t: TestApp, rows: number): Promise<string[]> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, t.app.fetch);
  const dir = await Deno.makeTempDir({ prefix: "rounds-upload-" });
  try {
    const table = "question,answer\n" + Array.from(
      { length: rows },
      (_, i) => `"Case ${i}: cough and fever for ${i % 9 + 1} days?","Review ${i}: examine the chest."`,
    ).join("\n");
    await Deno.writeTextFile(`${dir}/coughs.csv`, table);
    // The answer's status, when it arrived (ms since the epoch), then each status the list showed.
    const script = `
      ask() { curl -sS -H "cookie: $COOKIE" -H "${CSRF_HEADER}: $CSRF" -H "hx-request: true" "$@"; }
      ask -o "$DIR/answer.html" -w '%{http_code}\\n' -F "files=@$DIR/coughs.csv;type=text/csv" "$URL" || exit 1
      date +%s%3N
      for i in $(seq 1200); do
        status=$(ask "$URL" | grep -o -E 'Waiting to be read…|Reading: [0-9]+%[^<]*|Added: [0-9,]+ snippets' | head -1)
        [ -n "$status" ] && echo "$status"
        case "$status" in Added:*) exit 0 ;; esac
        sleep 0.05
      done`;
    const watched = await new Deno.Command("sh", {
      args: ["-c", script],
      env: {
        DIR: dir,
        COOKIE: t.user.cookie,
        CSRF: t.user.csrf,
        URL: `http://127.0.0.1:${server.addr.port}/knowledge/documents`,
      },
    }).output();
    const [status, arrived, ...shown] = new TextDecoder().decode(watched.stdout).trim().split("\n");
    assert.equal(status, "202", new TextDecoder().decode(watched.stderr));
    assert.match(
      await Deno.readTextFile(`${dir}/answer.html`),
      /<progress max="100" value="0" aria-label="Reading coughs\.csv"/,
    );
    await t.documents.idle();
    const [{ id }] = await listDocuments(t.database.db);
    const stored = await getDocument(t.database.db, id);
    assert.equal(stored?.snippetCount, rows);
    assert.ok(
      Number(arrived) < stored!.ingestedAt!.getTime(),
      `answered before the reading ended: ${Number(arrived) - stored!.ingestedAt!.getTime()} ms`,
    );
    return shown;
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("documents: a long table's upload is answered before it is read, and the list answers while it is read", async () => {
  // In-memory PGlite and the lexical embedder both run in this process: the reading must leave the event loop
  // turns to write the answer and serve the list. And PGlite has one connection: each of the list's statements
  // waited for a whole 500-row batch to be stored (2 s), so the list answered at most twice in the 5 s the table
  // took, or, on a busy CI host, only once it was added.
  await withTestApp(async (t) => {
    const shown = await uploadTableAndWatch(t, 1200);
    const reading = shown.filter((s) => s.startsWith("Reading:"));
    assert.ok(reading.length >= 4, `the list answered while the table was read: ${JSON.stringify(shown)}`);
  });
});

Deno.test("documents: the progress bar follows what is stored, not what is parsed", async () => {
  // On disk, on its own thread, as a laptop runs it (in memory, one batch's store holds the list back for 2 s).
  await withTestApp(async (t) => {
    const rows = 2000;
    const shown = await uploadTableAndWatch(t, rows);
    const percents = new Set<number>();
    for (const status of shown) {
      const [, percent, added] =
        status.match(/^Reading: (\d+)%(?: · [\d,]+ parts? read, ([\d,]+) snippets?)?/) ??
          [];
      if (percent === undefined) continue;
      percents.add(Number(percent));
      const stored = Number((added ?? "0").replace(/,/g, "")) / rows * 100;
      assert.ok(Number(percent) <= stored + 10, `"${status}": the bar is ahead of the ${stored}% stored`);
    }
    assert.ok(percents.size >= 3, `the bar moved while the table was read: ${JSON.stringify(shown)}`);
  }, { database: await createTestDatabase({ onDisk: true }) });
});

Deno.test("documents: the same file twice, an unknown kind, an empty file and an oversized one get their own answers", async () => {
  await withTestApp(async (t) => {
    assert.equal((await post(t, upload([pdfFile()]))).status, 202);
    await t.documents.idle();
    const again = await post(t, upload([pdfFile("copy of pathway.pdf")]));
    assert.equal(again.status, 409);
    const html = await again.text();
    assert.match(
      html,
      /copy of pathway\.pdf is already in the knowledge base \(uploaded as pathway\.pdf\): it was not added twice\./,
    );
    assert.match(html, /href="\/knowledge\/documents\/[0-9a-f-]{36}">Open it</);

    const unknown = await post(t, upload([new File([new Uint8Array([0, 1, 2, 3, 250])], "scan.bin")]));
    assert.equal(unknown.status, 415);
    assert.match(
      await unknown.text(),
      /Rounds cannot tell what kind of file scan\.bin is\. It reads PDF, Word/,
    );

    const empty = await post(t, upload([new File([], "empty.pdf")]));
    assert.equal(empty.status, 400);
    assert.match(await empty.text(), /empty\.pdf is empty: nothing to add\./);

    assert.equal((await listDocuments(t.database.db)).length, 1, "nothing refused was stored");
  });
  await withTestApp(async (t) => {
    const big = new File(["question,answer\n" + "q,a\n".repeat(400_000)], "big.csv");
    const response = await post(t, upload([big]), false);
    assert.equal(response.status, 413);
    assert.match(await response.text(), /larger than Rounds accepts \(1 MB in all\)\. Nothing was saved/);
    assert.equal((await listDocuments(t.database.db)).length, 0);
  }, { env: { UPLOAD_MAX_MB: "1" } });
});

Deno.test("documents: clinicians and the signed-out are refused before the body is read; UPLOADERS=educators lets educators in", async () => {
  await withTestApp(async (t) => {
    // A body that never ends: a refusal that read it would never answer.
    const endless = () =>
      new ReadableStream<Uint8Array>({
        pull: () => new Promise(() => {}),
      });
    const headers = { "content-type": "multipart/form-data; boundary=x" };
    const clinician = await t.addUser("clinician");
    const refused = await clinician.request("/knowledge/documents", {
      method: "POST",
      body: endless(),
      headers,
    });
    assert.equal(refused.status, 403);
    assert.match(await refused.text(), /Only administrators can add documents/);
    const anonymous = await t.anonymous("/knowledge/documents", { method: "POST", body: endless(), headers });
    assert.equal(anonymous.status, 401);
    // An administrator's browser sent by another site's page: refused before the body is read, too.
    const crossSite = await t.request("/knowledge/documents", {
      method: "POST",
      body: endless(),
      headers: { ...headers, origin: "https://uploads.evil.example", "sec-fetch-site": "cross-site" },
    });
    assert.equal(crossSite.status, 403);
    assert.match(await crossSite.text(), /came from another site/);
    // Two uploads arriving at once is the most an instance holds; a third is asked to wait.
    const senders: ReadableStreamDefaultController<Uint8Array>[] = [];
    const slow = () =>
      new ReadableStream<Uint8Array>({ start: (controller) => void senders.push(controller) });
    const arriving = [1, 2].map(() =>
      t.request("/knowledge/documents", { method: "POST", body: slow(), headers })
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const third = await t.request("/knowledge/documents", { method: "POST", body: slow(), headers });
    assert.equal(third.status, 503);
    assert.match(await third.text(), /receiving other uploads right now\. Nothing was saved/);
    for (const sender of senders) sender.close();
    for (const response of await Promise.all(arriving)) await response.body?.cancel();
    const educator = await t.addUser("educator");
    assert.equal(
      (await educator.request("/knowledge/documents", { method: "POST", body: upload([csvFile()]) })).status,
      403,
    );
    // They can still see what is there, without the form.
    const page = await (await clinician.request("/knowledge/documents")).text();
    assert.match(page, /Only administrators can add documents\. Ask one to upload what you need\./);
    assert.doesNotMatch(page, /type="file"/);
  });
  await withTestApp(async (t) => {
    const educator = await t.addUser("educator");
    const response = await educator.request("/knowledge/documents", {
      method: "POST",
      body: upload([csvFile()]),
    });
    assert.equal(response.status, 202);
  }, { env: { UPLOADERS: "educators" } });
});

Deno.test("documents: the progress stream ends with the outcome; a table without an answer column fails in words, and the same file with a mapping is read", async () => {
  await withTestApp(async (t) => {
    const labs = "analyte,result,comment\nSodium,131,Low sodium: review diuretics and fluid intake.\n";
    assert.equal((await post(t, upload([csvFile("labs.csv", labs)]))).status, 202);
    await t.documents.idle();
    const [doc] = await listDocuments(t.database.db);
    assert.equal(doc.status, "failed");
    assert.match(
      doc.error!,
      /^labs\.csv: no column looks like the answers\. Its columns are "analyte", "result", "comment"\./,
    );
    const stream = await (await t.request(`/knowledge/documents/${doc.id}/progress`)).text();
    assert.match(stream, /Not added: labs\.csv: no column looks like the answers/);
    assert.match(stream, /event:done/);

    const retried = await post(
      t,
      upload([csvFile("labs.csv", labs)], { answer_column: "comment", title_column: "analyte" }),
    );
    assert.equal(retried.status, 202, "a failed file uploaded again is read again");
    await t.documents.idle();
    const ready = (await getDocument(t.database.db, doc.id))!;
    assert.equal(ready.status, "ready");
    assert.equal(ready.snippetCount, 1);
    const detail = await (await t.request(`/knowledge/documents/${doc.id}`)).text();
    assert.match(detail, /Added: 1 snippet in the knowledge base/);
  });
});

Deno.test("documents: re-ingest replaces the snippets, delete removes them and their search terms, both audited", async () => {
  await withTestApp(async (t) => {
    await post(t, upload([pdfFile()]));
    await t.documents.idle();
    const [doc] = await listDocuments(t.database.db);
    const ids = async () =>
      rows<{ id: string }>(
        await t.database.db.execute(sql`select id from snippets where document_id = ${doc.id} order by page`),
      ).map((r) => r.id);
    const before = await ids();
    const term = async () =>
      rows<{ ndoc: number }>(
        await t.database.db.execute(sql`select ndoc from search_terms where term = 'troponin'`),
      )[0]?.ndoc ?? 0;
    assert.equal(await term(), 1, "the new terms count in full-text ranking at once");
    const pending = rows<{ pages: number }>(
      await t.database.db.execute(
        sql`select gin_clean_pending_list('snippet_search_idx'::regclass) as pages`,
      ),
    );
    assert.equal(
      Number(pending[0].pages),
      0,
      "the upload's terms are in the index, not in the list searches read",
    );
    // BM25's average length: the sum of every snippet's distinct terms, kept in step with the snippets.
    const lengths = async () =>
      rows<{ kept: number; actual: number }>(
        await t.database.db.execute(sql`
          select (select ndoc from search_terms where term = ' lexemes') as kept,
            (select coalesce(sum(length(search)), 0) from snippet_search) as actual`),
      ).map((r) => [Number(r.kept ?? 0), Number(r.actual)]);
    const [[kept, actual]] = await lengths();
    assert.ok(actual > 0);
    assert.equal(kept, actual, "the upload's terms are added to the lengths");

    const requeued = await t.request(`/knowledge/documents/${doc.id}/reingest`, { method: "POST" });
    assert.equal(requeued.status, 303);
    await t.documents.idle();
    const after = await ids();
    assert.equal(after.length, before.length);
    assert.ok(after.every((id) => !before.includes(id)), "every snippet was stored again");
    assert.equal((await getDocument(t.database.db, doc.id))!.generation, 2);
    assert.equal(await term(), 1);

    const unconfirmed = await t.request(`/knowledge/documents/${doc.id}/delete`, { method: "POST" });
    assert.equal(unconfirmed.status, 422);
    const form = new FormData();
    form.set("confirm", "yes");
    const deleted = await t.request(`/knowledge/documents/${doc.id}/delete`, { method: "POST", body: form });
    assert.equal(deleted.status, 303);
    assert.equal(await getDocument(t.database.db, doc.id), null);
    assert.deepEqual(await ids(), []);
    assert.equal(await term(), 0);
    const [[keptAfter, actualAfter]] = await lengths();
    assert.equal(keptAfter, actualAfter, "and taken away with it");
    const list = await (await t.request(deleted.headers.get("location")!)).text();
    assert.match(list, /The document and its snippets were deleted\./);
    assert.deepEqual(await auditActions(t), ["document.upload", "document.reingest", "document.delete"]);
  });
});

Deno.test("documents: one left half-read by a stopped instance is resumed; one another instance is reading is left alone", async () => {
  await withTestApp(async (t) => {
    await post(t, upload([pdfFile()]));
    await t.documents.idle();
    const [doc] = await listDocuments(t.database.db);
    // As a crash mid-ingest leaves it: ingesting, a heartbeat from two minutes ago.
    await t.database.db.execute(sql`update documents set status = 'ingesting', generation = generation + 1,
      heartbeat_at = now() - interval '2 minutes' where id = ${doc.id}`);
    await t.database.db.execute(sql`delete from snippets where document_id = ${doc.id}`);
    assert.equal(await t.documents.resume(), 1);
    await t.documents.idle();
    const resumed = (await getDocument(t.database.db, doc.id))!;
    assert.equal(resumed.status, "ready");
    assert.equal(resumed.snippetCount, 2);

    await t.database.db.execute(sql`update documents set status = 'ingesting', heartbeat_at = now()
      where id = ${doc.id}`);
    assert.equal(await t.documents.resume(), 0, "a fresh heartbeat: another instance is on it");

    // A file that stopped its instance three times is set aside, not taken up a fourth time.
    await t.database.db.execute(sql`update documents set attempts = 3,
      heartbeat_at = now() - interval '2 minutes' where id = ${doc.id}`);
    assert.equal(await t.documents.resume(), 0);
    const setAside = (await getDocument(t.database.db, doc.id))!;
    assert.equal(setAside.status, "failed");
    assert.match(setAside.error!, /^Reading this file stopped the server 3 times, so it was set aside\./);
  });
});
