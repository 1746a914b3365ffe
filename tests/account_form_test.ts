/**
 * The new-account forms (safety/account_form.ts): an administrator's "Add user" and the first run's setup read
 * the same schema, report every problem in the order the form shows its fields, and never echo the password.
 */
import assert from "node:assert/strict";
import { readAccountForm } from "../safety/account_form.ts";

const PASSWORD = "correct horse battery staple";

Deno.test("account form: setup makes an admin from a normalised email; the password is typed twice", () => {
  const ok = readAccountForm(
    { _csrf: "x", email: " Lead@Example.TEST ", name: "  Dr Lead ", password: PASSWORD, confirm: PASSWORD },
    { role: false, confirm: true },
  );
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.account, {
    email: "lead@example.test",
    name: "Dr Lead",
    role: "admin",
    password: PASSWORD,
  });
  const differ = readAccountForm(
    { email: "lead@example.test", password: PASSWORD, confirm: PASSWORD + "!" },
    { role: false, confirm: true },
  );
  assert.deepEqual(differ.errors, ["The two passwords differ"]);
  assert.equal(differ.account, null);
});

Deno.test("account form: every problem of an administrator's form, in field order, without the password", () => {
  const bad = readAccountForm(
    { email: "not an email", name: "x".repeat(500), role: "boss", password: "short" },
    { role: true, confirm: false },
  );
  assert.deepEqual(bad.errors, [
    "Enter a valid email address",
    "Choose a role: clinician, educator, admin",
    "A password needs at least 12 characters (a few words make a good one)",
  ]);
  assert.deepEqual(bad.values, { email: "not an email", name: "x".repeat(120), role: "clinician" });
  assert.ok(!JSON.stringify(bad).includes('"short"'), "the password is never shown again");
  const educator = readAccountForm(
    { email: "ed@example.test", role: "educator", password: PASSWORD },
    { role: true, confirm: false },
  );
  assert.equal(educator.account?.role, "educator");
});
