/**
 * Request ids and JSON logs (app.ts): every response carries an id, which the log line, the audit entries and
 * the error page share; logs hold no query string or body.
 */
import assert from "node:assert/strict";
import { listAudit } from "../db/audit.ts";
import { createTestDatabase, DRIVER, withTestApp } from "./support/test_app.ts";
import { loggable, loggableMessage } from "../db/client.ts";
import { sql } from "drizzle-orm";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

Deno.test("request log: ids on every response, in JSON log lines, audit entries and error pages", async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  try {
    await withTestApp(async (t) => {
      const missing = await t.request("/no-such-page");
      const id = missing.headers.get("x-request-id") ?? "";
      assert.match(id, UUID);
      assert.equal(missing.status, 404);
      assert.match(await missing.text(), new RegExp(`reference ${id}`));

      const proxied = await t.request("/knowledge?q=Mrs+Adaeze+Okonkwo", {
        headers: { "x-request-id": "proxy-req-12345678" },
      });
      assert.equal(proxied.headers.get("x-request-id"), "proxy-req-12345678");
      const forged = await t.request("/", { headers: { "x-request-id": "bad id; INFO forged" } });
      assert.match(forged.headers.get("x-request-id") ?? "", UUID, "an id that is not one is replaced");

      const audited = await t.request("/admin/audit");
      const auditId = audited.headers.get("x-request-id")!;
      const [entry] = await listAudit(t.database.db, { action: "audit.read" }, 5);
      assert.equal(entry.requestId, auditId);
      const filtered = await (await t.request(`/admin/audit?request=${auditId}`)).text();
      assert.match(filtered, /Read the audit log/);
      assert.match(filtered, new RegExp(`request ${auditId.slice(0, 8)}`));

      const records = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const knowledge = records.find((r) => r.request_id === "proxy-req-12345678");
      assert.deepEqual(Object.keys(knowledge).sort(), [
        "level",
        "method",
        "ms",
        "msg",
        "path",
        "request_id",
        "status",
        "time",
        "user_id",
      ]);
      assert.equal(knowledge.path, "/knowledge");
      assert.equal(knowledge.user_id, t.user.id);
      assert.doesNotMatch(lines.join("\n"), /Okonkwo|Adaeze/, "no query string reaches the log");
      assert.ok(records.some((r) => r.request_id === id && r.status === 404));
    }, { logRequests: true, env: { LOG_FORMAT: "json", TRUST_PROXY: "1" } });
    // Without a trusted proxy, nobody chooses their request's id.
    await withTestApp(async (t) => {
      const direct = await t.request("/", { headers: { "x-request-id": "proxy-req-12345678" } });
      assert.match(direct.headers.get("x-request-id") ?? "", UUID);
    });
  } finally {
    console.log = log;
  }
});

Deno.test(`request log [${DRIVER}]: a failed statement is logged without its values`, async () => {
  const database = await createTestDatabase();
  try {
    const error = await database.db.execute(sql`select ${"Mrs Adaeze Okonkwo 48213377"}::int as n`).then(
      () => null,
      (e) => e,
    );
    assert.ok(error, "the statement failed");
    assert.match(String(error.message), /Okonkwo/, "drizzle's own message quotes the value");
    const safe = loggable(error) as Error;
    assert.match(safe.message, /^a database statement failed \(SQLSTATE 22P02\): select \$1::int as n$/);
    assert.doesNotMatch(`${safe.message}\n${safe.stack}`, /Okonkwo|48213377/);
    assert.match(loggableMessage(error), /SQLSTATE 22P02/);
    const other = new Error("not a statement");
    assert.equal(loggable(other), other);
  } finally {
    await database.close();
  }
});
