/**
 * Teaching cases: the schema and its errors, the consistency checks on good and bad cases, the example cases,
 * and the library over HTTP on the real database (search, filters, exports, import, versions, duplicate,
 * delete, the print pack).
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { checkCase, formatAge, sameDiagnosis } from "../cases/consistency.ts";
import { caseMarkdown } from "../cases/export.ts";
import { addCase, readExampleCases, readImport, seedExampleCases, updateCase } from "../cases/library.ts";
import { type Case, caseJsonSchema, HYPOTHETICAL_NOTICE, parseCase } from "../cases/schema.ts";
import { caseFacets, getCase, listVersions } from "../db/cases.ts";
import { EDIT_SECTIONS } from "../cases/edit.ts";
import { Parser } from "htmlparser2";
import { HX } from "./support/chat_helpers.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { DRIVER, type TestApp, withTestApp } from "./support/test_app.ts";

const embedder = createLexicalEmbedder();
const examples = await readExampleCases();
const byFile = (name: string): Case => structuredClone(examples.find((e) => e.file === name)!.value);

function flagsOf(c: Case) {
  return checkCase(c).map((f) => `${f.severity} ${f.path}: ${f.message}`);
}

Deno.test("examples: at least 12 valid cases across at least 10 specialties, none flagged", () => {
  assert.ok(examples.length >= 12, `${examples.length} example cases`);
  const specialties = new Set(examples.map((e) => e.value.specialty.toLowerCase()));
  assert.ok(specialties.size >= 10, `${specialties.size} specialties: ${[...specialties].join(", ")}`);
  for (const { file, value } of examples) {
    assert.equal(value.hypothetical, true, file);
    assert.deepEqual(flagsOf(value), [], `${file} is consistent`);
  }
});

Deno.test("schema: problems are reported per field, all at once", () => {
  const c = byFile("renal-colic.json") as Record<string, unknown>;
  const bad = {
    ...c,
    hypothetical: false,
    title: "",
    difficulty: "impossible",
    patient: { ...(c.patient as object), age: -3 },
    vitalSigns: { heartRate: { value: "fast", unit: "beats/min" }, temperature: { value: 37, unit: "K" } },
    checklist: [],
  };
  const result = parseCase(bad);
  assert.equal(result.ok, false);
  const errors = result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
  for (
    const expected of [
      "hypothetical: A case must be marked hypothetical (true)",
      "title: Title is required",
      "difficulty: Difficulty must be one of introductory, intermediate, advanced",
      "patient.age: Age cannot be negative",
      "vitalSigns.heartRate.value: Heart rate must be a number",
      "vitalSigns.temperature.unit: Temperature unit must be one of °C, °F",
      "checklist: Examiner checklist: add at least one",
    ]
  ) assert.ok(errors.includes(expected), `${expected}\n  in: ${errors.join("\n      ")}`);
  const missing = parseCase({ hypothetical: true });
  assert.ok(!missing.ok && missing.errors.some((e) => e.path === "title" && e.message === "Required"));
});

Deno.test("schema: the JSON Schema for structured output names every required field", () => {
  const schema = caseJsonSchema() as {
    type: string;
    required: string[];
    properties: Record<string, Record<string, unknown>>;
  };
  assert.equal(schema.type, "object");
  for (
    const field of ["title", "patient", "vitalSigns", "investigations", "differential", "script", "checklist"]
  ) {
    assert.ok(schema.required.includes(field), field);
  }
  assert.equal(schema.properties.hypothetical.const, true);
  assert.deepEqual(schema.properties.difficulty.enum, ["introductory", "intermediate", "advanced"]);
});

Deno.test("consistency: what a clinician would catch is flagged, each at its field", () => {
  const c = byFile("atrial-fibrillation.json");
  c.vitalSigns.heartRate = { value: 320, unit: "beats/min" };
  c.vitalSigns.bloodPressure = { systolic: 80, diastolic: 95, unit: "mmHg" };
  c.vitalSigns.temperature = { value: 112, unit: "°F" };
  c.investigations.push({ name: "Serum potassium", value: 4.1, unit: "", referenceRange: "3.5–5.0" });
  c.finalDiagnosis = "Thyroid storm";
  c.checklist.push({ item: "Asks about travel", category: "history", factId: "travel-abroad" });
  const flags = flagsOf(c);
  const expect = (pattern: RegExp) =>
    assert.ok(flags.some((f) => pattern.test(f)), `${pattern}\n  in: ${flags.join("\n      ")}`);
  expect(/^error vitalSigns\.heartRate: Heart rate 320 beats\/min is outside the physiological range/);
  expect(/^error vitalSigns\.bloodPressure: Diastolic pressure \(95\) must be below systolic \(80\)/);
  expect(/^error vitalSigns\.temperature: Temperature 112 °F is outside the physiological range/);
  expect(/^error investigations\.\d+\.unit: Serum potassium has a numeric result \(4\.1\) but no unit/);
  expect(/^error finalDiagnosis: The final diagnosis "Thyroid storm" is not in the differential/);
  expect(/^error checklist\.\d+\.factId: .* refers to fact "travel-abroad", which is not in the script/);

  const male = byFile("renal-colic.json");
  male.examination.push({ system: "Abdomen", findings: "Gravid uterus palpable" });
  assert.ok(flagsOf(male).some((f) => /does not fit a male patient/.test(f)));
  const adult = byFile("renal-colic.json");
  adult.examination.push({ system: "Head", findings: "Anterior fontanelle soft" });
  assert.ok(flagsOf(adult).some((f) => /fits an infant, not a patient aged 41 years/.test(f)));

  const script = byFile("acute-gout.json");
  script.script.facts[0].detail = `The doctor last year said it was ${script.finalDiagnosis}.`;
  script.script.facts.push({ ...script.script.facts[1], id: "extra-fact" });
  const scriptFlags = flagsOf(script);
  assert.ok(scriptFlags.some((f) => /^error script\.facts\.0\.detail: .* names the diagnosis/.test(f)));
  assert.ok(
    scriptFlags.some((f) => /^warning script\.facts\.\d+: Script fact .* has no checklist item/.test(f)),
  );
});

Deno.test("consistency: diagnosis matching and age wording", () => {
  assert.ok(sameDiagnosis("Acute gout of the first MTP joint", "Gout"));
  assert.ok(sameDiagnosis("Subarachnoid haemorrhage", "Aneurysmal subarachnoid haemorrhage"));
  assert.ok(!sameDiagnosis("Septic arthritis", "Gout"));
  assert.equal(formatAge(0.33), "4 months");
  assert.equal(formatAge(0.01), "4 days");
  assert.equal(formatAge(41.9), "41 years");
});

Deno.test("exports: Markdown carries the label and shows hostile text as text", () => {
  const c = byFile("renal-colic.json");
  c.title = "<script>alert(1)</script> *bold* [link](javascript:x)";
  const md = caseMarkdown(c);
  assert.ok(md.startsWith("# \\<script\\>alert(1)\\</script\\> \\*bold\\* \\[link\\](javascript:x)\n"));
  assert.equal(md.split(HYPOTHETICAL_NOTICE).length - 1, 2, "label at the top and the bottom");
  assert.match(md, /## Examiner checklist\n\n- \[ \] /);
  assert.doesNotMatch(md, /<script>/);
});

Deno.test("import: the exchange format and bare cases are read; every problem names its field", () => {
  const c = byFile("bronchiolitis.json");
  const wrapped = readImport(JSON.stringify({ format: "rounds-case", version: 1, case: c }));
  assert.ok(wrapped.ok);
  assert.deepEqual(wrapped.value, c);
  assert.ok(readImport(JSON.stringify(c)).ok);
  const cases: [string, RegExp][] = [
    ["{not json", /^\(file\): Not valid JSON/],
    ["[1, 2]", /^\(file\): Expected one case: a JSON object/],
    [JSON.stringify({ format: "other", case: c }), /^format: Expected "rounds-case", found "other"/],
    [JSON.stringify({ format: "rounds-case", version: 9, case: c }), /^version: This Rounds reads version 1/],
    [
      JSON.stringify({
        format: "rounds-case",
        version: 1,
        case: { ...c, patient: { ...c.patient, sex: "x" } },
      }),
      /^case\.patient\.sex: Sex must be female, male or intersex/,
    ],
  ];
  for (const [text, pattern] of cases) {
    const result = readImport(text);
    assert.ok(!result.ok);
    assert.match(`${result.errors[0].path}: ${result.errors[0].message}`, pattern);
  }
});

async function withLibrary(fn: (t: TestApp) => Promise<void>) {
  await withTestApp(async (t) => {
    assert.equal(await seedExampleCases(t.database.db, embedder), examples.length);
    await fn(t);
  });
}

async function caseIdByTitle(t: TestApp, title: string): Promise<string> {
  const html = await (await t.request(`/cases?q=${encodeURIComponent(title)}`)).text();
  const id = new RegExp(`href="/cases/([0-9a-f-]{36})" class="case-title">${escapeRegExp(title)}<`).exec(html)
    ?.[1];
  assert.ok(id, `case "${title}" is listed`);
  return id;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/'/g, "&#39;").replace(/"/g, "&quot;");
}

Deno.test(`library [${DRIVER}]: examples seeded once; search by words and by meaning; filters`, async () => {
  await withLibrary(async (t) => {
    const db = t.database.db;
    assert.equal(await seedExampleCases(db, embedder), 0, "a second start adds nothing");
    const home = await (await t.request("/cases")).text();
    assert.match(home, new RegExp(`${examples.length} cases, newest first`));
    assert.match(home, /aria-current="page">Cases</);

    const sah = byFile("subarachnoid-haemorrhage.json");
    const words = await (await t.request(`/cases?q=${encodeURIComponent("worst headache")}`)).text();
    assert.ok(words.indexOf(escapeHtml(sah.title)) !== -1, "found by its words");

    const specialty = encodeURIComponent(sah.specialty);
    const filtered = await (await t.request(`/cases?specialty=${specialty}`)).text();
    assert.ok(filtered.includes(escapeHtml(sah.title)));
    assert.equal(
      filtered.match(/class="case-card"/g)?.length,
      examples.filter((e) => e.value.specialty === sah.specialty).length,
    );

    const level = examples[0].value.learnerLevel;
    const byLevel = await (await t.request(`/cases?level=${encodeURIComponent(level)}`)).text();
    assert.equal(
      byLevel.match(/class="case-card"/g)?.length,
      examples.filter((e) => e.value.learnerLevel === level).length,
    );

    const tag = examples[0].value.tags[0];
    const byTag = await (await t.request(`/cases?tag=${encodeURIComponent(tag)}`)).text();
    assert.ok(byTag.includes(escapeHtml(examples[0].value.title)));

    const none = await (await t.request("/cases?q=zzzqqq")).text();
    assert.match(none, /No case matches “zzzqqq”/);

    const fragment = await t.request("/cases?q=headache", {
      headers: { "hx-request": "true", "hx-target": "case-results" },
    });
    const body = await fragment.text();
    assert.doesNotMatch(body, /<html/);
    assert.match(body, /class="case-list"/);
  });
});

Deno.test(`library [${DRIVER}]: a search lists the cases with every word, as a phrase first, before the rest (issue 20, item 5)`, async () => {
  await withLibrary(async (t) => {
    const db = t.database.db;
    const chest = byFile("atrial-fibrillation.json");
    chest.title = "Central chest pain on climbing stairs in a 63-year-old builder";
    chest.tags = ["chest pain"];
    await addCase(db, embedder, chest, { origin: "imported", note: "Imported", ownerId: null });
    const titles = async (q: string) => {
      const html = await (await t.request(`/cases?q=${encodeURIComponent(q)}`)).text();
      return [...html.matchAll(/class="case-title">([^<]+)</g)].map((m) => m[1]);
    };
    // Before, every case with "pain" came in the order of how often it said it: renal colic and the red eye first.
    assert.equal((await titles("chest pain"))[0], escapeHtml(chest.title));
    assert.equal((await titles("loin pain"))[0], escapeHtml(byFile("renal-colic.json").title));
    assert.equal(
      (await titles("worst headache"))[0],
      escapeHtml(byFile("subarachnoid-haemorrhage.json").title),
    );
  });
});

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

Deno.test(`library [${DRIVER}]: an emptied library stays empty and offers the examples`, async () => {
  await withLibrary(async (t) => {
    const id = await caseIdByTitle(t, examples[0].value.title);
    await t.database.db.execute(sql`delete from cases`);
    assert.equal(await seedExampleCases(t.database.db, embedder), 0);
    const empty = await (await t.request("/cases")).text();
    assert.match(empty, /The library is empty/);
    assert.match(empty, new RegExp(`Add the ${examples.length} example cases`));
    const added = await t.request("/cases/examples", { method: "POST" });
    assert.equal(added.status, 303);
    assert.equal(added.headers.get("location"), `/cases?added=${examples.length}`);
    assert.equal((await caseFacets(t.database.db)).total, examples.length);
    assert.equal((await t.request(`/cases/${id}`)).status, 404, "the deleted case is gone");
    // Pressed again (by any educator, any number of times): nothing more is added (issue 19, item 17).
    const again = await t.request("/cases/examples", { method: "POST" });
    assert.equal(again.headers.get("location"), "/cases?done=examples-present");
    assert.equal((await caseFacets(t.database.db)).total, examples.length);
    assert.match(await (await t.request("/cases?done=examples-present")).text(), /nothing was added/);
  });
});

Deno.test(`library [${DRIVER}]: a case page, its JSON and Markdown, and an import round trip`, async () => {
  await withLibrary(async (t) => {
    const original = byFile("acute-gout.json");
    const id = await caseIdByTitle(t, original.title);
    const page = await (await t.request(`/cases/${id}`)).text();
    assert.match(page, /Hypothetical case\.<\/strong> Written for medical education/);
    assert.match(page, /nothing flagged/);
    assert.ok(page.includes(escapeHtml(original.finalDiagnosis)));
    for (
      const link of [`/cases/${id}/print`, `/cases/${id}.md`, `/cases/${id}.json`, `/cases/${id}/delete`]
    ) {
      assert.ok(page.includes(`href="${link}"`), link);
    }

    const json = await t.request(`/cases/${id}.json`);
    assert.equal(json.status, 200);
    assert.match(
      json.headers.get("content-disposition")!,
      /attachment; filename="a-hot-swollen-big-toe.*\.json"/,
    );
    const exported = await json.json();
    assert.equal(exported.format, "rounds-case");
    assert.equal(exported.notice, HYPOTHETICAL_NOTICE);
    assert.deepEqual(exported.case, original);

    const md = await t.request(`/cases/${id}.md`);
    assert.equal(md.headers.get("content-type"), "text/markdown; charset=utf-8");
    assert.match(await md.text(), /^# A hot, swollen big toe/);

    const form = new FormData();
    form.set("file", new File([JSON.stringify(exported)], "case.json", { type: "application/json" }));
    const imported = await t.request("/cases/import", { method: "POST", body: form });
    assert.equal(imported.status, 303);
    const landing = imported.headers.get("location")!;
    assert.match(landing, /\?done=imported-renamed$/, "the example's title was taken");
    const newId = new URL(landing, "http://x").pathname.split("/").pop()!;
    assert.notEqual(newId, id);
    const stored = await getCase(t.database.db, newId);
    assert.deepEqual(stored!.current.data, { ...original, title: `${original.title} (2)` });
    assert.equal(stored!.summary.origin, "imported");
    const landed = await (await t.request(landing)).text();
    assert.match(landed, /Imported as version 1\. A case with the same title was already in the library/);
    // Again: the next number; and a title nobody has is kept as it is.
    const again = await t.request("/cases/import", { method: "POST", body: form });
    const third =
      (await getCase(t.database.db, again.headers.get("location")!.split("/").pop()!.split("?")[0]))!;
    assert.equal(third.summary.title, `${original.title} (3)`);
    const fresh = new FormData();
    fresh.set(
      "json",
      JSON.stringify({ ...exported, case: { ...original, title: "A title no one has, 50% _new_" } }),
    );
    const kept = await t.request("/cases/import", { method: "POST", body: fresh });
    assert.match(kept.headers.get("location")!, /\?done=imported$/);
  });
});

Deno.test(`library [${DRIVER}]: a rejected import lists each problem and keeps the text`, async () => {
  await withLibrary(async (t) => {
    const c = byFile("renal-colic.json") as Record<string, unknown>;
    const text = JSON.stringify({
      format: "rounds-case",
      version: 1,
      case: { ...c, title: "", investigations: "none" },
    });
    const form = new FormData();
    form.set("json", text);
    const response = await t.request("/cases/import", { method: "POST", body: form });
    assert.equal(response.status, 422);
    const html = await response.text();
    assert.match(html, /The case was not imported: 2 problems to fix/);
    assert.match(html, /<code>case\.title<\/code>: Title is required/);
    assert.match(html, /<code>case\.investigations<\/code>: Investigations must be a list/);
    assert.ok(html.includes(escapeHtml(text).slice(0, 200)), "the pasted text is kept");
    const empty = await t.request("/cases/import", { method: "POST", body: new FormData() });
    assert.equal(empty.status, 422);
    assert.match(await empty.text(), /Nothing to import/);
    assert.equal((await caseFacets(t.database.db)).total, examples.length, "nothing was added");
  });
});

Deno.test(`library [${DRIVER}]: hostile case text is escaped on every page`, async () => {
  await withLibrary(async (t) => {
    const c = byFile("renal-colic.json");
    c.title = `<img src=x onerror=alert(1)> <script>alert(2)</script>`;
    c.chiefComplaint = `<a hx-get="/evil" href="javascript:alert(3)">click</a>`;
    c.script.facts[0].detail = `</td><script>alert(4)</script>`;
    const { id } = await addCase(t.database.db, embedder, c, { origin: "imported", note: "Imported" });
    for (const path of [`/cases/${id}`, `/cases/${id}/print`, `/cases?q=alert`, `/cases/${id}/delete`]) {
      const html = await (await t.request(path)).text();
      assert.doesNotMatch(html, /<script>alert|<img src=x|<a hx-get="\/evil"|<\/td><script>/, path);
    }
  });
});

Deno.test(`library [${DRIVER}]: versions are kept; an old one can be viewed and restored`, async () => {
  await withLibrary(async (t) => {
    const db = t.database.db;
    const original = byFile("delirium-urinary-infection.json");
    const id = await caseIdByTitle(t, original.title);
    const edited = {
      ...structuredClone(original),
      title: "Delirium, edited",
      difficulty: "advanced" as const,
    };
    edited.vitalSigns.heartRate = { value: 400, unit: "beats/min" };
    const saved = await updateCase(db, embedder, id, edited, "Edited the title and heart rate");
    assert.equal(saved?.version, 2);
    assert.ok(saved!.flags.some((f) => f.path === "vitalSigns.heartRate"), "flags are stored with the edit");
    const current = await (await t.request(`/cases/${id}`)).text();
    assert.match(current, /Consistency checks: 1 problem/);
    assert.match(current, /Heart rate 400 beats\/min is outside the physiological range/);
    assert.match(current, /badge-error">1 problem/);

    const old = await t.request(`/cases/${id}/versions/1`);
    assert.equal(old.status, 200);
    const oldHtml = await old.text();
    assert.match(oldHtml, /You are looking at version 1\. The current version is 2\./);
    assert.ok(oldHtml.includes(escapeHtml(original.title)));

    const restored = await t.request(`/cases/${id}/versions/1/restore`, { method: "POST" });
    assert.equal(restored.status, 303);
    assert.equal(restored.headers.get("location"), `/cases/${id}?restored=1`);
    const found = await getCase(db, id);
    assert.equal(found!.summary.currentVersion, 3);
    assert.deepEqual(found!.current.data, original);
    assert.equal(found!.summary.title, original.title);
    assert.equal(found!.summary.errorCount, 0);
    assert.deepEqual((await listVersions(db, id)).map((v) => [v.version, v.note, v.errors]), [
      [3, "Restored version 1", 0],
      [2, "Edited the title and heart rate", 1],
      [1, "Added from the example cases", 0],
    ]);
    assert.equal((await t.request(`/cases/${id}/versions/9`)).status, 404);
    assert.equal((await t.request(`/cases/${id}/versions/abc/restore`, { method: "POST" })).status, 404);
  });
});

Deno.test(`library [${DRIVER}]: duplicate, then delete with confirmation`, async () => {
  await withLibrary(async (t) => {
    const original = byFile("bronchiolitis.json");
    const id = await caseIdByTitle(t, original.title);
    const copy = await t.request(`/cases/${id}/duplicate`, { method: "POST" });
    assert.equal(copy.status, 303);
    const copyId = /\/cases\/([0-9a-f-]{36})\?duplicated/.exec(copy.headers.get("location")!)![1];
    const copied = await getCase(t.database.db, copyId);
    assert.equal(copied!.summary.title, `Copy of ${original.title}`);
    assert.match((await listVersions(t.database.db, copyId))[0].note, /^Duplicated from “A four-month-old/);

    const confirm = await (await t.request(`/cases/${copyId}/delete`)).text();
    assert.match(confirm, /Delete this case\?/);
    assert.match(confirm, /and its 1 version will be deleted for good/);
    const deleted = await t.request(`/cases/${copyId}/delete`, { method: "POST" });
    assert.equal(deleted.status, 303);
    assert.equal(deleted.headers.get("location"), "/cases?done=deleted");
    assert.match(await (await t.request("/cases?done=deleted")).text(), /The case was deleted\./);
    assert.equal((await t.request(`/cases/${copyId}`)).status, 404);
    assert.equal((await t.request(`/cases/${copyId}/delete`, { method: "POST" })).status, 404);
    assert.ok(await getCase(t.database.db, id), "the original is untouched");
    for (
      const path of [
        "/cases/not-a-uuid",
        "/cases/00000000-0000-0000-0000-000000000000.json",
        "/cases/x/print",
      ]
    ) {
      assert.equal((await t.request(path)).status, 404, path);
    }
  });
});

Deno.test(`library [${DRIVER}]: the print pack has three labelled pages with print styles`, async () => {
  await withLibrary(async (t) => {
    const c = byFile("subarachnoid-haemorrhage.json");
    const id = await caseIdByTitle(t, c.title);
    const html = await (await t.request(`/cases/${id}/print`)).text();
    assert.equal(html.match(/class="station-page"/g)?.length, 3);
    assert.equal(html.split(HYPOTHETICAL_NOTICE).length - 1, 3, "each page carries the label");
    for (
      const part of [
        "Candidate brief",
        "Standardized-patient script (actor only)",
        "Examiner mark sheet (examiner only)",
      ]
    ) {
      assert.ok(html.includes(part), part);
    }
    const brief = html.slice(html.indexOf("Candidate brief"), html.indexOf("Standardized-patient script"));
    assert.ok(
      !brief.includes(escapeHtml(c.finalDiagnosis)),
      "the candidate brief does not give the diagnosis away",
    );
    // A standard mark sheet: 2 / 1 / 0 per item, a total, a global rating, who and when, the station's timing.
    const sheet = html.slice(html.indexOf("Examiner mark sheet"));
    assert.equal(sheet.match(/<tr><td>/g)?.length, c.checklist.length);
    assert.equal(
      sheet.match(/class="tickbox"/g)?.length,
      c.checklist.length * 3 + 5,
      "three boxes per item, five ratings",
    );
    assert.match(sheet, new RegExp(`______ / ${c.checklist.length * 2}`));
    for (
      const part of ["Done well (2)", "Partly (1)", "Not done (0)", "Borderline pass", "Examiner", "Date"]
    ) {
      assert.ok(sheet.includes(part), part);
    }
    assert.match(brief, /Candidate name or number/);
    assert.match(brief, /1 minute to read this brief, then 10\s+minutes in the station/);
    const css = await (await t.request(html.match(/href="(\/static\/app\.css[^"]*)"/)![1])).text();
    assert.match(css, /@media print[\s\S]*\.station-page[\s\S]*break-before: page/);
  });
});

/** The values a browser would submit for the first form in an HTML fragment, as rendered. */
function formValues(html: string): Record<string, string> {
  const values: Record<string, string> = {};
  let textarea: string | null = null;
  let select: string | null = null;
  let firstOption: string | null = null;
  let option: { value: string; selected: boolean } | null = null;
  const parser = new Parser({
    onopentag(name, attrs) {
      if (name === "input" && attrs.name && attrs.type !== "file") values[attrs.name] = attrs.value ?? "";
      if (name === "textarea" && attrs.name) (textarea = attrs.name), (values[attrs.name] = "");
      if (name === "select" && attrs.name) (select = attrs.name), (firstOption = null);
      if (name === "option" && select) option = { value: attrs.value ?? "", selected: "selected" in attrs };
    },
    ontext(text) {
      if (textarea) values[textarea] += text;
    },
    onclosetag(name) {
      if (name === "textarea") textarea = null;
      if (name === "option" && select && option) {
        firstOption ??= option.value;
        if (option.selected) values[select] = option.value;
        option = null;
      }
      if (name === "select" && select) {
        values[select] ??= firstOption ?? "";
        select = null;
      }
    },
  }, { decodeEntities: true });
  parser.write(html);
  parser.end();
  return values;
}

function body(values: Record<string, string>): FormData {
  const data = new FormData();
  for (const [k, v] of Object.entries(values)) data.set(k, v);
  return data;
}

Deno.test(`editing [${DRIVER}]: every section's form, submitted unchanged, saves the same case`, async () => {
  await withLibrary(async (t) => {
    for (const file of ["acute-gout.json", "bronchiolitis.json"]) {
      const original = byFile(file);
      const id = await caseIdByTitle(t, original.title);
      for (const section of EDIT_SECTIONS) {
        const editor = await t.request(`/cases/${id}/sections/${section.name}/edit`, { headers: HX });
        assert.equal(editor.status, 200);
        const html = await editor.text();
        assert.doesNotMatch(html, /<html/, "a fragment for htmx");
        const saved = await t.request(`/cases/${id}/sections/${section.name}`, {
          method: "POST",
          headers: HX,
          body: body(formValues(html)),
        });
        assert.equal(saved.status, 200, `${file} ${section.name}: ${await saved.clone().text()}`);
        assert.deepEqual(
          (await getCase(t.database.db, id))!.current.data,
          original,
          `${file} ${section.name}`,
        );
      }
      assert.equal((await getCase(t.database.db, id))!.summary.currentVersion, EDIT_SECTIONS.length + 1);
    }
  });
});

Deno.test(`editing [${DRIVER}]: a saved edit is a new version, with flags and history refreshed`, async () => {
  await withLibrary(async (t) => {
    const original = byFile("renal-colic.json");
    const id = await caseIdByTitle(t, original.title);
    const page = await (await t.request(`/cases/${id}`)).text();
    assert.ok(
      page.includes(`hx-get="/cases/${id}/sections/vitalSigns/edit"`),
      "each section has an Edit button",
    );
    const values = formValues(
      await (await t.request(`/cases/${id}/sections/vitalSigns/edit`, { headers: HX })).text(),
    );
    assert.equal(values["vitalSigns.heartRate.value"], "102");
    // The flags' place is on the page whether or not anything is flagged yet: a save fills it in.
    assert.match(page, /id="case-flags"/);
    values["vitalSigns.heartRate.value"] = "400";
    values["vitalSigns.temperature.value"] = "";
    // Numbers as people type them: another script's digits, a decimal comma, non-breaking spaces.
    values["vitalSigns.respiratoryRate.value"] = "\u0661\u0668";
    values["vitalSigns.weight.value"] = "\u00a072,5\u00a0";
    const saved = await t.request(`/cases/${id}/sections/vitalSigns`, {
      method: "POST",
      headers: HX,
      body: body(values),
    });
    assert.equal(saved.status, 200);
    const html = await saved.text();
    assert.match(html, /Saved as version 2\. Consistency checks found 1 problem/);
    assert.match(
      html,
      /<hx-partial hx-target="#case-flags" hx-swap="outerHTML">[\s\S]*Heart rate 400 beats\/min/,
    );
    assert.match(html, /<a class="flag-where" href="#section-vitalSigns">\(Vital signs\)<\/a>/);
    assert.match(html, /<hx-partial hx-target="#case-history"[\s\S]*Edited vital signs/);
    assert.ok(html.includes(`href="/cases/${id}/versions/2/changes">what changed</a>`));
    // What the save changed, field by field.
    const changes = await (await t.request(`/cases/${id}/versions/2/changes`)).text();
    assert.match(changes, /What version 2 changed/);
    assert.match(
      changes,
      /<th scope="row">Vital signs · heart rate · value<\/th><td class="before"><span class="plain">102<\/span><\/td><td class="after"><span class="plain">400<\/span>/,
    );
    assert.match(changes, /Vital signs · weight · value/);
    assert.equal((await t.request(`/cases/${id}/versions/1/changes`)).status, 404, "version 1 has no before");
    const stored = (await getCase(t.database.db, id))!;
    const c = stored.current.data as Case;
    assert.equal(c.vitalSigns.heartRate?.value, 400);
    assert.equal(c.vitalSigns.temperature, undefined, "an emptied value is removed");
    assert.equal(c.vitalSigns.respiratoryRate?.value, 18);
    assert.equal(c.vitalSigns.weight?.value, 72.5);
    assert.equal(stored.summary.errorCount, 1);

    // Tables: clear a row to delete it, fill a blank one to add.
    const dx = formValues(
      await (await t.request(`/cases/${id}/sections/diagnosis/edit`, { headers: HX })).text(),
    );
    const rows = Number(dx["differential.rows"]);
    assert.equal(rows, original.differential.length + 2);
    for (const key of ["diagnosis", "likelihood", "reasoning"]) dx[`differential.1.${key}`] = "";
    dx[`differential.${rows - 1}.diagnosis`] = "Pyelonephritis";
    dx[`differential.${rows - 1}.likelihood`] = "possible";
    dx[`differential.${rows - 1}.reasoning`] = "Loin pain, but no fever and a clean dipstick for nitrites.";
    const plain = await t.request(`/cases/${id}/sections/diagnosis`, { method: "POST", body: body(dx) });
    assert.equal(plain.status, 303, "without htmx, back to the case");
    assert.equal(plain.headers.get("location"), `/cases/${id}#section-diagnosis`);
    const differential = ((await getCase(t.database.db, id))!.current.data as Case).differential;
    assert.deepEqual(
      differential.map((d) => d.diagnosis),
      [original.differential[0], ...original.differential.slice(2)].map((d) => d.diagnosis).concat(
        "Pyelonephritis",
      ),
    );
  });
});

Deno.test(`editing [${DRIVER}]: invalid or stale edits are refused with the reasons, and nothing changes`, async () => {
  await withLibrary(async (t) => {
    const original = byFile("acute-gout.json");
    const id = await caseIdByTitle(t, original.title);
    const values = formValues(
      await (await t.request(`/cases/${id}/sections/patient/edit`, { headers: HX })).text(),
    );
    const bad = { ...values, "patient.age": "old", "patient.name": "", chiefComplaint: "<script>x</script>" };
    const refused = await t.request(`/cases/${id}/sections/patient`, {
      method: "POST",
      headers: HX,
      body: body(bad),
    });
    assert.equal(refused.status, 422);
    const html = await refused.text();
    assert.match(html, /Not saved: 2 problems to fix/);
    // Each problem in words, linked to its field, and said again under the field; no field paths.
    assert.match(html, /<a href="#f-patient-age">Age must be a number of years<\/a>/);
    assert.match(html, /<a href="#f-patient-name">Patient name is required<\/a>/);
    assert.doesNotMatch(html, /<code>patient\./);
    assert.match(
      html,
      /id="f-patient-age" name="patient\.age" value="old" inputmode="decimal" [^>]*aria-invalid="true"/,
      "what was typed is kept",
    );
    assert.match(
      html,
      /aria-invalid="true"\/><span class="field-error">Age must be a number of years<\/span>/,
    );
    assert.doesNotMatch(html, /<script>x/);

    const stale = { ...values, base_version: "1", "patient.occupation": "Sous-chef" };
    await updateCase(
      t.database.db,
      embedder,
      id,
      { ...original, title: "Changed elsewhere" },
      "Edited overview",
    );
    const conflict = await t.request(`/cases/${id}/sections/patient`, {
      method: "POST",
      headers: HX,
      body: body(stale),
    });
    assert.equal(conflict.status, 409);
    assert.match(
      await conflict.text(),
      /Someone saved this case while you were editing \(it is now version 2\)/,
    );
    const stored = (await getCase(t.database.db, id))!;
    assert.equal(stored.summary.currentVersion, 2);
    assert.equal((stored.current.data as Case).patient.occupation, original.patient.occupation);
    assert.equal((await t.request(`/cases/${id}/sections/nonsense/edit`)).status, 404);
    const page = await t.request(`/cases/${id}/sections/patient/edit`);
    assert.match(await page.text(), /<title>Edit patient · Changed elsewhere · Rounds<\/title>/);
  });
});
