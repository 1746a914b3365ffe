/**
 * deno task user add <email> --role clinician|educator|admin [--name NAME]
 * deno task user disable <email> | enable <email> | password <email> | list
 *
 * Accounts from the command line. The password comes from ROUNDS_PASSWORD, or is read from stdin (without echo
 * on a terminal). Disabling signs the user out everywhere, open streams included (within seconds).
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config.ts";
import { recordAudit } from "../db/audit.ts";
import { USER_ROLES, type UserRole } from "../db/schema.ts";
import {
  countActiveAdmins,
  createFirstAdmin,
  createUser,
  findUserByEmail,
  hasUsers,
  listUsers,
  normaliseEmail,
  setPasswordHash,
  setUserDisabled,
} from "../db/users.ts";
import { hashPassword, passwordProblem } from "../safety/passwords.ts";
import { openTaskDatabase, parseTaskArgs, runTask, TaskExit } from "./cli.ts";

const USAGE = `Usage:
  deno task user add <email> --role clinician|educator|admin [--name NAME]
  deno task user disable <email>
  deno task user enable <email>
  deno task user password <email>     sets a new password and signs them out everywhere
  deno task user list

  The password for "add" comes from ROUNDS_PASSWORD, or from stdin (typed without echo on a terminal).`;

async function readPassword(): Promise<string> {
  const fromEnv = Deno.env.get("ROUNDS_PASSWORD");
  if (fromEnv) return fromEnv;
  if (Deno.stdin.isTerminal()) {
    const ask = async (prompt: string) => {
      await Deno.stdout.write(new TextEncoder().encode(prompt));
      Deno.stdin.setRaw(true);
      const bytes: number[] = [];
      const buffer = new Uint8Array(1);
      try {
        while ((await Deno.stdin.read(buffer)) === 1) {
          const byte = buffer[0];
          if (byte === 3) throw new TaskExit(130, "\nCancelled");
          if (byte === 13 || byte === 10) break;
          if (byte === 127 || byte === 8) bytes.pop();
          else bytes.push(byte);
        }
      } finally {
        Deno.stdin.setRaw(false);
        await Deno.stdout.write(new TextEncoder().encode("\n"));
      }
      return new TextDecoder().decode(new Uint8Array(bytes));
    };
    const first = await ask("Password (at least 12 characters): ");
    if (first !== await ask("Password again: ")) {
      throw new TaskExit(1, "The two passwords differ; nothing was changed");
    }
    return first;
  }
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

async function main(): Promise<number> {
  const { values, positionals } = parseTaskArgs(() =>
    parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        role: { type: "string" },
        name: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }), USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [command, rawEmail] = positionals;
  if (!["add", "disable", "enable", "password", "list"].includes(command ?? "")) {
    throw new TaskExit(2, `Name what to do: add, disable, enable, password or list.\n\n${USAGE}`);
  }
  const email = command === "list" ? null : normaliseEmail(rawEmail ?? "");
  if (command !== "list" && !email) throw new TaskExit(2, `Give the user's email address.\n\n${USAGE}`);
  const config = loadConfig(Deno.env.toObject());
  const database = await openTaskDatabase(config);
  const db = database.db;
  try {
    if (command === "list") {
      const users = await listUsers(db);
      if (users.length === 0) {
        console.log("No users yet. Add the first admin: deno task user add <email> --role admin");
      }
      for (const u of users) {
        console.log(`${u.email}\t${u.role}\t${u.disabledAt ? "disabled" : "active"}\t${u.name ?? ""}`);
      }
      return 0;
    }
    const existing = await findUserByEmail(db, email!);
    if (command === "add") {
      const role = values.role as UserRole | undefined;
      if (!role || !USER_ROLES.includes(role)) {
        throw new TaskExit(2, `--role must be one of ${USER_ROLES.join(", ")}\n\n${USAGE}`);
      }
      if (existing) throw new TaskExit(1, `There is already an account for ${email}`);
      const password = await readPassword();
      const problem = passwordProblem(password, { email, name: values.name ?? null });
      if (problem) throw new TaskExit(1, `${problem}; nothing was changed`);
      const input = { email: email!, name: values.name ?? null, passwordHash: await hashPassword(password) };
      // The first admin also inherits what was stored before accounts existed.
      const user = role === "admin" && !(await hasUsers(db))
        ? await createFirstAdmin(db, input)
        : await createUser(db, { ...input, role });
      if (!user) throw new TaskExit(1, `There is already an account for ${email}`);
      await recordAudit(db, {
        actor: "cli",
        action: "user.create",
        objectType: "user",
        objectId: user.id,
        outcome: role,
      });
      console.log(`Added ${user.email} (${user.role}). They can sign in at /login.`);
      return 0;
    }
    if (!existing) throw new TaskExit(1, `There is no account for ${email} (deno task user list shows them)`);
    if (command === "password") {
      const password = await readPassword();
      const problem = passwordProblem(password, { email: existing.email, name: existing.name });
      if (problem) throw new TaskExit(1, `${problem}; nothing was changed`);
      await setPasswordHash(db, existing.id, await hashPassword(password));
      await recordAudit(db, {
        actor: "cli",
        action: "user.password",
        objectType: "user",
        objectId: existing.id,
      });
      console.log(
        `Set a new password for ${email} and revoked every session (open streams close within 5 s).`,
      );
      return 0;
    }
    if (command === "disable") {
      if (existing.role === "admin" && !existing.disabledAt && await countActiveAdmins(db) <= 1) {
        throw new TaskExit(1, `${email} is the last active admin; add another admin first`);
      }
      await setUserDisabled(db, existing.id, true);
      await recordAudit(db, {
        actor: "cli",
        action: "user.disable",
        objectType: "user",
        objectId: existing.id,
      });
      console.log(`Disabled ${email} and revoked every session (open streams close within 5 s).`);
    } else {
      await setUserDisabled(db, existing.id, false);
      await recordAudit(db, {
        actor: "cli",
        action: "user.enable",
        objectType: "user",
        objectId: existing.id,
      });
      console.log(`Enabled ${email}.`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

if (import.meta.main) Deno.exit(await runTask(main));
