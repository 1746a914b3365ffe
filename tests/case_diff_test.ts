import assert from "node:assert/strict";
import { readExampleCases } from "../cases/library.ts";
import { diffCases } from "../cases/diff.ts";

const renal = (await readExampleCases()).find((e) => e.file === "renal-colic.json")!.value;

Deno.test("case versions: what changed is listed field by field, in words, in page order", () => {
  assert.deepEqual(diffCases(renal, structuredClone(renal)), [], "no change, nothing listed");
  const edited = structuredClone(renal);
  edited.vitalSigns.heartRate = { value: 400, unit: "beats/min" };
  edited.title = "Renal colic, edited";
  edited.investigations[1].value = 98;
  edited.investigations.push({ name: "Lactate", value: 1.1, unit: "mmol/L", referenceRange: "0.5–2.2" });
  delete edited.vitalSigns.temperature;
  const changes = diffCases(renal, edited);
  assert.deepEqual(changes[0], {
    section: "Overview",
    field: "Title",
    before: renal.title,
    after: edited.title,
  });
  const heart = changes.find((c) => c.field === "Vital signs · heart rate · value");
  assert.deepEqual(heart && [heart.section, heart.before, heart.after], [
    "Vital signs",
    String(renal.vitalSigns.heartRate!.value),
    "400",
  ]);
  assert.ok(
    changes.some((c) => c.section === "Vital signs" && c.field.includes("temperature") && c.after === null),
  );
  const hb = changes.find((c) => c.field.endsWith("row 2 · value"));
  assert.deepEqual(hb && [hb.section, hb.before, hb.after], ["Investigations", "152", "98"]);
  assert.ok(
    changes.some((c) => c.field.includes("row 14 · name") && c.before === null && c.after === "Lactate"),
  );
  const sections = changes.map((c) => c.section);
  assert.deepEqual(sections, [...sections].sort((a, b) => order(a) - order(b)), "page order");
});

const order = (title: string) => ["Overview", "Vital signs", "Investigations"].indexOf(title);
