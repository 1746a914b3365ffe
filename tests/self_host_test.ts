/**
 * The self-host bundle stays in step with the project: the image starts the server and migrates with the
 * same commands as `deno task start` and `deno task migrate`; the packages its build removes are not part of
 * what the server or the operator tasks load; compose.yaml passes only variables config.ts reads. (.ci/run
 * runs the image's build steps and starts what they produce: see "image build steps".)
 */
import assert from "node:assert/strict";
import { parse } from "yaml";

const root = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, root));
const tasks = JSON.parse(await read("deno.json")).tasks as Record<string, string>;

/** A task's command as a word list, with --cached-only after `deno run` (what the image adds). */
function cachedOnly(task: string): string[] {
  const words = tasks[task].split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ["deno", "run"], `${task} runs deno run`);
  return ["deno", "run", "--cached-only", ...words.slice(2)];
}

Deno.test("self-host: the image's CMD is `deno task start`'s command, cached only; compose migrates as `deno task migrate`", async () => {
  const dockerfile = await read("Dockerfile");
  const cmds = [...dockerfile.matchAll(/^CMD (\[.*\])$/gm)].map((m) => JSON.parse(m[1]));
  assert.deepEqual(cmds.at(-1), cachedOnly("start"));
  assert.match(dockerfile, /^USER deno$/m, "the server runs as a user without privileges");
  assert.match(
    dockerfile,
    /^HEALTHCHECK .*\n\s+CMD \["deno", "run", "--cached-only", .*"deploy\/healthcheck\.ts"\]$/m,
  );
  const compose = parse(await read("compose.yaml"));
  assert.deepEqual(compose.services.migrate.command, cachedOnly("migrate"));
  assert.deepEqual(compose.services.rounds.depends_on, {
    migrate: { condition: "service_completed_successfully" },
  });
  assert.deepEqual(compose.services.migrate.depends_on, { db: { condition: "service_healthy" } });
  assert.match(compose.services.db.image, /^pgvector\/pgvector:pg1[5-9]$/);
  // The model and embedding servers are optional profiles.
  for (const name of ["llama", "vllm", "embeddings"]) {
    assert.deepEqual(compose.services[name].profiles, [name]);
  }
});

Deno.test("self-host: no package the image's build removes is loaded by the server or an operator task", async () => {
  const build = await read("deploy/build.sh");
  const removed = /for package in (.*); do/.exec(build)![1].split(" ");
  const entries = /deno cache ([\s\S]*?)\n\s*#/.exec(build)![1].replace(/\\\n/g, " ").trim().split(/\s+/);
  assert.ok(entries.includes("main.ts") && entries.includes("tasks/migrate.ts"));
  for (const entry of entries) {
    const info = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(info.success, new TextDecoder().decode(info.stderr));
    const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
      modules: { kind: string; npmPackage?: string }[];
      npmPackages: Record<string, { name: string; dependencies: string[] }>;
    };
    // The packages the entry imports, and theirs in turn.
    const loaded = new Set<string>();
    const visit = (id: string) => {
      if (loaded.has(id) || !graph.npmPackages[id]) return;
      loaded.add(id);
      for (const dependency of graph.npmPackages[id].dependencies) visit(dependency);
    };
    for (const module of graph.modules) {
      if (module.kind === "npm" && module.npmPackage) visit(module.npmPackage);
    }
    if (entry !== "deploy/healthcheck.ts") assert.ok(loaded.size > 5, `${entry}: ${loaded.size} packages`);
    for (const id of loaded) {
      const name = graph.npmPackages[id].name;
      if (name.startsWith("@types/")) continue; // types only: `deno run` does not type-check
      assert.ok(
        !removed.some((r) => name === r || name.startsWith(`${r}/`)),
        `${entry} loads ${name}, which deploy/build.sh removes`,
      );
    }
  }
});

Deno.test("self-host: compose.yaml passes Rounds only variables config.ts reads (.env.example names them all)", async () => {
  const compose = parse(await read("compose.yaml"));
  const names = Object.keys(compose.services.rounds.environment);
  assert.ok(names.length >= 10, names.join(", "));
  const example = await read(".env.example");
  for (const name of names) {
    assert.match(example, new RegExp(`^#? ?${name}=`, "m"), `${name} is not a Rounds variable`);
  }
});

Deno.test("Deno Deploy: the one unstable flag Rounds runs with is in deno.json, where a host that takes no flags applies it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/serve.ts`;
    await Deno.writeTextFile(
      script,
      `let aborted = false;
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
  req.signal.addEventListener("abort", () => aborted = true);
  return new Response("ok");
});
await (await fetch(\`http://127.0.0.1:\${server.addr.port}/\`)).text();
await new Promise((resolve) => setTimeout(resolve, 200));
await server.shutdown();
console.log(JSON.stringify({ aborted }));`,
    );
    // No --unstable-no-legacy-abort on the command line: only the project's deno.json.
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--config", new URL("deno.json", root).pathname, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(run.stdout).trim();
    assert.deepEqual(
      JSON.parse(out.split("\n").at(-1)!),
      { aborted: false },
      new TextDecoder().decode(run.stderr),
    );
    assert.doesNotMatch(new TextDecoder().decode(run.stderr), /legacy behavior/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
