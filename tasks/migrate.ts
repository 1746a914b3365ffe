/**
 * deno task migrate: applies pending migrations to the configured database and exits, for a deploy step that
 * runs before the new version starts (Deno Deploy's predeploy command, a release job, a container's init). The
 * server applies them at start too, so this is optional; running both is harmless (Postgres starts take an
 * advisory lock, and applied migrations are skipped).
 */
import { loadConfig } from "../config.ts";
import { openTaskDatabase, runTask } from "./cli.ts";

async function main(): Promise<number> {
  if (Deno.args.length > 0 && Deno.args[0] !== "--help") {
    console.error(
      "deno task migrate takes no arguments: it migrates the database DATABASE_URL (or DATA_DIR) names.",
    );
    return 2;
  }
  if (Deno.args[0] === "--help") {
    console.log("Usage: deno task migrate   applies pending migrations to the configured database");
    return 0;
  }
  const config = loadConfig(Deno.env.toObject());
  const started = performance.now();
  const { database, migrations } = await openTaskDatabase(config, { reportMigrations: true });
  try {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      migrations.applied === 0
        ? `${database.description}: up to date (${migrations.total} migrations applied before).`
        : `${database.description}: applied ${migrations.applied} migration(s), ${migrations.total} in all (${seconds} s).`,
    );
    return 0;
  } finally {
    await database.close();
  }
}

if (import.meta.main) Deno.exit(await runTask(main));
