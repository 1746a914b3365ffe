/**
 * Passwords: what a new one must be, the cost of hashing it, a weaker hash made again at sign-in, and the
 * decoy that keeps sign-in timing from telling which accounts exist (issue 19, items 18 and 23).
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { rows } from "../db/migrate.ts";
import { createUser } from "../db/users.ts";
import {
  DEFAULT_COST,
  hashPassword,
  isPasswordHash,
  passwordProblem,
  verifyPassword,
  weakerThan,
} from "../safety/passwords.ts";
import { cookieOf } from "./support/server_process.ts";
import { DRIVER, TEST_PASSWORD, TEST_PASSWORD_COST, type TestApp, withTestApp } from "./support/test_app.ts";

Deno.test("passwords: common, predictable and personal passwords are refused in plain words", () => {
  for (
    const weak of [
      "Password1234!",
      "passw0rd2024!!",
      "qwertyuiop12",
      "QWERTYUIOPASDF",
      "aaaaaaaaaaaa",
      "123456789012",
      "abcdefghijkl",
      "letmeinletmein",
      "Summer2024!!!",
      "roundsadmin99",
      "1qaz2wsx3edc",
    ]
  ) {
    assert.match(passwordProblem(weak) ?? "", /first that attackers try|different characters/, weak);
  }
  assert.match(
    passwordProblem("anna.kowalski1", { email: "anna.kowalski@example.test" }) ?? "",
    /e-mail address or name/,
  );
  assert.match(
    passwordProblem("Kowalski-Kowalski", { name: "Anna Kowalski" }) ?? "",
    /e-mail address or name/,
  );
  assert.match(passwordProblem("short") ?? "", /at least 12 characters/);
  for (
    const good of [TEST_PASSWORD, "violet tram quietly 91", "Zebra-Lantern-Osmosis", "wszystko gra 2024 łąka"]
  ) {
    assert.equal(passwordProblem(good, { email: "anna@example.test", name: "Anna Kowalski" }), null, good);
  }
});

Deno.test("passwords: the cost is OWASP's scrypt minimum (N=2^17, r=8, p=1) or its equivalent, in 32 MiB", async () => {
  const { N, r, p } = DEFAULT_COST;
  assert.ok(N * r * p >= 2 ** 17 * 8 * 1 * (3 / 4), `N·r·p ${N * r * p}`);
  assert.ok(
    (N === 2 ** 17 && p >= 1) || (N === 2 ** 16 && p >= 2) || (N === 2 ** 15 && p >= 3),
    "one of OWASP's listed configurations",
  );
  assert.ok(128 * N * r <= 32 * 1024 * 1024, "one hash stays within 32 MiB");
  const hash = await hashPassword(TEST_PASSWORD);
  assert.match(hash, /^scrypt\$32768\$8\$3\$/);
  assert.ok(await verifyPassword(TEST_PASSWORD, hash));
  assert.ok(weakerThan("scrypt$32768$8$1$AA==$AA=="));
  assert.ok(!weakerThan(hash));
  assert.ok(!isPasswordHash("sso-only"));
});

async function signIn(t: TestApp, email: string, password: string): Promise<Response> {
  const page = await t.anonymous("/login");
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1];
  return await t.anonymous("/login", {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      cookie: `rounds_login=${cookieOf(page, "rounds_login")}`,
    },
    body: new URLSearchParams({ _csrf: token, email, password }),
  });
}

Deno.test(`passwords [${DRIVER}]: a hash made at a lower cost is made again at the next sign-in, no one signed out`, async () => {
  await withTestApp(async (t) => {
    const weak = await hashPassword(TEST_PASSWORD, { N: 2 ** 9, r: 8, p: 1 });
    const user = await createUser(t.database.db, {
      email: "older@example.test",
      role: "clinician",
      passwordHash: weak,
    });
    const first = await signIn(t, user!.email, TEST_PASSWORD);
    assert.equal(first.status, 303);
    const [{ password_hash: stored }] = rows<{ password_hash: string }>(
      await t.database.db.execute(sql`select password_hash from users where id = ${user!.id}`),
    );
    assert.match(stored, new RegExp(`^scrypt\\$${TEST_PASSWORD_COST.N}\\$`));
    assert.ok(await verifyPassword(TEST_PASSWORD, stored));
    const page = await t.anonymous("/", {
      headers: { cookie: `rounds_session=${cookieOf(first, "rounds_session")}` },
    });
    assert.equal(page.status, 200, "the session that signed in is still signed in");
  });
});

Deno.test(`passwords [${DRIVER}]: an SSO-only account, or one with an older hash, takes as long to refuse as an unknown e-mail`, async () => {
  // A cost where the hash dominates the time: before, the SSO-only account answered in a fraction of it.
  await withTestApp(async (t) => {
    await createUser(t.database.db, {
      email: "sso-only@example.test",
      role: "clinician",
      passwordHash: "sso-only",
    });
    const time = async (email: string) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        assert.equal((await signIn(t, email, `guess number ${i}`)).status, 401);
        times.push(performance.now() - started);
      }
      return times.sort((a, b) => a - b)[2];
    };
    // An account whose hash predates the cost rise (p = 1 where the cost is now p = 3) is padded to match.
    const older = await hashPassword(TEST_PASSWORD, { N: 2 ** 14, r: 8, p: 1 });
    await createUser(t.database.db, { email: "older@example.test", role: "clinician", passwordHash: older });
    await time("warm-up@example.test");
    const unknown = await time("nobody@example.test");
    const ssoOnly = await time("sso-only@example.test");
    const old = await time("older@example.test");
    const shown = `SSO-only ${ssoOnly.toFixed(1)} ms, older hash ${old.toFixed(1)} ms, unknown ${
      unknown.toFixed(1)
    } ms`;
    assert.ok(ssoOnly > unknown * 0.6 && ssoOnly < unknown * 1.6, shown);
    assert.ok(old > unknown * 0.6 && old < unknown * 1.6, shown);
  }, { passwordCost: { N: 2 ** 14, r: 8, p: 3 } });
});
