/**
 * The walls between the folders (ARCHITECTURE.md), checked on every import of the application's code: a wall
 * that is crossed fails here, with the file and the import, instead of eroding quietly.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Folders that are not the application: tests and their helpers, dependencies, vendored files, data. */
const SKIP = ["tests", "node_modules", "static", "data", "migrations", ".data", ".git", "docs"];

interface Import {
  /** The importing file, relative to the repository root. */
  file: string;
  /** The specifier as written. */
  from: string;
  /** For a relative import: the imported file, relative to the repository root. */
  target: string | null;
  /** `import type`, or every name imported with `type`: nothing of it exists at run time. */
  typeOnly: boolean;
}

async function sources(dir = ROOT): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      if (!SKIP.includes(relative(ROOT, path))) files.push(...await sources(path));
    } else if (/\.tsx?$/.test(entry.name)) files.push(path);
  }
  return files;
}

async function imports(): Promise<Import[]> {
  const found: Import[] = [];
  for (const path of await sources()) {
    const text = await Deno.readTextFile(path);
    const file = relative(ROOT, path);
    for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?([^;]*?)\s*from\s+"([^"]+)"/gm)) {
      const [, typeKeyword, clause, from] = m;
      const names = clause.replace(/^\{|\}$/g, "").split(",").map((n) => n.trim()).filter(Boolean);
      const typeOnly = Boolean(typeKeyword) ||
        (clause.trim().startsWith("{") && names.length > 0 && names.every((n) => n.startsWith("type ")));
      const target = from.startsWith(".") ? normalize(relative(ROOT, join(dirname(path), from))) : null;
      found.push({ file, from, target, typeOnly });
    }
  }
  return found;
}

const all = await imports();
const inFolder = (file: string, folder: string) => file.startsWith(`${folder}/`);
const show = (list: Import[]) => list.map((i) => `${i.file} imports ${i.from}`);

Deno.test("layout: the import scan sees the application (a check on the check)", () => {
  assert.ok(all.length > 300, `${all.length} imports found`);
  assert.ok(all.some((i) => i.file === "inference/runner.ts" && i.target === "db/messages.ts"));
  assert.ok(all.some((i) => i.file === "views/chat.tsx" && i.typeOnly && i.target === "db/messages.ts"));
});

Deno.test("layout: views are pure: no value from db/ or inference/", () => {
  const crossing = all.filter((i) =>
    inFolder(i.file, "views") && !i.typeOnly && i.target !== null &&
    (inFolder(i.target, "db") || inFolder(i.target, "inference"))
  );
  assert.deepEqual(show(crossing), []);
});

Deno.test("layout: only db/ speaks SQL through drizzle; only inference/ uses the Hugging Face client", () => {
  const drizzle = all.filter((i) =>
    i.from.startsWith("drizzle-orm") && !inFolder(i.file, "db") && !i.typeOnly
  );
  assert.deepEqual(show(drizzle), []);
  const hf = all.filter((i) => i.from.startsWith("@huggingface/inference") && !inFolder(i.file, "inference"));
  assert.deepEqual(show(hf), []);
});

Deno.test("layout: inference/ knows nothing of the chat, cases, routes or views; the engine nothing of chats or users", () => {
  const upward = all.filter((i) =>
    inFolder(i.file, "inference") && i.target !== null &&
    ["chat", "cases", "routes", "views"].some((folder) => inFolder(i.target!, folder))
  );
  assert.deepEqual(show(upward), []);
  const engine = all.filter((i) =>
    i.file === "inference/runner.ts" && i.target !== null &&
    (inFolder(i.target, "knowledge") ||
      ["db/chats.ts", "db/users.ts", "db/sign_ins.ts", "db/limits.ts", "db/snippets.ts"].includes(i.target))
  );
  assert.deepEqual(show(engine), []);
});

Deno.test("layout: db/ is the floor: it imports no other part of the application (types excepted)", () => {
  const upward = all.filter((i) =>
    inFolder(i.file, "db") && !i.typeOnly && i.target !== null && !inFolder(i.target, "db")
  );
  assert.deepEqual(show(upward), []);
});

Deno.test("layout: routes are reached only through the app; the domain never imports a route or a view", () => {
  const routes = all.filter((i) =>
    i.target !== null && inFolder(i.target, "routes") && !inFolder(i.file, "routes") &&
    !["app.ts", "compose.ts", "main.ts"].includes(i.file) && !i.typeOnly
  );
  assert.deepEqual(show(routes), []);
  const views = all.filter((i) =>
    i.target !== null && inFolder(i.target, "views") &&
    ["db", "inference", "knowledge", "chat", "cases", "safety"].some((folder) => inFolder(i.file, folder))
  );
  assert.deepEqual(show(views), []);
});
