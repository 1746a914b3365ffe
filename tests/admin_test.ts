/**
 * Administration through the web: adding users, disabling, re-enabling, changing roles, signing someone out
 * everywhere, and the guards around the last administrator. Every change is audited.
 */
import assert from "node:assert/strict";
import { listAudit } from "../db/audit.ts";
import { findUserByEmail } from "../db/users.ts";
import { verifyPassword } from "../safety/passwords.ts";
import { DRIVER, withTestApp } from "./support/test_app.ts";

const FORM = { "content-type": "application/x-www-form-urlencoded" };

Deno.test(`admin [${DRIVER}]: add a user with a role; bad input comes back with every problem and the values kept`, async () => {
  await withTestApp(async (t) => {
    const post = (fields: Record<string, string>) =>
      t.request("/admin/users", { method: "POST", headers: FORM, body: new URLSearchParams(fields) });
    const bad = await post({
      email: "not an email",
      name: "Dr <b>Bad</b>",
      role: "surgeon",
      password: "short",
    });
    assert.equal(bad.status, 422);
    const html = await bad.text();
    assert.match(html, /Enter a valid email address/);
    assert.match(html, /Choose a role: clinician, educator, admin/);
    assert.match(html, /at least 12 characters/);
    assert.match(html, /value="Dr &lt;b&gt;Bad&lt;\/b&gt;"/, "the typed name is kept, escaped");

    const ok = await post({
      email: "New.Doc@Example.test",
      name: "Dr New",
      role: "educator",
      password: "a long enough password",
    });
    assert.equal(ok.status, 303);
    assert.match(
      decodeURIComponent(ok.headers.get("location")!),
      /Added new\.doc@example\.test \(educator\)/,
    );
    const user = await findUserByEmail(t.database.db, "new.doc@example.test");
    assert.equal(user?.role, "educator");
    assert.ok(await verifyPassword("a long enough password", user!.passwordHash));

    const again = await post({
      email: "new.doc@example.test",
      role: "clinician",
      password: "a long enough password",
    });
    assert.equal(again.status, 422);
    assert.match(await again.text(), /already an account for new\.doc@example\.test/);

    const page = await (await t.request("/admin/users")).text();
    assert.match(page, /new\.doc@example\.test/);
    assert.match(page, /2 accounts/);
    const created = await listAudit(t.database.db, { action: "user.create" });
    assert.equal(created.length, 1);
    assert.equal(created[0].objectId, user!.id);
    assert.equal(created[0].actor, t.user.email);
  });
});

Deno.test(`admin [${DRIVER}]: disable signs the user out, enable lets them back, roles change; the last admin stays`, async () => {
  await withTestApp(async (t) => {
    const clinician = await t.addUser("clinician");
    const change = (userId: string, action: string, fields: Record<string, string> = {}) =>
      t.request(`/admin/users/${userId}/${action}`, {
        method: "POST",
        headers: FORM,
        body: new URLSearchParams(fields),
      });
    assert.equal((await clinician.request("/")).status, 200);
    assert.equal((await change(clinician.id, "disable")).status, 303);
    assert.equal((await clinician.request("/")).status, 303, "disabled: signed out");
    assert.equal((await change(clinician.id, "enable")).status, 303);
    // The audit log names the account and says what was done, in words.
    const audit = await (await t.request("/admin/audit?type=user")).text();
    assert.match(
      audit,
      new RegExp(`Disabled an account</span></td><td><a href="/admin/audit\\?object=${clinician.id}"`),
    );
    assert.ok(audit.includes(`Account: ${clinician.email}`), "the account by its email");
    const back = await t.addUser("clinician", clinician.email);
    assert.equal((await back.request("/")).status, 200, "enabled: may sign in again");

    assert.equal((await change(back.id, "role", { role: "educator" })).status, 303);
    assert.equal((await findUserByEmail(t.database.db, clinician.email))?.role, "educator");
    assert.equal((await change(back.id, "role", { role: "superuser" })).status, 422);

    assert.equal((await change(back.id, "signout")).status, 303);
    assert.equal((await back.request("/")).status, 303, "signed out everywhere");

    assert.equal((await change(t.user.id, "disable")).status, 409, "not yourself");
    const demote = await change(t.user.id, "role", { role: "clinician" });
    assert.equal(demote.status, 409);
    assert.match(await demote.text(), /last active administrator/);
    assert.equal((await change(crypto.randomUUID(), "disable")).status, 404);

    const actions = (await listAudit(t.database.db, { action: "user." })).map((e) => e.action).sort();
    assert.deepEqual(actions, ["user.disable", "user.enable", "user.role", "user.signout"]);
  });
});
