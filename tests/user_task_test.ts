/**
 * `deno task user` as an operator runs it: a real process on a PGlite directory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { listAudit } from "../db/audit.ts";
import { openPglite } from "../db/client.ts";
import { findUserByEmail } from "../db/users.ts";
import { verifyPassword } from "../safety/passwords.ts";
import { runTask } from "./support/server_process.ts";

function user(dir: string, args: string[], password?: string) {
  return runTask("user", args, { DATA_DIR: dir, ...(password ? { ROUNDS_PASSWORD: password } : {}) });
}

Deno.test({
  name: "user task: add, refuse a weak or duplicate one, keep the last admin, reset a password, disable",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      assert.match((await user(dir, ["list"])).text, /No users yet/);
      const weak = await user(dir, ["add", "lead@example.test", "--role", "admin"], "short");
      assert.equal(weak.code, 1, weak.text);
      assert.match(weak.text, /at least 12 characters .*; nothing was changed/, JSON.stringify(weak));
      const added = await user(dir, ["add", "Lead@Example.test", "--role", "admin"], "first long password");
      assert.equal(added.code, 0, added.text);
      assert.equal(
        (await user(dir, ["add", "lead@example.test", "--role", "clinician"], "another password!")).code,
        1,
      );
      assert.equal(
        (await user(dir, ["add", "x@example.test", "--role", "nurse"], "another password!")).code,
        2,
      );
      const last = await user(dir, ["disable", "lead@example.test"]);
      assert.equal(last.code, 1);
      assert.match(last.text, /last active admin/);
      assert.equal((await user(dir, ["password", "lead@example.test"], "second long password")).code, 0);
      assert.equal(
        (await user(dir, ["add", "ana@example.test", "--role", "clinician"], "clinician password")).code,
        0,
      );
      assert.equal((await user(dir, ["disable", "ana@example.test"])).code, 0);

      const database = await openPglite({ dataDir: join(dir, "pglite") });
      try {
        const lead = await findUserByEmail(database.db, "lead@example.test");
        assert.ok(lead && await verifyPassword("second long password", lead.passwordHash));
        assert.ok((await findUserByEmail(database.db, "ana@example.test"))?.disabledAt);
        const actions = (await listAudit(database.db, { action: "user." })).map((e) =>
          `${e.actor} ${e.action}`
        );
        assert.deepEqual(actions.sort(), [
          "cli user.create",
          "cli user.create",
          "cli user.disable",
          "cli user.password",
        ]);
      } finally {
        await database.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
