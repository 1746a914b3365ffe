/**
 * Postgres: drizzle's statements go out as named prepared statements that each connection keeps (one round trip
 * instead of two, and a plan Postgres may reuse), in and out of transactions; nearest-neighbour searches and
 * bulk statements do not; DATABASE_PREPARED_STATEMENTS=off keeps none (transaction poolers).
 */
import assert from "node:assert/strict";
import { eq, sql } from "drizzle-orm";
import { openPostgres, type PostgresDatabase } from "../db/client.ts";
import { rows } from "../db/migrate.ts";
import { users } from "../db/schema.ts";
import { createTestDatabase, TEST_DATABASE_URL } from "./support/test_app.ts";

/** The statements the connection of a one-connection pool keeps prepared. */
async function preparedOn(database: PostgresDatabase): Promise<string[]> {
  const found = await database.client`select statement from pg_prepared_statements`;
  return found.map((row) => String(row.statement));
}

Deno.test({
  name: "prepared statements [postgres]: kept per connection, also in transactions; not for bulk or nearest",
  ignore: !TEST_DATABASE_URL,
  async fn() {
    const owner = await createTestDatabase() as PostgresDatabase;
    const database = openPostgres(owner.url, { poolSize: 1 });
    try {
      const id = crypto.randomUUID();
      for (let i = 0; i < 3; i++) await database.db.select().from(users).where(eq(users.id, id));
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`select count(*) from messages where session_id = ${id}::uuid`);
      });
      const many = Array.from({ length: 65 }, (_, i) => i);
      await database.db.execute(sql`select ${sql.join(many.map((n) => sql`${n}::int`), sql`, `)}`);
      await database.db.execute(
        sql`select id from snippets where specialty = ${"cardiology"} order by embedding <=> ${"[1,0,0]"}::vector limit 5`,
      ).catch(() => {/* the dimensions may differ: only whether it was prepared matters */});
      const prepared = await preparedOn(database);
      assert.equal(prepared.filter((s) => s.includes('from "users"')).length, 1, prepared.join("\n"));
      assert.ok(prepared.some((s) => s.includes("from messages where session_id")), prepared.join("\n"));
      assert.ok(!prepared.some((s) => s.includes("<=>")), "a nearest-neighbour search is planned each time");
      assert.ok(!prepared.some((s) => s.includes("$65")), "a statement with 65 values is not kept");
    } finally {
      await database.close();
      await owner.close();
    }
  },
});

Deno.test({
  name:
    "prepared statements [postgres]: DATABASE_PREPARED_STATEMENTS=off keeps none, and statements still run",
  ignore: !TEST_DATABASE_URL,
  async fn() {
    const owner = await createTestDatabase() as PostgresDatabase;
    const database = openPostgres(owner.url, { poolSize: 1, preparedStatements: false });
    try {
      const id = crypto.randomUUID();
      assert.deepEqual(await database.db.select().from(users).where(eq(users.id, id)), []);
      const [row] = rows<{ n: number }>(
        await database.db.transaction((tx) => tx.execute(sql`select ${2}::int + 1 as n`)),
      );
      assert.equal(row.n, 3);
      assert.deepEqual(await preparedOn(database), []);
    } finally {
      await database.close();
      await owner.close();
    }
  },
});
