import assert from "node:assert/strict";
import { parseReferenceRange, resultFlag } from "../cases/reference_range.ts";

Deno.test("reference ranges: written as people write them, and results flagged H or L only when readable", () => {
  assert.deepEqual(parseReferenceRange("130–170"), { low: 130, high: 170 });
  assert.deepEqual(parseReferenceRange(" 4.0 - 11.0 "), { low: 4, high: 11 });
  assert.deepEqual(parseReferenceRange("2,20 to 2,60"), { low: 2.2, high: 2.6 });
  assert.deepEqual(parseReferenceRange("<5"), { low: null, high: 5, exclusive: true });
  assert.deepEqual(parseReferenceRange("≤\u00a05"), { low: null, high: 5, exclusive: false });
  assert.deepEqual(parseReferenceRange(">60"), { low: 60, high: null, exclusive: true });
  assert.deepEqual(parseReferenceRange("１３５–１４５"), { low: 135, high: 145 }, "full-width digits");
  for (const unreadable of ["", "negative", "see comment", "170–130", "5 mmol"]) {
    assert.equal(parseReferenceRange(unreadable), null, unreadable);
  }
  assert.equal(resultFlag(6, "<5"), "H");
  assert.equal(resultFlag(5, "<5"), "H", "'<5' leaves 5 out");
  assert.equal(resultFlag(5, "≤5"), null, "'≤5' keeps it");
  assert.equal(resultFlag(170, "130–170"), null);
  assert.equal(resultFlag(55, ">60"), "L");
  assert.equal(resultFlag(152, "130–170"), null);
  assert.equal(resultFlag(2.1, "2.20–2.60"), "L");
  assert.equal(resultFlag(12.5, "4.0–11.0"), "H");
  assert.equal(resultFlag("Blood 3+", ""), null);
  assert.equal(resultFlag(7, "negative"), null, "no guess on an unreadable range");
});
