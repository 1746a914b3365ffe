/**
 * Runs `main.ts` as a real child process, for tests of start-up, locking and signals.
 */

const ROOT = new URL("..", import.meta.url);

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

/** Starts `deno run main.ts` with the given environment (added to a minimal one). */
export function startServer(env: Record<string, string>): ServerProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-no-legacy-abort",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-sys",
      "main.ts",
    ],
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
