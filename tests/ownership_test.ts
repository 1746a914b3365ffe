/**
 * Access control by enumeration: every route of the app that takes an id is requested by a second user with the
 * first user's ids. Each answers 404 (or 403 where the route is for admins only), exactly like an id that does
 * not exist. A route added later without a guard fails this test.
 */
import assert from "node:assert/strict";
import { setUserRole } from "../db/users.ts";
import { sql } from "drizzle-orm";
import { readExampleCases } from "../cases/library.ts";
import { EDIT_SECTIONS } from "../cases/edit.ts";
import { exportCase } from "../cases/library.ts";
import { rows } from "../db/migrate.ts";
import { HX, withChat } from "./support/chat_helpers.ts";
import { DRIVER, type TestUser } from "./support/test_app.ts";

const FORM = { "content-type": "application/x-www-form-urlencoded" };

/**
 * Routes whose id names something that is not any user's: the shared knowledge base (its snippets, and the
 * documents it was loaded from, which every signed-in user may see; changing them is for the uploader roles).
 */
const PUBLIC_ID_ROUTES = new Set([
  "GET /snippets/:id",
  "GET /knowledge/documents/:id",
  "GET /knowledge/documents/:id/progress",
]);

/** Route prefixes for a role (administrators; uploaders): 403 to others, before any id is looked up. */
const ROLE_ROUTES = ["/admin", "/knowledge/documents"];

Deno.test(`ownership [${DRIVER}]: every id-taking route answers 404 to a user who does not own the object`, async () => {
  await withChat(async ({ t }) => {
    const owner = await t.addUser("educator", "owner@example.test");
    const intruder = await t.addUser("educator", "intruder@example.test");

    // The owner's objects: a chat session with an exchange, a private case, a practice session on it.
    const sessionId =
      (await owner.request("/sessions", { method: "POST" })).headers.get("location")!.split("/")[2];
    await (await owner.request(`/sessions/${sessionId}/messages`, {
      method: "POST",
      headers: { ...FORM, ...HX },
      body: new URLSearchParams({ content: "My patient's history" }),
    })).text();
    const [example] = await readExampleCases();
    const imported = await owner.request("/cases/import", {
      method: "POST",
      headers: FORM,
      body: new URLSearchParams({
        json: JSON.stringify(exportCase({ ...example.value, title: "Owner's own" })),
      }),
    });
    assert.equal(imported.status, 303, `import: ${imported.status}`);
    const caseId = imported.headers.get("location")!.split("/")[2].replace(/\?.*/, "");
    const messageId = rows<{ id: string }>(
      await t.database.db.execute(
        sql`select id from messages where session_id = ${sessionId} and role = 'assistant' limit 1`,
      ),
    )[0].id;

    const ids = (path: string): Record<string, string> => ({
      id: path.startsWith("/cases") ? caseId : sessionId,
      ref: caseId,
      messageId,
      version: "1",
      name: EDIT_SECTIONS[0].name,
      userId: owner.id,
      file: "sft-train.jsonl",
    });
    const fill = (path: string) =>
      path.replace(/:(\w+)(\{[^}]*\})?/g, (_, name: string, pattern?: string) => {
        if (pattern) return pattern.slice(1, -1).split("|")[0];
        const value = ids(path)[name];
        if (!value) throw new Error(`No test id for :${name} in ${path}`);
        return value;
      });
    const request = (user: TestUser, method: string, path: string) =>
      user.request(path, { method, headers: FORM, body: method === "GET" ? undefined : "" });

    const routes = t.app.routes.filter((r) => r.method !== "ALL" && r.path.includes(":"));
    const seen = new Set<string>();
    const checked: string[] = [];
    for (const route of routes) {
      const key = `${route.method} ${route.path}`;
      if (seen.has(key) || PUBLIC_ID_ROUTES.has(key)) continue;
      seen.add(key);
      const paths = route.path === "/cases/:ref"
        ? [fill(route.path), `/cases/${caseId}.json`, `/cases/${caseId}.md`]
        : [
          fill(route.path),
        ];
      for (const path of paths) {
        const response = await request(intruder, route.method, path);
        const body = await response.text();
        const expected = ROLE_ROUTES.some((prefix) => route.path.startsWith(prefix)) ? 403 : 404;
        assert.equal(
          response.status,
          expected,
          `${route.method} ${path} answered ${response.status}: ${body.slice(0, 200)}`,
        );
        assert.doesNotMatch(
          body,
          /Owner's own|My patient's history/,
          `${route.method} ${path} leaks content`,
        );
        checked.push(`${route.method} ${path}`);
      }
    }
    // The enumeration is real: it saw the chat, case, practice and admin routes.
    for (
      const must of ["GET /sessions/", "POST /sessions/", "GET /cases/", "POST /cases/", "POST /admin/users/"]
    ) {
      assert.ok(checked.some((c) => c.startsWith(must)), `no route checked under ${must}`);
    }
    assert.ok(checked.length >= 25, `only ${checked.length} routes checked`);

    // And the owner's own GETs work, so the ids were right.
    for (
      const path of [
        `/sessions/${sessionId}`,
        `/cases/${caseId}`,
        `/cases/${caseId}.json`,
        `/cases/${caseId}/print`,
      ]
    ) {
      assert.equal((await owner.request(path)).status, 200, path);
    }
    // An admin manages users, not other people's conversations.
    assert.equal((await t.request(`/sessions/${sessionId}`)).status, 404);
    // Lists show only one's own sessions and the cases one may see.
    assert.doesNotMatch(await (await intruder.request("/")).text(), new RegExp(sessionId));
    assert.doesNotMatch(await (await intruder.request("/cases")).text(), /Owner's own/);
    assert.doesNotMatch(await (await intruder.request("/cases?q=own")).text(), /Owner's own/);
  });
});

/** An educator imports the first example case (private until shared); its id. */
async function importExample(educator: TestUser): Promise<string> {
  const [example] = await readExampleCases();
  const imported = await educator.request("/cases/import", {
    method: "POST",
    headers: FORM,
    body: new URLSearchParams({ json: JSON.stringify(exportCase(example.value)) }),
  });
  return imported.headers.get("location")!.split("/")[2].replace(/\?.*/, "");
}

Deno.test(`ownership [${DRIVER}]: shared cases are readable by all; roles decide who writes`, async () => {
  await withChat(async ({ t }) => {
    const educator = await t.addUser("educator");
    const colleague = await t.addUser("educator");
    const clinician = await t.addUser("clinician");
    const caseId = await importExample(educator);
    assert.equal((await clinician.request(`/cases/${caseId}`)).status, 404, "private until shared");
    const shared = await educator.request(`/cases/${caseId}/share`, {
      method: "POST",
      headers: FORM,
      body: new URLSearchParams({ shared: "on" }),
    });
    assert.equal(shared.status, 303);
    assert.equal((await clinician.request(`/cases/${caseId}`)).status, 200, "shared: everyone reads it");
    assert.equal(
      (await clinician.request(`/cases/${caseId}/practice`, { method: "POST" })).status,
      303,
      "and practises",
    );
    assert.equal((await clinician.request(`/cases/${caseId}/duplicate`, { method: "POST" })).status, 403);
    assert.equal((await colleague.request(`/cases/${caseId}/delete`, { method: "POST" })).status, 403);
    assert.equal((await colleague.request(`/cases/${caseId}/duplicate`, { method: "POST" })).status, 303);
    assert.equal((await clinician.request("/cases/new")).status, 403, "clinicians do not write cases");
    assert.equal((await clinician.request("/cases/import", { method: "POST" })).status, 403);
    assert.equal((await clinician.request("/admin/users")).status, 403);
    assert.equal((await educator.request("/admin/audit")).status, 403);
    const page = await clinician.request(`/cases/${caseId}`);
    const html = await page.text();
    assert.doesNotMatch(html, /\/edit"|Delete…|Duplicate</, "no write controls for a reader");

    // An educator made a clinician keeps reading their cases but no longer changes them (issue 19, item 15).
    await setUserRole(t.database.db, educator.id, "clinician");
    for (
      const [path, body] of [["share", { shared: "off" }], ["delete", {}], [
        "versions/1/restore",
        {},
      ]] as const
    ) {
      const response = await educator.request(`/cases/${caseId}/${path}`, {
        method: "POST",
        headers: FORM,
        body: new URLSearchParams(body),
      });
      assert.equal(response.status, 403, path);
    }
    const sectionSave = await educator.request(`/cases/${caseId}/sections/overview`, {
      method: "POST",
      headers: FORM,
      body: new URLSearchParams({ title: "Changed after demotion", base_version: "1" }),
    });
    assert.equal(sectionSave.status, 403, "editing a section");
    const own = await (await educator.request(`/cases/${caseId}`)).text();
    assert.doesNotMatch(own, /\/edit"|Delete…|Stop sharing/, "and is offered no write controls");
  });
});

Deno.test(`ownership [${DRIVER}]: a practice loses its case's script and debrief when the case is unshared (issue 19, item 16)`, async () => {
  await withChat(async ({ t, stub }) => {
    const educator = await t.addUser("educator");
    const learner = await t.addUser("clinician");
    const caseId = await importExample(educator);
    const share = (on: boolean) =>
      educator.request(`/cases/${caseId}/share`, {
        method: "POST",
        headers: FORM,
        body: new URLSearchParams(on ? { shared: "on" } : {}),
      });
    assert.equal((await share(true)).status, 303);
    const started = await learner.request(`/cases/${caseId}/practice`, { method: "POST" });
    const sessionId = started.headers.get("location")!.split("/")[2];
    const ask = (content: string) =>
      learner.request(`/sessions/${sessionId}/messages`, {
        method: "POST",
        headers: { ...FORM, "hx-request": "true" },
        body: new URLSearchParams({ content }),
      });
    stub.enqueue({ tokens: ["It ", "hurts."] });
    await (await ask("Where is the pain?")).text();
    assert.equal(stub.requests.length, 1, "shared: the patient answers from the script");
    assert.equal((await learner.request(`/sessions/${sessionId}/debrief`, { method: "POST" })).status, 303);
    assert.equal((await learner.request(`/sessions/${sessionId}/debrief`)).status, 200);
    const before = stub.requests.length;

    assert.equal((await share(false)).status, 303);
    await (await ask("And since when?")).text();
    assert.equal(stub.requests.length, before, "unshared: the script no longer reaches the model");
    const page = await (await learner.request(`/sessions/${sessionId}`)).text();
    assert.match(page, /no longer shared with you/);
    const debrief = await learner.request(`/sessions/${sessionId}/debrief`);
    assert.equal(debrief.status, 404);
    assert.match(await debrief.text(), /no longer shared with you/);
    assert.equal((await learner.request(`/sessions/${sessionId}/debrief`, { method: "POST" })).status, 404);
    // Shared again, it comes back.
    assert.equal((await share(true)).status, 303);
    assert.equal((await learner.request(`/sessions/${sessionId}/debrief`)).status, 200);
  });
});
