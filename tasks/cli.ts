/**
 * What every command-line task shares: the errors a user can act on become one message and an exit code, and
 * the configured database opens migrated.
 */
import { ConfigError } from "../config.ts";
import { type Database, type DatabaseConfig, DatabaseLockedError, openDatabase } from "../db/client.ts";
import { migrate, type MigrationResult } from "../db/migrate.ts";
import { EmbedderMismatchError } from "../knowledge/embedder.ts";

/** A task stopping with a message for the user: code 2 for wrong usage, 1 for everything else. */
export class TaskExit extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "TaskExit";
  }
}

/**
 * Runs a task's main function and returns its exit code. Configuration problems, a PGlite directory held by
 * another process, an embedder mismatch and TaskExit print their message; anything else is a bug and throws.
 */
export async function runTask(main: () => Promise<number>): Promise<number> {
  try {
    return await main();
  } catch (error) {
    if (error instanceof TaskExit) {
      console.error(error.message);
      return error.code;
    }
    if (error instanceof DatabaseLockedError) {
      console.error(
        `${error.message}\n(Tasks use the same PGlite directory as the server: stop the server first, or use a ` +
          `Postgres DATABASE_URL, which both can share.)`,
      );
      return 1;
    }
    if (error instanceof ConfigError || error instanceof EmbedderMismatchError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
}

/** Parses arguments with node:util's parseArgs, turning its errors into a usage message. */
export function parseTaskArgs<T>(parse: () => T, usage: string): T {
  try {
    return parse();
  } catch (error) {
    throw new TaskExit(2, `${(error as Error).message}\n\n${usage}`);
  }
}

/** Opens the configured database and applies migrations. */
export async function openTaskDatabase(config: DatabaseConfig): Promise<Database>;
/** The same, saying what the migrations did. */
export async function openTaskDatabase(
  config: DatabaseConfig,
  options: { reportMigrations: true },
): Promise<{ database: Database; migrations: MigrationResult }>;
export async function openTaskDatabase(config: DatabaseConfig, options?: { reportMigrations: true }) {
  const database: Database = await openDatabase(config);
  let migrations: MigrationResult;
  try {
    migrations = await migrate(database);
  } catch (error) {
    await database.close();
    throw error;
  }
  return options?.reportMigrations ? { database, migrations } : database;
}
