import assert from "node:assert/strict";
import { join } from "node:path";
import { chunkText, splitSentences } from "../knowledge/chunk.ts";
import { JsonArraySplitter, type SplitItem } from "../knowledge/json_stream.ts";
import { parseChatDoctor } from "../knowledge/parse_qa.ts";
import {
  detectFormat,
  FORMAT_LABELS,
  GzipBombError,
  parseFile,
  PARSERS,
  UnknownFormatError,
} from "../knowledge/parsers.ts";
import { type FormatName, FORMATS, type ParseEvent, type SnippetDraft } from "../knowledge/records.ts";

const DATA = new URL("../data/", import.meta.url).pathname;
const corpus = (name: string) => join(DATA, "corpus", name);
const malformed = (name: string) => join(DATA, "malformed", name);
const encoder = new TextEncoder();

/** A byte stream that hands out `bytes` in slices of `chunkSize` (the whole thing in one chunk by default). */
function streamOf(bytes: Uint8Array, chunkSize = bytes.length || 1): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

async function collect(events: AsyncIterable<ParseEvent>): Promise<ParseEvent[]> {
  const all: ParseEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

async function parsePath(path: string, options: Parameters<typeof parseFile>[1] = {}) {
  const { format, events } = await parseFile(path, options);
  return { format, events: await collect(events) };
}

function parseText(format: FormatName, text: string, fileName = "test.txt", chunkSize?: number) {
  return collect(PARSERS[format](streamOf(encoder.encode(text), chunkSize), { fileName }));
}

function snippetsOf(events: ParseEvent[]): SnippetDraft[] {
  return events.flatMap((event) => event.kind === "record" ? event.snippets : []);
}

/** "index location: reason" for each skip. */
function skipsOf(events: ParseEvent[]): string[] {
  return events.flatMap((event) =>
    event.kind === "skip" ? [`${event.index} ${event.location}: ${event.reason}`] : []
  );
}

function assertIndicesInOrder(events: ParseEvent[]): void {
  assert.deepEqual(events.map((event) => event.index), events.map((_, i) => i));
}

// ---------------------------------------------------------------------------------------------------------
// Sentences and chunks

Deno.test("chunk: sentences split at real ends, not at abbreviations, decimals or trailing ellipses", () => {
  assert.deepEqual(
    splitSentences(
      "Dr. Smith saw the patient. She prescribed 2.5 mg. daily for a week. Take e.g. Aspirin with food... " +
        "Then rest! Is it safe? Yes. It was mild... and then it went. See Fig. 2 for details, i.e. the table. " +
        'He said "stop." Then he left. Take 5 mg. Then wait.',
    ),
    [
      "Dr. Smith saw the patient.",
      "She prescribed 2.5 mg. daily for a week.",
      "Take e.g. Aspirin with food...",
      "Then rest!",
      "Is it safe?",
      "Yes.",
      "It was mild... and then it went.",
      "See Fig. 2 for details, i.e. the table.",
      'He said "stop."',
      "Then he left.",
      "Take 5 mg.",
      "Then wait.",
    ],
  );
  assert.deepEqual(splitSentences("i have fever since 2 days. i took paracetamol. what to do?"), [
    "i have fever since 2 days.",
    "i took paracetamol.",
    "what to do?",
  ]);
  assert.deepEqual(splitSentences("First paragraph without a stop\n\nSecond one."), [
    "First paragraph without a stop",
    "Second one.",
  ]);
  assert.deepEqual(splitSentences("   "), []);
});

Deno.test("chunk: long text becomes whole-sentence chunks within the limit", () => {
  const sentences = Array.from(
    { length: 12 },
    (_, i) => `Sentence ${i + 1} says something useful about dosing.`,
  );
  const text = sentences.join(" ");
  const chunks = chunkText(text, { maxChars: 120 });
  assert.ok(chunks.length > 1);
  for (const chunk of chunks) {
    assert.ok(chunk.length <= 120, `${chunk.length} > 120`);
    assert.match(chunk, /^Sentence \d+ .*dosing\.$/);
  }
  assert.equal(chunks.join(" "), text);
  assert.deepEqual(chunkText("Short enough."), ["Short enough."]);
  assert.deepEqual(chunkText("  "), []);
  assert.throws(() => chunkText("x", { maxChars: 0 }), /maxChars must be a positive integer, got 0/);
});

Deno.test("chunk: an over-long sentence splits between words, an over-long word is cut", () => {
  const words = Array.from({ length: 600 }, (_, i) => `word${i}`);
  const chunks = chunkText(words.join(" "), { maxChars: 1200 });
  assert.ok(chunks.length >= 3);
  for (const chunk of chunks) assert.ok(chunk.length <= 1200);
  assert.deepEqual(chunks.join(" ").split(" "), words);

  assert.deepEqual(chunkText("x".repeat(3000), { maxChars: 1200 }).map((c) => c.length), [1200, 1200, 600]);
  // A surrogate pair is never cut in half.
  const emoji = chunkText("a" + "😀".repeat(10), { maxChars: 4 });
  assert.ok(emoji.every((chunk) => !/[\ud800-\udbff]$/.test(chunk)));
  assert.equal(emoji.join(""), "a" + "😀".repeat(10));
});

// ---------------------------------------------------------------------------------------------------------
// The JSON splitter

function split(
  text: string,
  options: ConstructorParameters<typeof JsonArraySplitter>[0] = {},
  chunkSize = text.length,
) {
  const splitter = new JsonArraySplitter(options);
  const items: SplitItem[] = [];
  for (let i = 0; i < text.length && !splitter.done; i += chunkSize) {
    items.push(...splitter.push(text.slice(i, i + chunkSize)));
  }
  items.push(...splitter.end());
  return items;
}

Deno.test("json splitter: strings with brackets, commas, quotes and escapes survive every chunk boundary", () => {
  const text = '[{"a":"x]\\"},{"}, {"b":"\\\\"},42 , "s,t\\"",[1,[2]],null,{"c":{"d":[]}}]';
  const expected = [
    '{"a":"x]\\"},{"}',
    '{"b":"\\\\"}',
    "42 ",
    '"s,t\\""',
    "[1,[2]]",
    "null",
    '{"c":{"d":[]}}',
  ];
  for (const chunkSize of [text.length, 1, 2, 3, 7]) {
    const items = split(text, {}, chunkSize);
    assert.deepEqual(
      items,
      expected.map((element) => ({ kind: "element", text: element })),
      `chunk size ${chunkSize}`,
    );
    assert.deepEqual(expected.map((element) => JSON.parse(element)), [
      { a: 'x]"},{' },
      { b: "\\" },
      42,
      's,t"',
      [1, [2]],
      null,
      { c: { d: [] } },
    ]);
  }
  assert.deepEqual(split("[]"), []);
  assert.deepEqual(split(" \n[ \n ] trailing"), []);
});

Deno.test("json splitter: garbage between elements and a mismatched bracket resynchronise at the next element", () => {
  assert.deepEqual(split('[{"a":1}, oops, {"b":2}]'), [
    { kind: "element", text: '{"a":1}' },
    { kind: "element", text: "oops" },
    { kind: "element", text: '{"b":2}' },
  ]);
  assert.deepEqual(split('[{"a":1], {"b":2}]'), [
    { kind: "element", text: '{"a":1]' },
    { kind: "element", text: '{"b":2}' },
  ]);
  assert.deepEqual(split('[{"a":1}}, {"b":2}]'), [
    { kind: "element", text: '{"a":1}' },
    { kind: "element", text: "}" },
    { kind: "element", text: '{"b":2}' },
  ]);
});

Deno.test("json splitter: broken structure ends with one error", () => {
  assert.deepEqual(split('{"rows":[]}'), [{ kind: "error", reason: 'expected a JSON array, found "{"' }]);
  assert.deepEqual(split(""), [{ kind: "error", reason: "the file is empty" }]);
  assert.deepEqual(split('[{"a":1},{"b":'), [
    { kind: "element", text: '{"a":1}' },
    { kind: "error", reason: "the file ends inside this record (truncated JSON)" },
  ]);
  assert.deepEqual(split('[{"a":1},'), [
    { kind: "element", text: '{"a":1}' },
    { kind: "error", reason: `the file ends before the array's closing "]" (truncated JSON)` },
  ]);
});

Deno.test("json splitter: the array under a key of the root object, other keys skipped", () => {
  const text =
    '{"version":"1","meta":{"data":[0]},"note":"\\"data\\": [9]","data":[{"a":[1,2]},{"b":"]"}],"after":[3]}';
  for (const chunkSize of [text.length, 1, 5]) {
    assert.deepEqual(split(text, { key: "data" }, chunkSize), [
      { kind: "element", text: '{"a":[1,2]}' },
      { kind: "element", text: '{"b":"]"}' },
    ], `chunk size ${chunkSize}`);
  }
  assert.deepEqual(split('{"data": 5}', { key: "data" }), [
    { kind: "error", reason: '"data" is not an array (found "5")' },
  ]);
  assert.deepEqual(split('{"other":[1]}', { key: "data" }), [
    { kind: "error", reason: 'no "data" array in the JSON object' },
  ]);
  assert.deepEqual(split("[1]", { key: "data" }), [
    { kind: "error", reason: 'expected a JSON object with a "data" array, found "["' },
  ]);
  assert.deepEqual(split('{"other":1,', { key: "data" }), [
    { kind: "error", reason: 'the file ends before a "data" array (truncated JSON)' },
  ]);
});

Deno.test("json splitter: an element past the size limit is reported, not buffered", () => {
  assert.deepEqual(split('[{"a":"0123456789abcdef"},{"b":1}]', { maxElementChars: 10 }, 4), [
    { kind: "oversized", chars: 24 },
    { kind: "element", text: '{"b":1}' },
  ]);
});

// ---------------------------------------------------------------------------------------------------------
// Format detection

Deno.test("detect: every sample file's format is told from its content", async () => {
  const cases: [string, FormatName][] = [
    [corpus("meddialog_processed.json"), "meddialog-json"],
    [corpus("medical_dialog.jsonl"), "hf-medical-dialog"],
    [corpus("healthcaremagic.json"), "chatdoctor"],
    [corpus("icliniq.json"), "chatdoctor"],
    [corpus("mashqa.json"), "mashqa"],
    [corpus("pubmed.xml"), "pubmed"],
    [malformed("meddialog_raw.txt"), "meddialog-raw"],
    [malformed("chatdoctor_rows.json"), "chatdoctor"],
    [malformed("truncated.json"), "chatdoctor"],
    [malformed("medical_dialog_broken.jsonl"), "hf-medical-dialog"],
    [malformed("pubmed_missing.xml"), "pubmed"],
    [malformed("mashqa_offsets.json"), "mashqa"],
  ];
  for (const [path, format] of cases) {
    // A misleading name must not matter: detection reads the content.
    assert.equal(detectFormat(await Deno.readTextFile(path), "notes.csv"), format, path);
  }
  // Without a signature, the extension says it is a table; under another name it is nothing known.
  assert.equal(detectFormat(await Deno.readTextFile(malformed("notes.csv")), "notes.csv"), "csv");
  assert.equal(detectFormat(await Deno.readTextFile(malformed("notes.csv")), "notes.dat"), null);
});

Deno.test("detect: content beats the extension, and unknown content is null", () => {
  const pubmed = '<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet>\n<PubmedArticleSet><PubmedArticle>';
  assert.equal(detectFormat(pubmed, "abstracts.json"), "pubmed");
  assert.equal(
    detectFormat('\ufeff[{"instruction":"x","input":"y","output":"z"}]', "pubmed.xml"),
    "chatdoctor",
  );
  assert.equal(detectFormat('{"instruction":"x","input":"y","output":"z"}\n', "rows.jsonl"), "chatdoctor");
  assert.equal(detectFormat('[{"description":"d","utterances":["patient: a"]}]', "x"), "meddialog-json");
  assert.equal(detectFormat('{"dialogue_id":1,"dialogue_turns":{"speaker":[0]}}', "x"), "hf-medical-dialog");
  assert.equal(detectFormat('{"version":"1","data":[{"paragraphs":[]}]}', "x"), "mashqa");
  assert.equal(
    detectFormat("id=1\nhttps://www.example.org/q/1\nDescription\nQ. x\nDialogue\n", "x.json"),
    "meddialog-raw",
  );
  // A JSON string that merely mentions a key is not that key.
  assert.equal(detectFormat('[{"text":"\\"utterances\\": no"}]', "x"), null);
  assert.equal(detectFormat('{"rows":[]}', "healthcaremagic.json"), null);
  assert.equal(detectFormat("<html><body>hi</body></html>", "x.xml"), "html");
  assert.equal(detectFormat("<catalog><item/></catalog>", "x.xml"), null);
  assert.equal(detectFormat("", "x"), null);
  // Only when the head is long and shows no known key does the file name break the tie.
  assert.equal(detectFormat(`[{"text":"${"x".repeat(70_000)}`, "HealthCareMagic-100k.json"), "chatdoctor");
});

Deno.test("parseFile: detects from content whatever the extension, gunzips by magic bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(corpus("pubmed.xml"), join(dir, "abstracts.json"));
    await Deno.copyFile(malformed("pubmed.xml.gz"), join(dir, "export.dat"));
    await Deno.copyFile(corpus("healthcaremagic.json"), join(dir, "healthcaremagic.json.gz"));
    const plain = await parsePath(corpus("pubmed.xml"), { fileName: "x" });
    assert.deepEqual(await parsePath(join(dir, "abstracts.json"), { fileName: "x" }), plain);
    assert.deepEqual(await parsePath(join(dir, "export.dat"), { fileName: "x" }), plain);
    const notGzip = await parsePath(join(dir, "healthcaremagic.json.gz"));
    assert.equal(notGzip.format, "chatdoctor");
    assert.equal(snippetsOf(notGzip.events).length, 9);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseFile: a gzip-compressed PubMed file parses like the plain one", async () => {
  const gz = await parsePath(malformed("pubmed.xml.gz"));
  assert.equal(gz.format, "pubmed");
  assert.equal(gz.events[0].location, "pubmed.xml.gz record 1");
  const plain = await parsePath(corpus("pubmed.xml"), { fileName: "pubmed.xml.gz" });
  assert.deepEqual(gz.events, plain.events);
});

Deno.test("parseFile: a file in no known format names itself and every format tried", async () => {
  await assert.rejects(
    () => parseFile(malformed("notes.csv"), { fileName: "notes.dat" }),
    (error: unknown) => {
      assert.ok(error instanceof UnknownFormatError);
      assert.equal(
        error.message,
        "Cannot tell the format of notes.dat: it is not meddialog-raw, meddialog-json, hf-medical-dialog, chatdoctor, " +
          "mashqa, pubmed, medquad, pubmedqa, csv, parquet, pdf, docx, html, markdown or text (use --format)",
      );
      assert.equal(error.fileName, "notes.dat");
      assert.deepEqual(error.tried, FORMATS);
      return true;
    },
  );
  // An explicit format skips detection; read as ChatDoctor JSON Lines, each CSV line is a bad record.
  const forced = await parsePath(malformed("notes.csv"), { format: "chatdoctor" });
  assert.deepEqual(skipsOf(forced.events), [
    "0 notes.csv:1: malformed JSON: unexpected token 'd'",
    "1 notes.csv:2: malformed JSON: unexpected non-whitespace character after JSON at position 4",
    "2 notes.csv:3: malformed JSON: unexpected non-whitespace character after JSON at position 4",
  ]);
});

Deno.test("parseFile: stopping early closes the file, progress reports bytes read", async () => {
  const paths = ["pubmed.xml", "healthcaremagic.json", "medical_dialog.jsonl", "mashqa.json"].map(corpus);
  for (const path of [...paths, malformed("meddialog_raw.txt"), malformed("pubmed.xml.gz")]) {
    let bytesRead = 0;
    const { events } = await parseFile(path, { onBytes: (n) => bytesRead = n });
    for await (const event of events) {
      assert.equal(event.index, 0);
      break;
    }
    assert.ok(bytesRead > 0, path);
  }
  // The test sanitizer fails this test if a file were left open.
});

Deno.test("formats: every format has a parser and a label", () => {
  for (const format of FORMATS) {
    assert.equal(typeof PARSERS[format], "function");
    assert.ok(FORMAT_LABELS[format]);
  }
});

// ---------------------------------------------------------------------------------------------------------
// Each format on its sample file

Deno.test("meddialog-json: one snippet per exchange, turns joined, trailing question dropped, long answers chunked", async () => {
  const { format, events } = await parsePath(corpus("meddialog_processed.json"));
  assert.equal(format, "meddialog-json");
  assertIndicesInOrder(events);
  assert.deepEqual(skipsOf(events), []);
  assert.equal(events.length, 6);
  const snippets = snippetsOf(events);
  assert.deepEqual(snippets.map((s) => s.sourceId), [
    "1#1",
    "2#1",
    "2#2",
    "3#1",
    "4#1",
    "5#1",
    "6#1",
    "6#1#2",
  ]);
  assert.equal(events[0].location, "meddialog_processed.json record 1");
  for (const snippet of snippets) {
    assert.equal(snippet.source, "MedDialog");
    assert.equal(snippet.url, null);
    assert.equal(snippet.specialty, null);
    assert.ok(snippet.answer.length <= 1200);
    assert.equal(snippet.text, `${snippet.title}\nPatient: ${snippet.question}\nDoctor: ${snippet.answer}`);
  }
  const [first, second, third] = snippets;
  assert.equal(first.title, "Dry cough that has lasted three weeks after a cold?");
  assert.match(first.question!, /^Hello doctor, I am a 34-year-old teacher\./);
  assert.match(first.answer, /^Hello\. A dry cough that lingers/);
  assert.equal(second.title, "Can I take ibuprofen with my blood pressure tablets?");
  assert.match(third.question!, /^Thanks\. If paracetamol is not enough/);
  // Consecutive patient turns form one question; consecutive doctor turns one answer.
  assert.match(snippets[3].question!, /silvery flakes on top\. My mother has something similar/);
  assert.equal(snippets[3].title, "Itchy red patches on both elbows for months");
  assert.match(snippets[4].answer, /raised blood sugar\. Improving your glucose control/);
  // A last patient turn with no reply is not an exchange.
  assert.match(snippets[5].title!, /39\.5 °C/);
  const [long1, long2] = snippets.slice(6);
  assert.equal(long1.question, long2.question);
  assert.match(long1.answer, /\.$/);
  assert.match(long2.answer, /^It is important to see a doctor promptly/);
});

Deno.test("hf-medical-dialog: JSON Lines with parallel speaker/utterance lists", async () => {
  const { format, events } = await parsePath(corpus("medical_dialog.jsonl"));
  assert.equal(format, "hf-medical-dialog");
  assertIndicesInOrder(events);
  assert.deepEqual(events.map((e) => e.location), [1, 2, 3, 4, 5].map((n) => `medical_dialog.jsonl:${n}`));
  const snippets = snippetsOf(events);
  assert.deepEqual(snippets.map((s) => s.sourceId), ["501#1", "502#1", "502#2", "503#1", "504#1", "505#1"]);
  for (const snippet of snippets) {
    assert.equal(snippet.source, "MedDialog");
    assert.equal(snippet.title, null);
    assert.equal(snippet.text, `Patient: ${snippet.question}\nDoctor: ${snippet.answer}`);
    assert.match(snippet.url!, /^https:\/\/www\.example\.org\/rounds-sample\/hf\/50\d$/);
  }
  assert.match(snippets[2].answer, /25–50 µg daily/);
  assert.match(snippets[4].question!, /used to enjoy\. I also find it hard/);
});

Deno.test("hf-medical-dialog: also reads a JSON array, and a list of turn objects", async () => {
  const record = {
    dialogue_id: "x7",
    dialogue_url: "https://www.example.org/q/x7",
    dialogue_turns: [
      { speaker: "Patient", utterance: "Is a cold sore contagious?" },
      { speaker: "Doctor", utterance: "Yes, until it crusts over." },
    ],
  };
  const events = await parseText(
    "hf-medical-dialog",
    JSON.stringify([record, { dialogue_turns: 3 }]),
    "d.json",
  );
  assert.deepEqual(snippetsOf(events).map((s) => [s.sourceId, s.question, s.answer]), [
    ["x7#1", "Is a cold sore contagious?", "Yes, until it crusts over."],
  ]);
  assert.deepEqual(skipsOf(events), ['1 d.json record 2: missing "dialogue_turns"']);
});

Deno.test("chatdoctor: one snippet per row, source named after the file", async () => {
  const hcm = await parsePath(corpus("healthcaremagic.json"));
  assert.equal(hcm.format, "chatdoctor");
  assertIndicesInOrder(hcm.events);
  assert.equal(hcm.events.length, 8);
  const snippets = snippetsOf(hcm.events);
  assert.deepEqual(snippets.map((s) => s.sourceId), ["1", "2", "3", "4", "5", "6", "7", "8", "8#2"]);
  for (const snippet of snippets) {
    assert.equal(snippet.source, "HealthCareMagic");
    assert.equal(snippet.title, null);
    assert.equal(snippet.url, null);
    assert.equal(snippet.text, `Patient: ${snippet.question}\nDoctor: ${snippet.answer}`);
    assert.ok(snippet.answer.length <= 1200);
  }
  assert.match(snippets[0].question!, /^Hi doctor, I am 32 and I get a burning feeling/);
  assert.match(snippets[8].answer, /cauda equina syndrome/);

  const icliniq = await parsePath(corpus("icliniq.json"));
  assert.deepEqual(snippetsOf(icliniq.events).map((s) => `${s.source} ${s.sourceId}`), [
    "iCliniq 1",
    "iCliniq 2",
    "iCliniq 3",
    "iCliniq 4",
    "iCliniq 5",
  ]);
  const other = await parseText("chatdoctor", '[{"input":"q?","output":"a."}]', "rows.json");
  assert.equal(snippetsOf(other)[0].source, "ChatDoctor");
});

Deno.test("mashqa: answers from sentence offsets or answer text; unanswerable questions are skips", async () => {
  const { format, events } = await parsePath(corpus("mashqa.json"));
  assert.equal(format, "mashqa");
  assertIndicesInOrder(events);
  assert.deepEqual(skipsOf(events), [
    "2 mashqa.json record 3: unanswerable (is_impossible)",
    "5 mashqa.json record 6: unanswerable (is_impossible)",
  ]);
  const snippets = snippetsOf(events);
  assert.deepEqual(snippets.map((s) => s.sourceId), ["gout-1", "gout-2", "shingles-1", "shingles-2"]);
  const gout = snippets[1];
  assert.equal(gout.source, "MASHQA");
  assert.equal(gout.title, "How is a gout attack treated?");
  assert.equal(gout.question, gout.title);
  assert.equal(
    gout.answer,
    "Anti-inflammatory medicines, colchicine or a short course of steroids can shorten an attack when started " +
      "early. Resting the joint, keeping it cool and raising it also help.",
  );
  assert.equal(gout.text, `${gout.question}\n${gout.answer}`);
  assert.match(snippets[3].answer, /^Most people recover in two to four weeks/);
});

Deno.test("pubmed: one snippet per abstract section, MeSH specialty, inline markup kept as text", async () => {
  const { format, events } = await parsePath(corpus("pubmed.xml"));
  assert.equal(format, "pubmed");
  assertIndicesInOrder(events);
  assert.deepEqual(skipsOf(events), []);
  assert.equal(events.length, 6);
  const snippets = snippetsOf(events);
  assert.deepEqual(snippets.map((s) => s.sourceId), [
    "PMID:90000001#BACKGROUND",
    "PMID:90000001#METHODS",
    "PMID:90000001#RESULTS",
    "PMID:90000001#CONCLUSIONS",
    "PMID:90000002#ABSTRACT",
    "PMID:90000003#OBJECTIVE",
    "PMID:90000003#METHODS",
    "PMID:90000003#RESULTS",
    "PMID:90000003#RESULTS#2",
    "PMID:90000003#CONCLUSION",
    "PMID:90000004#ABSTRACT",
    "PMID:90000005#BACKGROUND",
    "PMID:90000005#METHODS",
    "PMID:90000005#RESULTS",
    "PMID:90000006#BACKGROUND",
    "PMID:90000006#CONCLUSIONS",
  ]);
  assert.deepEqual(
    events.map((e) => e.kind === "record" ? e.snippets[0].specialty : "skip"),
    ["Cardiology", "Pulmonology", "Endocrinology", null, "Psychiatry", "Neurology"],
  );
  for (const snippet of snippets) {
    assert.equal(snippet.source, "PubMed");
    assert.equal(snippet.question, null);
    assert.match(snippet.url!, /^https:\/\/pubmed\.ncbi\.nlm\.nih\.gov\/9000000\d\/$/);
    assert.ok(snippet.answer.length <= 1200);
  }
  const background = snippets[0];
  assert.equal(
    background.title,
    "Home blood pressure telemonitoring with pharmacist support in uncontrolled hypertension: a hypothetical " +
      "randomised trial.",
  );
  assert.equal(background.text, `${background.title}\nBACKGROUND: ${background.answer}`);
  assert.match(snippets[2].answer, /\(p < 0\.001\)/);
  const inline = snippets[4];
  assert.match(inline.title!, /compound in in vitro models of asthma\.$/);
  assert.match(
    inline.answer,
    /compound in vitro\. Release of interleukin-13 fell by 40% at a concentration of 10-6 mol/,
  );
  assert.match(inline.answer, /clinical studies & caution/);
  assert.equal(inline.text, `${inline.title}\n${inline.answer}`);
  assert.equal(snippets[7].answer.split(" ")[0], "Of");
  assert.match(snippets[8].answer, /\.$/);
  assert.match(snippets[10].answer, /less helpful than those sent < 18:00\.$/);
});

Deno.test("meddialog-raw: the sample dialogues parse without skips", async () => {
  const dir = corpus("meddialog");
  const files = [...Deno.readDirSync(dir)].filter((entry) => entry.name.endsWith(".txt"));
  for (const file of files) {
    const { format, events } = await parsePath(join(dir, file.name), { specialty: "Sample specialty" });
    assert.equal(format, "meddialog-raw", file.name);
    assertIndicesInOrder(events);
    assert.deepEqual(skipsOf(events), [], file.name);
    for (const snippet of snippetsOf(events)) {
      assert.match(snippet.sourceId, /^[^#\s]+#\d+(#\d+)?$/);
      assert.equal(snippet.specialty, "Sample specialty");
      assert.ok(snippet.title && !snippet.title.startsWith("Q."));
      assert.equal(snippet.text, `${snippet.title}\nPatient: ${snippet.question}\nDoctor: ${snippet.answer}`);
    }
  }
});

Deno.test("meddialog-raw: records, turns on the label line, text before the first id", async () => {
  const text = [
    "stray header text",
    "",
    "id=12",
    "https://www.example.org/q/12",
    "Description",
    "Q. Dry cough for two weeks?",
    "Dialogue",
    "Patient: Hi doctor, I have had a dry cough",
    "for two weeks.",
    "",
    "It is worse at night.",
    "Doctor:",
    "Hello. Do you have fever?",
    "Patient:",
    "No fever.",
    "Doctor:",
    "Then it is likely post-viral.",
    "",
  ].join("\r\n");
  const events = await parseText("meddialog-raw", text, "dialogues.txt");
  assert.deepEqual(skipsOf(events), ['0 dialogues.txt:1: missing "id=" line']);
  const record = events[1];
  assert.equal(record.kind, "record");
  assert.equal(record.location, "dialogues.txt:3");
  assert.deepEqual(record.kind === "record" && record.snippets, [
    {
      source: "MedDialog",
      sourceId: "12#1",
      url: "https://www.example.org/q/12",
      specialty: null,
      title: "Dry cough for two weeks?",
      question: "Hi doctor, I have had a dry cough for two weeks. It is worse at night.",
      answer: "Hello. Do you have fever?",
      text:
        "Dry cough for two weeks?\nPatient: Hi doctor, I have had a dry cough for two weeks. It is worse at night.\n" +
        "Doctor: Hello. Do you have fever?",
    },
    {
      source: "MedDialog",
      sourceId: "12#2",
      url: "https://www.example.org/q/12",
      specialty: null,
      title: "Dry cough for two weeks?",
      question: "No fever.",
      answer: "Then it is likely post-viral.",
      text: "Dry cough for two weeks?\nPatient: No fever.\nDoctor: Then it is likely post-viral.",
    },
  ]);
});

Deno.test("options: the source name and specialty overrides apply", async () => {
  const chat = await parsePath(corpus("healthcaremagic.json"), {
    sourceName: "Sample HealthCareMagic",
    specialty: "General practice",
  });
  assert.ok(snippetsOf(chat.events).every((s) => s.source === "Sample HealthCareMagic"));
  assert.ok(snippetsOf(chat.events).every((s) => s.specialty === "General practice"));
  // A specialty the record carries (MeSH) wins over the option.
  const pubmed = await parsePath(corpus("pubmed.xml"), { specialty: "General practice" });
  assert.deepEqual(
    pubmed.events.map((e) => e.kind === "record" ? e.snippets[0].specialty : "skip"),
    ["Cardiology", "Pulmonology", "Endocrinology", "General practice", "Psychiatry", "Neurology"],
  );
});

Deno.test("text: control characters are stripped and whitespace collapsed", async () => {
  const events = await parseText(
    "chatdoctor",
    JSON.stringify([{
      input: "Pain\u0000 in my\tknee\u200b  since\n\nMonday",
      output: "\u0007Rest it. \r\n Ice it.",
    }]),
  );
  const [snippet] = snippetsOf(events);
  assert.equal(snippet.question, "Pain in my knee since Monday");
  assert.equal(snippet.answer, "Rest it. Ice it.");
});

// ---------------------------------------------------------------------------------------------------------
// Malformed input

Deno.test("malformed meddialog-raw: missing Dialogue header and no doctor reply are skipped, parsing goes on", async () => {
  const { events } = await parsePath(malformed("meddialog_raw.txt"));
  assertIndicesInOrder(events);
  assert.deepEqual(skipsOf(events), [
    '1 meddialog_raw.txt:11: missing "Dialogue" header',
    "2 meddialog_raw.txt:20: no doctor reply",
  ]);
  assert.deepEqual(snippetsOf(events).map((s) => s.sourceId), ["9001#1", "9004#1"]);
  assert.equal(events[3].location, "meddialog_raw.txt:28");
});

Deno.test("malformed chatdoctor: bad rows are skipped with their reason, parsing goes on", async () => {
  const { events } = await parsePath(malformed("chatdoctor_rows.json"));
  assertIndicesInOrder(events);
  assert.deepEqual(skipsOf(events), [
    '1 chatdoctor_rows.json record 2: missing "output"',
    "2 chatdoctor_rows.json record 3: row is a string, not an object",
    "3 chatdoctor_rows.json record 4: malformed JSON: expected ',' or '}' after property value in JSON at position 180",
    '4 chatdoctor_rows.json record 5: "input" is a number, not a string',
  ]);
  assert.deepEqual(snippetsOf(events).map((s) => s.sourceId), ["1", "6"]);
  const empty = await parseText(
    "chatdoctor",
    '[{"input":"  ","output":"x"}, {"input":"q","output":null}]',
    "e.json",
  );
  assert.deepEqual(skipsOf(empty), [
    '0 e.json record 1: empty "input"',
    '1 e.json record 2: "output" is null, not a string',
  ]);
});

Deno.test("malformed JSON: a truncated file yields its whole records, then one skip, and stops", async () => {
  const { events } = await parsePath(malformed("truncated.json"));
  assertIndicesInOrder(events);
  assert.deepEqual(snippetsOf(events).map((s) => s.sourceId), ["1", "2"]);
  assert.deepEqual(skipsOf(events), [
    "2 truncated.json record 3: the file ends inside this record (truncated JSON)",
  ]);
  const notArray = await parseText("meddialog-json", '{"a": 1}\n{"utterances": []}', "lines.json");
  assert.deepEqual(skipsOf(notArray), [
    '0 lines.json:1: missing "utterances" list',
    "1 lines.json:2: empty dialogue",
  ]);
  const notJson = await parseText("meddialog-json", "[1, 2", "short.json");
  assert.deepEqual(skipsOf(notJson), [
    "0 short.json record 1: record is a number, not an object",
    "1 short.json record 2: the file ends inside this record (truncated JSON)",
  ]);
  const scalar = await parseText("mashqa", '{"data": "none"}', "m.json");
  assert.deepEqual(skipsOf(scalar), ['0 m.json record 1: "data" is not an array (found "\\"")']);
});

Deno.test("malformed jsonl: a broken line is skipped at its line number, parsing goes on", async () => {
  const { events } = await parsePath(malformed("medical_dialog_broken.jsonl"));
  assertIndicesInOrder(events);
  assert.deepEqual(skipsOf(events), [
    "1 medical_dialog_broken.jsonl:2: malformed JSON: expected ',' or ']' after array element in JSON at position 134",
    "3 medical_dialog_broken.jsonl:5: no doctor reply",
  ]);
  assert.deepEqual(snippetsOf(events).map((s) => s.sourceId), ["7001#1", "7004#1"]);
  assert.equal(events[2].location, "medical_dialog_broken.jsonl:4");
});

Deno.test("malformed pubmed: articles without PMID or abstract are skipped, parsing goes on", async () => {
  const { events } = await parsePath(malformed("pubmed_missing.xml"));
  assertIndicesInOrder(events);
  assert.deepEqual(skipsOf(events), [
    "1 pubmed_missing.xml record 2: missing PMID",
    "2 pubmed_missing.xml record 3: no abstract",
  ]);
  assert.deepEqual(snippetsOf(events).map((s) => `${s.sourceId} ${s.specialty}`), [
    "PMID:90000101#BACKGROUND Cardiology",
    "PMID:90000101#RESULTS Cardiology",
    "PMID:90000104#ABSTRACT Nephrology",
  ]);
  const truncated = await parseText(
    "pubmed",
    "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article><Abstract><AbstractText>Cut",
    "cut.xml",
  );
  assert.deepEqual(skipsOf(truncated), [
    "0 cut.xml record 1: the file ends inside this article (truncated XML)",
  ]);
});

Deno.test("malformed mashqa: an answer offset outside the context is a skip", async () => {
  const { events } = await parsePath(malformed("mashqa_offsets.json"));
  assert.deepEqual(skipsOf(events), [
    "0 mashqa_offsets.json record 1: answer offset [53, 400] is outside the context (194 characters)",
  ]);
  assert.deepEqual(snippetsOf(events).map((s) => s.sourceId), ["anaemia-2"]);
});

// ---------------------------------------------------------------------------------------------------------
// Streaming

Deno.test("streaming: 1-byte and 7-byte chunks parse exactly like whole files", async () => {
  const files: [string, FormatName][] = [
    [corpus("meddialog_processed.json"), "meddialog-json"],
    [corpus("medical_dialog.jsonl"), "hf-medical-dialog"],
    [corpus("healthcaremagic.json"), "chatdoctor"],
    [corpus("mashqa.json"), "mashqa"],
    [corpus("pubmed.xml"), "pubmed"],
    [malformed("meddialog_raw.txt"), "meddialog-raw"],
    [malformed("chatdoctor_rows.json"), "chatdoctor"],
    [malformed("truncated.json"), "chatdoctor"],
    [malformed("medical_dialog_broken.jsonl"), "hf-medical-dialog"],
    [malformed("pubmed_missing.xml"), "pubmed"],
  ];
  for (const [path, format] of files) {
    const bytes = await Deno.readFile(path);
    const options = { fileName: "f" };
    const whole = await collect(PARSERS[format](streamOf(bytes), options));
    assert.ok(whole.length > 0);
    for (const chunkSize of [1, 7]) {
      assert.deepEqual(
        await collect(PARSERS[format](streamOf(bytes, chunkSize), options)),
        whole,
        `${path} in ${chunkSize}-byte chunks`,
      );
    }
  }
});

Deno.test("streaming: a record past the 8 MB limit is skipped, not buffered, and parsing goes on", async () => {
  const huge = "word ".repeat(1_800_000);
  const raw = `id=1\nDescription\nQ. Huge?\nDialogue\nPatient:\n${huge}\nDoctor:\nNo.\n\n` +
    "id=2\nDialogue\nPatient:\nSmall?\nDoctor:\nYes.\n";
  const rawEvents = await parseText("meddialog-raw", raw, "huge.txt", 65_536);
  assert.deepEqual(skipsOf(rawEvents), ["0 huge.txt:1: dialogue is larger than 8 MB"]);
  assert.deepEqual(snippetsOf(rawEvents).map((s) => s.sourceId), ["2#1"]);

  const article = (pmid: number, text: string) =>
    `<PubmedArticle><MedlineCitation><PMID>${pmid}</PMID><Article><ArticleTitle>T</ArticleTitle><Abstract>` +
    `<AbstractText>${text}</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>`;
  const xml = `<PubmedArticleSet>${article(90000201, huge)}${article(90000202, "Small.")}</PubmedArticleSet>`;
  const xmlEvents = await parseText("pubmed", xml, "huge.xml", 65_536);
  assert.deepEqual(skipsOf(xmlEvents), ["0 huge.xml record 1: article is larger than 8 MB of text"]);
  assert.deepEqual(snippetsOf(xmlEvents).map((s) => s.sourceId), ["PMID:90000202#ABSTRACT"]);

  const json = `[{"input":"q","output":"${huge}"},{"input":"q","output":"a"}]`;
  const jsonEvents = await parseText("chatdoctor", json, "huge.json", 65_536);
  assert.deepEqual(skipsOf(jsonEvents), ["0 huge.json record 1: record is larger than 8 MB (9 MB of text)"]);
  assert.deepEqual(snippetsOf(jsonEvents).map((s) => s.sourceId), ["2"]);
});

/** A ChatDoctor JSON array of about `megabytes` MB, generated as it is read and never held whole. */
function syntheticChatDoctor(megabytes: number): { stream: ReadableStream<Uint8Array>; rows: number } {
  const row = JSON.stringify({
    instruction:
      "If you are a doctor, please answer the medical questions based on the patient's description.",
    input: "Hi doctor, I have had a mild headache for three days, worse in the evening. Should I worry?",
    output:
      "Hello. A mild evening headache is most often a tension-type headache. Drink enough water, take " +
      "breaks from screens and try a simple painkiller. See your doctor if it gets worse, wakes you at night, " +
      "or comes with fever, weakness or a stiff neck.",
  });
  const rowsPerBlock = Math.ceil(65_536 / (row.length + 2));
  const block = encoder.encode(`${row},\n`.repeat(rowsPerBlock));
  const blocks = Math.ceil((megabytes * 1024 * 1024) / block.length);
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === 0) controller.enqueue(encoder.encode("[\n"));
      if (sent < blocks) controller.enqueue(block);
      else {
        controller.enqueue(encoder.encode(`${row}\n]\n`));
        controller.close();
      }
      sent++;
    },
  });
  return { stream, rows: blocks * rowsPerBlock + 1 };
}

Deno.test("streaming: a 200 MB input parses in bounded memory", async () => {
  const megabytes = 200;
  const { stream, rows } = syntheticChatDoctor(megabytes);
  const rssBefore = Deno.memoryUsage().rss;
  let peakGrowth = 0;
  let records = 0;
  let snippets = 0;
  const started = performance.now();
  for await (const event of parseChatDoctor(stream, { fileName: "synthetic.json" })) {
    assert.equal(event.kind, "record");
    if (event.kind === "record") snippets += event.snippets.length;
    if (++records % 20_000 === 0) peakGrowth = Math.max(peakGrowth, Deno.memoryUsage().rss - rssBefore);
  }
  const seconds = (performance.now() - started) / 1000;
  assert.equal(records, rows);
  assert.equal(snippets, rows);
  const growthMb = peakGrowth / (1024 * 1024);
  console.log(
    `  ${megabytes} MB, ${records} records in ${seconds.toFixed(1)} s: ${
      Math.round(records / seconds)
    } records/s, ` +
      `${(megabytes / seconds).toFixed(0)} MB/s, peak RSS growth ${growthMb.toFixed(0)} MB`,
  );
  assert.ok(growthMb < 150, `RSS grew by ${growthMb.toFixed(0)} MB`);
});

Deno.test("parseFile: a gzip file that grows a thousandfold is refused after 64 MB, not read to the end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rounds-gzip-bomb-" });
  try {
    const path = `${dir}/meddialog.json.gz`;
    const spaces = new Uint8Array(1 << 20).fill(0x20);
    await ReadableStream.from((function* () {
      yield new TextEncoder().encode("[");
      for (let i = 0; i < 512; i++) yield spaces;
      yield new TextEncoder().encode("]");
    })()).pipeThrough(new CompressionStream("gzip")).pipeTo((await Deno.create(path)).writable);
    const { events } = await parseFile(path, { format: "chatdoctor" });
    await assert.rejects(async () => {
      for await (const _ of events) { /* drain */ }
    }, (error: unknown) => {
      assert.ok(error instanceof GzipBombError);
      assert.match(error.message, /meddialog\.json\.gz grows more than 200 times when unzipped/);
      return true;
    });
    // An ordinary gzipped dataset is read whole.
    const normal = `${dir}/healthcaremagic.json.gz`;
    const records = Array.from({ length: 200 }, (_, i) => ({
      instruction: "If you are a doctor, please answer the medical questions.",
      input: `Hypothetical patient ${i}: a cough for ${i + 2} days.`,
      output: `Hypothetical reply ${i}: rest and fluids.`,
    }));
    await ReadableStream.from([new TextEncoder().encode(JSON.stringify(records))])
      .pipeThrough(new CompressionStream("gzip")).pipeTo((await Deno.create(normal)).writable);
    let read = 0;
    for await (const event of (await parseFile(normal)).events) if (event.kind === "record") read++;
    assert.equal(read, 200);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
