/**
 * The formats a clinic uploads or an operator ingests beside the research dialogues: PDF, Word, HTML,
 * Markdown, text, CSV, Parquet, MedQuAD, PubMedQA and the iCliniq file's real shape. Files are made here in
 * their real formats (tests/support/documents.ts) and parsed through the same entry as an upload.
 */
import assert from "node:assert/strict";
import { detectFormat, parseStream } from "../knowledge/parsers.ts";
import type { ColumnMapping, FormatName, ParseEvent, SnippetDraft } from "../knowledge/records.ts";
import { ColumnMappingError } from "../knowledge/parse_table.ts";
import { UnreadableFileError } from "../knowledge/parse_document.ts";
import { makeDocx, makeParquet, makePdf } from "./support/documents.ts";

/** Bytes as a stream in pieces of `piece` bytes, so that parsers meet every chunk boundary. */
function streamOf(bytes: Uint8Array, piece = 7): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at += piece));
    },
  });
}

async function parse(
  fileName: string,
  content: string | Uint8Array,
  options: { columns?: ColumnMapping; title?: string; piece?: number; format?: FormatName } = {},
): Promise<{ format: FormatName; events: ParseEvent[]; snippets: SnippetDraft[] }> {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  const parsed = await parseStream(streamOf(bytes, options.piece), { fileName, ...options });
  const events: ParseEvent[] = [];
  for await (const event of parsed.events) events.push(event);
  return {
    format: parsed.format,
    events,
    snippets: events.flatMap((e) => e.kind === "record" ? e.snippets : []),
  };
}

const skips = (events: ParseEvent[]) =>
  events.flatMap((e) => e.kind === "skip" ? [`${e.location}: ${e.reason}`] : []);

Deno.test("PDF: one record per page, cited by page, titled from the file's metadata; a page without text is skipped", async () => {
  const pdf = makePdf([
    ["Chest pain pathway", "Adults with suspected acute coronary syndrome."],
    ["Give aspirin 300 mg chewed at once unless allergic.", "Record a 12-lead ECG within 10 min-", "utes."],
    [],
  ], { title: "Chest pain pathway (2026)" });
  const { format, snippets, events } = await parse("pathway.pdf", pdf, { piece: 1000 });
  assert.equal(format, "pdf");
  assert.deepEqual(snippets.map((s) => [s.sourceId, s.page, s.title]), [
    ["p. 1", 1, "Chest pain pathway (2026)"],
    ["p. 2", 2, "Chest pain pathway (2026)"],
  ]);
  assert.equal(snippets[1].source, "Clinic documents");
  assert.match(snippets[1].answer, /ECG within 10 minutes\.$/, "a word broken over two lines is joined");
  assert.match(snippets[1].text, /^Chest pain pathway \(2026\)\nGive aspirin/);
  assert.deepEqual(skips(events), [
    "pathway.pdf p. 3: page 3 has no text (a scanned page? Rounds does not read text in images)",
  ]);
  // The uploader's title wins over the file's own.
  const titled = await parse("pathway.pdf", pdf, { title: "ACS pathway" });
  assert.equal(titled.snippets[0].title, "ACS pathway");
});

Deno.test("PDF: a long page becomes several snippets on sentence boundaries, all on that page", async () => {
  const sentence = "Troponin is measured at presentation and again three hours later in every adult.";
  const pdf = makePdf([Array.from({ length: 40 }, () => sentence)]);
  const { snippets } = await parse("long.pdf", pdf);
  assert.ok(snippets.length >= 3, `${snippets.length} snippets`);
  assert.deepEqual(snippets.map((s) => s.sourceId).slice(0, 3), ["p. 1", "p. 1#2", "p. 1#3"]);
  assert.ok(snippets.every((s) => s.page === 1 && s.answer.length <= 1200 && s.answer.endsWith(".")));
  assert.equal(snippets[0].title, "long", "no metadata title: the file name");
});

Deno.test("PDF: a file that is not a whole PDF says so", async () => {
  const pdf = makePdf([["Some text"]]);
  await assert.rejects(
    () => parse("broken.pdf", pdf.slice(0, 60)),
    (error: unknown) =>
      error instanceof UnreadableFileError && /broken\.pdf could not be read as a PDF/.test(error.message),
  );
});

Deno.test("Word: sections under headings, the first top-level heading as title, tables as rows of cells", async () => {
  const docx = await makeDocx([
    { heading: "Antibiotic formulary" },
    { text: "For adults in primary care. Check allergies first." },
    { heading: "Cellulitis", level: 2 },
    { text: "Flucloxacillin 500 mg four times daily for 7 days." },
    { text: "Penicillin allergy: clarithromycin 500 mg twice daily." },
    { heading: "Urinary tract infection", level: 2 },
    { text: "Nitrofurantoin 100 mg modified-release twice daily for 3 days (eGFR ≥ 45)." },
  ]);
  const { format, snippets } = await parse("formulary.docx", docx, { piece: 4096 });
  assert.equal(format, "docx");
  assert.deepEqual(snippets.map((s) => [s.sourceId, s.title, s.page ?? null]), [
    ["part 1", "Antibiotic formulary", null],
    ["Cellulitis", "Antibiotic formulary", null],
    ["Urinary tract infection", "Antibiotic formulary", null],
  ]);
  assert.equal(
    snippets[1].answer,
    "Flucloxacillin 500 mg four times daily for 7 days. Penicillin allergy: clarithromycin 500 mg twice daily.",
  );
  assert.match(
    snippets[2].text,
    /^Antibiotic formulary\nUrinary tract infection\nNitrofurantoin .* \(eGFR ≥ 45\)/,
  );
  // A zip that is not a Word document is not taken for one.
  await assert.rejects(
    () => parse("formulary.docx", docx.slice(0, 200), { format: "docx" }),
    (error: unknown) =>
      error instanceof UnreadableFileError && /could not be read as a Word/.test(error.message),
  );
});

Deno.test("HTML: sections under headings; scripts, styles, navigation and the title element stay out", async () => {
  const html = `<!doctype html><html><head><title>Asthma action plan</title><style>p{color:red}</style>
    <script>alert("x")</script></head><body><nav><a href="/">Home</a></nav>
    <h1>Asthma action plan</h1><p>Use the blue reliever inhaler&nbsp;when wheezy.</p>
    <h2>Severe attack</h2><p>Call 999 if the reliever does not help.</p>
    <table><tr><th>Peak flow</th><th>Action</th></tr><tr><td>&lt; 50%</td><td>Emergency</td></tr></table>
    </body></html>`;
  const { format, snippets } = await parse("asthma.html", html);
  assert.equal(format, "html");
  assert.deepEqual(snippets.map((s) => [s.sourceId, s.title]), [
    ["part 1", "Asthma action plan"],
    ["Severe attack", "Asthma action plan"],
  ]);
  assert.equal(snippets[0].answer, "Use the blue reliever inhaler when wheezy.");
  assert.equal(
    snippets[1].answer,
    "Call 999 if the reliever does not help. Peak flow | Action < 50% | Emergency",
  );
  assert.ok(!snippets.some((s) => /alert|color|Home/.test(s.text)));
});

Deno.test("Markdown: headings start sections; emphasis, links, lists and table rules reduce to text", async () => {
  const md = "# Sepsis protocol\n\nScreen every adult with a suspected infection.\n\n## Red flags\n\n" +
    "- **Systolic** BP < 90 mmHg\n- Lactate > 2 mmol/L ([guidance](https://example.org/sepsis))\n\n" +
    "| Sign | Threshold |\n|---|---|\n| RR | ≥ 25 |\n\n```\ncode stays out of headings\n# not a heading\n```\n";
  const { format, snippets } = await parse("sepsis.md", md);
  assert.equal(format, "markdown");
  assert.deepEqual(snippets.map((s) => [s.sourceId, s.title]), [
    ["part 1", "Sepsis protocol"],
    ["Red flags", "Sepsis protocol"],
  ]);
  assert.equal(
    snippets[1].answer,
    "Systolic BP < 90 mmHg Lactate > 2 mmol/L (guidance) Sign | Threshold RR | ≥ 25 code stays out of " +
      "headings # not a heading",
  );
});

Deno.test("Plain text: a capitalised line or one ending in ':' heads a section; other languages kept", async () => {
  const text = "DOSING:\nTake with food.\n\nRENAL IMPAIRMENT\nHalve the dose if eGFR < 30.\n\n" +
    "Posología: tomar con alimentos, 2 veces al día.\n";
  const { format, snippets } = await parse("metformin.txt", text);
  assert.equal(format, "text");
  assert.deepEqual(snippets.map((s) => [s.sourceId, s.answer]), [
    ["DOSING", "Take with food."],
    ["RENAL IMPAIRMENT", "Halve the dose if eGFR < 30. Posología: tomar con alimentos, 2 veces al día."],
  ]);
});

Deno.test("CSV: header names map the columns; quotes, embedded commas, CRLF and line breaks survive chunking", async () => {
  const csv = "\ufeffQuestion,Answer,Topic\r\n" +
    '"What is HbA1c, and why?","Average glucose over ~3 months.\r\nTarget ""< 48"" mmol/mol.",Diabetes\r\n' +
    "Empty answer?,,Misc\r\n" +
    "٣ أيام من الحمى؟,Fever for three days needs review.,General\r\n";
  for (const piece of [1, 3, 64]) {
    const { format, snippets, events } = await parse("faq.csv", csv, { piece });
    assert.equal(format, "csv");
    assert.deepEqual(snippets.map((s) => [s.sourceId, s.title, s.question, s.answer]), [
      ["2", "Diabetes", "What is HbA1c, and why?", 'Average glucose over ~3 months. Target "< 48" mmol/mol.'],
      ["5", "General", "٣ أيام من الحمى؟", "Fever for three days needs review."],
    ], `pieces of ${piece}`);
    assert.deepEqual(skips(events), ["faq.csv:4: empty answer"]);
    assert.equal(snippets[0].source, "faq");
  }
});

Deno.test("CSV: semicolons and tabs are told from the header; a mapping picks named columns", async () => {
  const semicolons = "id;patient;doctor\nA1;Knee pain after running;Rest and ice for a week.\n";
  const { snippets } = await parse("clinic.csv", semicolons);
  assert.deepEqual(snippets.map((s) => [s.sourceId, s.question, s.answer]), [
    ["A1", "Knee pain after running", "Rest and ice for a week."],
  ]);
  const tabs = "query\treply\tnote\nRash?\tUse emollient.\tx\n";
  const mapped = await parse("t.tsv", tabs, { columns: { question: "query", answer: "note" } });
  assert.deepEqual(mapped.snippets.map((s) => [s.question, s.answer]), [["Rash?", "x"]]);
});

Deno.test("CSV: no answer column, or a named column that is not there, is a clear refusal listing the columns", async () => {
  await assert.rejects(
    () => parse("labs.csv", "analyte,value,units\nNa,140,mmol/L\n"),
    (error: unknown) =>
      error instanceof ColumnMappingError &&
      error.message.startsWith(
        'labs.csv: no column looks like the answers. Its columns are "analyte", "value", "units".',
      ),
  );
  await assert.rejects(
    () => parse("faq.csv", "question,answer\nq,a\n", { columns: { answer: "reply" } }),
    (error: unknown) =>
      error instanceof ColumnMappingError && /there is no column "reply"/.test(error.message),
  );
});

Deno.test("Parquet: rows read as CSV rows are, with the usual Hugging Face column names", async () => {
  const parquet = makeParquet({
    instruction: ["If you are a doctor, please answer.", "If you are a doctor, please answer."],
    input: ["I have had a dry cough for 3 weeks.", "My knee is swollen after a fall."],
    output: ["A cough lasting over 3 weeks needs a chest X-ray.", ""],
  });
  const { format, snippets, events } = await parse("train-00000-of-00001.parquet", parquet, { piece: 512 });
  assert.equal(format, "parquet");
  assert.deepEqual(snippets.map((s) => [s.sourceId, s.question, s.answer]), [
    ["1", "I have had a dry cough for 3 weeks.", "A cough lasting over 3 weeks needs a chest X-ray."],
  ]);
  assert.deepEqual(skips(events), ["train-00000-of-00001.parquet row 2: empty answer"]);
});

Deno.test("MedQuAD: one record per question, titled by its focus; answers MedQuAD left out are skipped", async () => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<Document id="0000001" source="CancerGov" url="https://www.cancer.gov/types/leukemia/patient/adult-all">
<Focus>Adult Acute Lymphoblastic Leukemia</Focus>
<QAPairs>
<QAPair pid="1"><Question qid="0000001_1-1" qtype="information">What is (are) Adult ALL ?</Question>
<Answer>Key Points - Adult ALL is a cancer of the blood &amp; bone marrow.</Answer></QAPair>
<QAPair pid="2"><Question qid="0000001_1-2" qtype="symptoms">What are the symptoms of Adult ALL ?</Question>
<Answer></Answer></QAPair>
</QAPairs></Document>`;
  const { format, snippets, events } = await parse("0000001.xml", xml);
  assert.equal(format, "medquad");
  assert.deepEqual(snippets.map((s) => [s.source, s.sourceId, s.title, s.question, s.answer, s.url]), [[
    "MedQuAD",
    "0000001_1-1",
    "Adult Acute Lymphoblastic Leukemia",
    "What is (are) Adult ALL ?",
    "Key Points - Adult ALL is a cancer of the blood & bone marrow.",
    "https://www.cancer.gov/types/leukemia/patient/adult-all",
  ]]);
  assert.deepEqual(skips(events), [
    "0000001.xml question 2: no answer (MedQuAD leaves out some sources' answers for copyright)",
  ]);
});

Deno.test("PubMedQA: one record per PMID, the conclusion as the answer and a PubMed link", async () => {
  const json = JSON.stringify({
    "21645374": {
      QUESTION: "Do mitochondria play a role in remodelling lace plant leaves?",
      CONTEXTS: [
        "Programmed cell death occurs in lace plant leaves.",
        "Mitochondrial dynamics were studied.",
      ],
      LABELS: ["BACKGROUND", "RESULTS"],
      LONG_ANSWER: "Mitochondria appear to play a role in the process.",
      final_decision: "yes",
    },
    "17208539": { QUESTION: "Is a missing answer skipped?" },
  });
  const { format, snippets, events } = await parse("ori_pqal.json", json);
  assert.equal(format, "pubmedqa");
  assert.deepEqual(snippets.map((s) => [s.source, s.sourceId, s.url, s.answer]), [[
    "PubMedQA",
    "PMID:21645374",
    "https://pubmed.ncbi.nlm.nih.gov/21645374/",
    "Mitochondria appear to play a role in the process. (PubMedQA's answer: yes.)",
  ]]);
  assert.match(snippets[0].text, /Programmed cell death occurs/, "the contexts are indexed");
  assert.deepEqual(skips(events), ['ori_pqal.json PMID 17208539: missing "LONG_ANSWER"']);
});

Deno.test("iCliniq's real file: the iCliniq doctor's answer is kept, the model-written answers are not", async () => {
  const json = JSON.stringify([{
    input: "Hi doctor, I have an itchy rash on both elbows for a month.",
    answer_icliniq: "Hi. This looks like eczema; use an emollient twice daily.",
    answer_chatgpt: "I am not a doctor, but…",
    answer_chatdoctor: "Hello, thanks for the query…",
  }]);
  const { format, snippets } = await parse("iCliniq.json", json);
  assert.equal(format, "chatdoctor");
  assert.deepEqual(snippets.map((s) => [s.source, s.answer]), [
    ["iCliniq", "Hi. This looks like eczema; use an emollient twice daily."],
  ]);
  assert.ok(!snippets[0].text.includes("not a doctor"));
});

Deno.test("detect: documents by their magic numbers, tables and text by their extension", async () => {
  assert.equal(detectFormat(new TextDecoder().decode(makePdf([["x"]])), "upload.bin"), "pdf");
  assert.equal(
    detectFormat(new TextDecoder().decode(await makeDocx([{ text: "x" }])), "upload.bin"),
    "docx",
  );
  assert.equal(detectFormat(new TextDecoder().decode(makeParquet({ a: ["x"] })), "upload.bin"), "parquet");
  assert.equal(
    detectFormat("PK\u0003\u0004xl/workbook.xml", "sheet.xlsx"),
    null,
    "a spreadsheet is not Word",
  );
  assert.equal(detectFormat('{"123": {"QUESTION": "q"}}', "x.json"), "pubmedqa");
  assert.equal(detectFormat('<Document id="1"><Focus>x</Focus><QAPairs>', "x.xml"), "medquad");
  assert.equal(detectFormat("a,b\n1,2\n", "x.csv"), "csv");
  assert.equal(detectFormat("# Title\n", "x.md"), "markdown");
  assert.equal(detectFormat("Notes\n", "x.txt"), "text");
  assert.equal(detectFormat("Notes\n", "x"), null);
});

Deno.test("Word: a zip whose document unzips past 64 MB is refused without unzipping the rest", async () => {
  const JSZip = (await import("jszip")).default;
  const zip = new JSZip();
  zip.file("word/document.xml", `<w:document>${"a".repeat(65 * 1024 * 1024)}</w:document>`);
  const bomb = await zip.generateAsync({ type: "uint8array", compression: "DEFLATE" });
  assert.ok(bomb.length < 200 * 1024, `${bomb.length} bytes zipped`);
  await assert.rejects(
    () => parse("bomb.docx", bomb, { piece: 65536 }),
    (error: unknown) =>
      error instanceof UnreadableFileError &&
      /bomb\.docx unzips to more than 64 MB of text/.test(error.message),
  );
});

Deno.test("hostile text: long Markdown lines and deep nesting end quickly", async () => {
  const started = performance.now();
  const md = await parse(
    "a.md",
    `# a${" \t".repeat(5000)}#x\n\n${" ".repeat(1_000_000)}x\n|${" ".repeat(900)}x\n`,
  );
  assert.equal(md.format, "markdown");
  assert.ok(performance.now() - started < 3000, `${(performance.now() - started).toFixed(0)} ms`);
  await assert.rejects(
    () => parse("deep.html", "<div>".repeat(300_000), { piece: 1 << 20 }),
    (error: unknown) =>
      error instanceof UnreadableFileError &&
      /deep\.html nests its elements more than 1000 levels deep/.test(error.message),
  );
  assert.ok(performance.now() - started < 6000, `${(performance.now() - started).toFixed(0)} ms in all`);
});
