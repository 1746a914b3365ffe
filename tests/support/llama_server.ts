/**
 * A real llama.cpp `llama-server` for tests: Debian's build installed by `../shared/llama/install.sh` (or
 * wherever ROUNDS_LLAMA_SERVER points), serving a tiny random-weight Llama model written by
 * `make_tiny_gguf.py`. Random weights write word salad: tests check wire behaviour, constraints and what the user
 * sees, never answer quality. Suites are skipped when the server is not installed, unless ROUNDS_REQUIRE_LLAMA=1
 * (CI), where a missing server is a failure.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./test_app.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The llama-server binary: ROUNDS_LLAMA_SERVER, or install.sh's default prefix. */
export const LLAMA_SERVER = Deno.env.get("ROUNDS_LLAMA_SERVER") ?? "/opt/llama-server/bin/llama-server";

/** Where make_tiny_gguf.py is: ROUNDS_LLAMA_TOOLS, or the workplace's shared folder beside the checkout. */
const TOOL_DIRS = [Deno.env.get("ROUNDS_LLAMA_TOOLS"), join(ROOT, "../shared/llama"), "/work/shared/llama"]
  .filter((d): d is string => !!d);

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const toolDir = TOOL_DIRS.find((d) => exists(join(d, "make_tiny_gguf.py")));

/** True when tests can run a real llama-server here. */
export const hasLlamaServer = exists(LLAMA_SERVER) && toolDir !== undefined;

/** True when a missing llama-server must fail the run (CI) rather than skip the suites. */
export const llamaRequired = Deno.env.get("ROUNDS_REQUIRE_LLAMA") === "1";

/** `ignore` for Deno.test: skip without a server, unless required. */
export const ignoreWithoutLlama = !hasLlamaServer && !llamaRequired;

if (ignoreWithoutLlama) {
  console.warn(
    `llama-server suites skipped: no ${LLAMA_SERVER} (sh ../shared/llama/install.sh) or no make_tiny_gguf.py`,
  );
}

/** The shape of a tiny model. */
export interface TinyModelOptions {
  /** A ChatML vocabulary whose template opens `<think>`: a reasoning model. */
  think?: boolean;
  embd?: number;
  layers?: number;
  heads?: number;
  ff?: number;
  ctx?: number;
  f16?: boolean;
}

const MODEL_DIR = join(Deno.env.get("TMPDIR") ?? "/tmp", "rounds-test-models");
const building = new Map<string, Promise<string>>();

/** The path of a tiny model with these options, written once per machine (make_tiny_gguf.py is deterministic). */
export function tinyModel(options: TinyModelOptions = {}): Promise<string> {
  const args: string[] = [];
  if (options.think) args.push("--think");
  for (const key of ["embd", "layers", "heads", "ff", "ctx"] as const) {
    if (options[key] !== undefined) args.push(`--${key}`, String(options[key]));
  }
  if (options.f16) args.push("--f16");
  const name = `tiny${args.join("").replace(/[^a-z0-9]+/gi, "-")}.gguf`;
  const path = join(MODEL_DIR, name);
  let pending = building.get(path);
  if (!pending) {
    pending = (async () => {
      if (exists(path)) return path;
      if (!toolDir) throw new Error("make_tiny_gguf.py not found (set ROUNDS_LLAMA_TOOLS)");
      await Deno.mkdir(MODEL_DIR, { recursive: true });
      const partial = `${path}.${Deno.pid}.part`;
      const prefix = dirname(dirname(LLAMA_SERVER));
      const output = await new Deno.Command("python3", {
        args: [join(toolDir, "make_tiny_gguf.py"), partial, ...args],
        env: { PYTHONPATH: join(prefix, "root/usr/lib/python3/dist-packages") },
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!output.success) {
        throw new Error(
          `make_tiny_gguf.py ${args.join(" ")} failed:\n${new TextDecoder().decode(output.stderr)}`,
        );
      }
      await Deno.rename(partial, path);
      return path;
    })();
    building.set(path, pending);
  }
  return pending;
}

/** A running llama-server. */
export interface LlamaServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** What the server printed so far (stdout and stderr). */
  log(): string;
  /** The server's slots (`GET /slots`): which are processing a task now. */
  slots(): Promise<{ id: number; is_processing: boolean }[]>;
  /** Resolves once no slot is processing; rejects after timeoutMs. */
  waitIdle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** What to serve and how. */
export interface LlamaServerOptions {
  model?: TinyModelOptions;
  /** Extra llama-server arguments (`-c 512`, `--embeddings`, `-l 2+8`, `--api-key K` …). */
  args?: string[];
  /** Wait for /health to answer 200 (default true). */
  waitReady?: boolean;
}

/** Starts llama-server on a free port and waits until it answers /health with 200. */
export async function startLlamaServer(options: LlamaServerOptions = {}): Promise<LlamaServer> {
  const model = await tinyModel(options.model);
  const port = freePort();
  const child = new Deno.Command(LLAMA_SERVER, {
    args: ["-m", model, "--host", "127.0.0.1", "--port", String(port), "-t", "1", ...(options.args ?? [])],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const url = `http://127.0.0.1:${port}`;
  const key = options.args?.[options.args.indexOf("--api-key") + 1];
  const headers: HeadersInit = options.args?.includes("--api-key") && key
    ? { authorization: `Bearer ${key}` }
    : {};
  const server: LlamaServer = {
    url,
    log: () => text,
    async slots() {
      const response = await fetch(`${url}/slots`, { headers });
      if (!response.ok) throw new Error(`GET /slots: HTTP ${response.status} ${await response.text()}`);
      return await response.json();
    },
    async waitIdle(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const slots = await server.slots();
        if (slots.every((s) => !s.is_processing)) return;
        if (Date.now() > deadline) throw new Error(`llama-server still busy after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async close() {
      if (!exited) child.kill("SIGKILL");
      await status;
      await pumped;
    },
  };
  if (options.waitReady === false) return server;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`llama-server exited at start:\n${text}`);
    try {
      const response = await fetch(`${url}/health`);
      await response.body?.cancel();
      if (response.ok) return server;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await server.close();
      throw new Error(`llama-server did not become ready in 30 s:\n${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs fn with a llama-server and always stops it. */
export async function withLlamaServer<T>(
  options: LlamaServerOptions,
  fn: (server: LlamaServer) => Promise<T>,
): Promise<T> {
  const server = await startLlamaServer(options);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}
