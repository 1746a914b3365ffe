/**
 * Guards and audit labels sit on the routes they protect (routes/guards.ts). This walks every route the app
 * registers and fails when a chat or case route has no guard, when a change is not audited, or when an audit
 * label comes after the guard (a refusal would then go unrecorded), and checks that a refusal is recorded.
 */
import assert from "node:assert/strict";
import { listAudit } from "../db/audit.ts";
import { type GuardKind, guardKind } from "../routes/guards.ts";
import { DRIVER, withTestApp } from "./support/test_app.ts";

Deno.test(`guards [${DRIVER}]: every chat and case route carries its guard, and every change its audit label`, async () => {
  await withTestApp((t) => {
    const chains = new Map<string, (GuardKind | "handler")[]>();
    for (const route of t.app.routes) {
      const key = `${route.method} ${route.path}`;
      chains.set(key, [...chains.get(key) ?? [], guardKind(route.handler) ?? "handler"]);
    }
    const problems: string[] = [];
    let checked = 0;
    for (const [key, chain] of chains) {
      const [method, path] = key.split(" ");
      if (method === "ALL") continue;
      const needs: GuardKind[] = [];
      if (path.startsWith("/sessions/:id")) needs.push("chat");
      if (/^\/cases\/:(id|ref)/.test(path)) needs.push("case");
      if (/^\/(cases|sessions)/.test(path) && method !== "GET") needs.push("audit");
      if (needs.length === 0) continue;
      checked++;
      for (const kind of needs) if (!chain.includes(kind)) problems.push(`${key} has no ${kind} guard`);
      const audit = chain.indexOf("audit");
      const guard = chain.findIndex((k) => k === "chat" || k === "case" || k === "role");
      if (audit >= 0 && guard >= 0 && audit > guard) problems.push(`${key} audits after its guard`);
    }
    assert.deepEqual(problems, []);
    assert.ok(checked >= 25, `only ${checked} chat and case routes found: the walk is not seeing the routes`);
    // The admin pages sit behind one role guard for the whole /admin tree.
    for (const path of ["/admin", "/admin/*"]) {
      assert.ok(
        t.app.routes.some((r) => r.method === "ALL" && r.path === path && guardKind(r.handler) === "role"),
        `${path} has no role guard`,
      );
    }
    return Promise.resolve();
  }, { users: false });
});

Deno.test(`guards [${DRIVER}]: a refused change is refused by the route's guard and recorded with its status`, async () => {
  await withTestApp(async (t) => {
    const clinician = await t.addUser("clinician");
    const educator = await t.addUser("educator");
    assert.equal((await t.request("/cases/examples", { method: "POST" })).status, 303);
    const [example] = await listAudit(t.database.db, { action: "case.add_examples" });
    assert.ok(example, "adding the examples is audited");
    const page = await (await clinician.request("/cases")).text();
    const caseId = /href="\/cases\/([0-9a-f-]{36})"/.exec(page)?.[1];
    assert.ok(caseId, "the library lists the example cases");

    const duplicate = await clinician.request(`/cases/${caseId}/duplicate`, { method: "POST" });
    assert.equal(duplicate.status, 403);
    assert.match(await duplicate.text(), /writing them is for educators/);
    const edit = await educator.request(`/cases/${caseId}/sections/overview/edit`);
    assert.equal(edit.status, 403, "an educator may not edit an example case they do not own");
    assert.equal((await clinician.request(`/cases/${caseId}/practice`, { method: "POST" })).status, 303);
    assert.equal((await clinician.request(`/cases/${caseId}.json`)).status, 200);

    const entries = await listAudit(t.database.db, { userId: clinician.id });
    const seen = entries.map((e) =>
      `${e.action} ${e.objectId === caseId ? "case" : e.objectId} ${e.outcome}`
    );
    assert.ok(seen.includes("case.duplicate case 403"), seen.join("\n"));
    assert.ok(seen.includes("practice.start case 303"), seen.join("\n"));
    assert.ok(seen.includes("case.export case 200"), seen.join("\n"));
    // Another user's chat answers 404 and is recorded as a denied access, not as a read.
    const chat = /\/sessions\/([0-9a-f-]{36})/.exec(
      (await clinician.request("/sessions", { method: "POST", body: new URLSearchParams({ title: "x" }) }))
        .headers.get("location") ?? "",
    )?.[1];
    assert.ok(chat);
    assert.equal((await educator.request(`/sessions/${chat}`)).status, 404);
    const denied = await listAudit(t.database.db, { userId: educator.id, action: "access.denied" });
    assert.deepEqual(denied.map((e) => [e.objectType, e.objectId, e.outcome]), [["session", chat, "404"]]);
  });
});
