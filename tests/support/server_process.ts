/**
 * Runs `main.ts` and the other tasks as real child processes, for tests of start-up, locking, signals and the
 * command line.
 */
import type { Db } from "../../db/client.ts";
import { findUserByEmail } from "../../db/users.ts";
import denoJson from "../../deno.json" with { type: "json" };

const ROOT = new URL("../..", import.meta.url);

/** A running Rounds server process and its output so far. */
export interface ServerProcess {
  child: Deno.ChildProcess;
  /** stdout and stderr interleaved as they arrived. */
  output(): string;
  /** Resolves with the first output line matching pattern; rejects after timeoutMs or if the process exits. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
  kill(signal?: Deno.Signal): void;
}

/**
 * The arguments of `deno task start` after `deno`: tests and benchmarks run the server exactly as operators do,
 * V8 flags included.
 */
export function startTaskArgs(): string[] {
  const words = denoJson.tasks.start.split(/\s+/);
  if (words[0] !== "deno" || words.at(-1) !== "main.ts") {
    throw new Error(`deno.json's start task should be "deno run … main.ts", not "${denoJson.tasks.start}"`);
  }
  return words.slice(1);
}

/** How a task's run ended: its exit code, and stdout then stderr. */
export interface TaskResult {
  code: number;
  text: string;
}

/** Runs a `deno task` as an operator does (its command line from deno.json) with args, in a minimal environment. */
export async function runTask(
  task: "ingest" | "search" | "user" | "eval",
  args: string[],
  env: Record<string, string>,
): Promise<TaskResult> {
  const words = denoJson.tasks[task].split(/\s+/);
  if (words[0] !== "deno") throw new Error(`deno.json's ${task} task should start with deno`);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...words.slice(1), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, text: decode(output.stdout) + decode(output.stderr) };
}

/** The `--v8-flags=…` argument of a deno.json task (the start task by default); undefined when it has none. */
export function taskV8Flags(task: string = denoJson.tasks.start): string | undefined {
  return task.split(/\s+/).find((word) => word.startsWith("--v8-flags="));
}

/** Starts `deno task start`'s command with the given environment (added to a minimal one). */
export function startServer(env: Record<string, string>): ServerProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: startTaskArgs(),
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const wake of waiters) wake();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = pumped.then(() => child.status);
  let exited = false;
  status.then(() => {
    exited = true;
    for (const wake of waiters) wake();
  });
  return {
    child,
    output: () => text,
    status,
    kill: (signal = "SIGTERM") => child.kill(signal),
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = text.split("\n").find((l) => pattern.test(l));
          if (line !== undefined) return done(() => resolve(line));
          if (exited) {
            return done(() => reject(new Error(`Process exited before ${pattern}; output:\n${text}`)));
          }
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`Timed out waiting for ${pattern}; output:\n${text}`))),
          timeoutMs,
        );
        const done = (finish: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          finish();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** A signed-in HTTP client of a running server. */
export interface HttpSession {
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** The Cookie header value and the anti-forgery token, for raw-socket requests. */
  cookie: string;
  csrf: string;
}

/** The id of the user signInOverHttp signs in (for reading their sessions back from the database). */
export async function benchUserId(db: Db): Promise<string> {
  const user = await findUserByEmail(db, ADMIN.email);
  if (!user) throw new Error(`No user ${ADMIN.email}`);
  return user.id;
}

const ADMIN = { email: "admin@example.test", password: "process test password" };

/** The value a response's Set-Cookie gives a cookie, or null. */
export function cookieOf(response: Response, name: string): string | null {
  for (const header of response.headers.getSetCookie()) {
    const match = new RegExp(`^${name}=([^;]*)`).exec(header);
    if (match) return match[1];
  }
  return null;
}

function hiddenToken(html: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!token) throw new Error(`No _csrf field in:\n${html.slice(0, 500)}`);
  return token;
}

/** Sets up the first admin (or signs in as them on a server that has one) through the real forms. */
export async function signInOverHttp(base: string): Promise<HttpSession> {
  let page = await fetch(`${base}/setup`, { redirect: "manual" });
  let action = "/setup";
  if (page.status === 303) {
    await page.body?.cancel();
    page = await fetch(`${base}/login`);
    action = "/login";
  }
  const loginCookie = cookieOf(page, "rounds_login")!;
  const token = hiddenToken(await page.text());
  const body = new URLSearchParams({
    _csrf: token,
    email: ADMIN.email,
    password: ADMIN.password,
    confirm: ADMIN.password,
  });
  const signedIn = await fetch(`${base}${action}`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie: `rounds_login=${loginCookie}`, "content-type": "application/x-www-form-urlencoded" },
    body,
  });
  await signedIn.body?.cancel();
  const session = cookieOf(signedIn, "rounds_session");
  if (signedIn.status !== 303 || !session) throw new Error(`Signing in failed: HTTP ${signedIn.status}`);
  const cookie = `rounds_session=${session}`;
  const home = await fetch(`${base}/`, { headers: { cookie } });
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(await home.text())?.[1];
  if (!csrf) throw new Error("The signed-in home page carries no csrf-token");
  return {
    cookie,
    csrf,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set("cookie", cookie);
      headers.set("x-csrf-token", csrf);
      return fetch(`${base}${path}`, { ...init, headers });
    },
  };
}
