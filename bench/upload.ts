/**
 * deno task bench:upload [--pages N] [--rows N]   (default 100 pages, 5,000 rows)
 *
 * Uploads through Knowledge → Documents as a browser would (multipart POST over HTTP to a served app, then the
 * document's progress stream until it says ready), for a PDF of N pages and a CSV of N rows, on the test
 * database (PGlite in memory, or Postgres with TEST_DATABASE_URL). Beside each, the floor measured in the same
 * run: the same bytes ingested directly (`ingestStream`, as `deno task ingest` does) into a fresh database.
 * Prints seconds, MB/s and snippets/s for both, and how long the documents list took to answer (timed by curl),
 * asked every 200 ms while the upload was read, beside the same list asked while nothing is read.
 */
import { parseArgs } from "node:util";
import { ingestStream } from "../knowledge/ingest.ts";
import { createLexicalEmbedder } from "../knowledge/lexical_embedder.ts";
import { createTestApp, createTestDatabase, DRIVER } from "../tests/support/test_app.ts";
import { makePdf } from "../tests/support/documents.ts";
import { syntheticText } from "./synthetic.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { pages: { type: "string", default: "100" }, rows: { type: "string", default: "5000" } },
});
const PAGES = Number(values.pages);
const ROWS = Number(values.rows);

const text = syntheticText(7);
const pdf = makePdf(
  Array.from(
    { length: PAGES },
    (_, p) => Array.from({ length: 40 }, (_, l) => `${p + 1}.${l + 1} ${text.sentence(12)}.`),
  ),
  { title: "Synthetic guideline" },
);
const csv = new TextEncoder().encode(
  "question,answer\n" +
    Array.from(
      { length: ROWS },
      (_, i) => `"Case ${i}: ${text.sentence(20)}?","Reply ${i}: ${text.sentence(40)}."`,
    )
      .join("\n") +
    "\n",
);

interface Figure {
  seconds: number;
  snippets: number;
  /** The documents list's answer times (ms) meanwhile. */
  waits?: number[];
  /** The same list's answer times (ms) before the upload. */
  idle?: number[];
}

const LIST_EVERY_MS = 200;

async function viaUpload(name: string, bytes: Uint8Array): Promise<Figure> {
  const t = await createTestApp();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, t.app.fetch);
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    // Asked and timed by curl, from a process of its own as a browser would: a fetch, or a curl started, from
    // this process would go only when the loop, which PGlite in memory shares, was free, and miss the wait.
    const done = await Deno.makeTempFile({ prefix: "rounds-bench-listed-" });
    const listing = (count: number) =>
      new Deno.Command("sh", {
        args: [
          "-c",
          `for i in $(seq ${count}); do
          [ -s "$DONE" ] && exit 0
          curl -sS -o /dev/null -w '%{time_total}\\n' -H "cookie: $COOKIE" -H "hx-request: true" "$URL"
          sleep ${LIST_EVERY_MS / 1000}
        done`,
        ],
        env: { COOKIE: t.user.cookie, URL: base + "/knowledge/documents", DONE: done },
        stdout: "piped",
      }).spawn();
    const times = async (process: Deno.ChildProcess) =>
      new TextDecoder().decode((await process.output()).stdout).trim().split("\n").filter(Boolean)
        .map((line) => Number(line) * 1000);
    const idle = await times(listing(10));
    const form = new FormData();
    form.append("files", new File([bytes as Uint8Array<ArrayBuffer>], name));
    const started = performance.now();
    const response = await fetch(base + "/knowledge/documents", {
      method: "POST",
      body: form,
      headers: { cookie: t.user.cookie, "x-csrf-token": t.user.csrf, origin: base, "hx-request": "true" },
    });
    const html = await response.text();
    if (response.status !== 202) throw new Error(`upload answered ${response.status}: ${html.slice(0, 300)}`);
    // Follow the list's live stream as the page does, until nothing is being read.
    const stream = await fetch(`${base}/knowledge/documents/live`, {
      headers: { cookie: t.user.cookie },
    });
    const asking = listing(100_000);
    const events = await stream.text();
    const seconds = (performance.now() - started) / 1000;
    await Deno.writeTextFile(done, "done");
    const waits = await times(asking);
    await Deno.remove(done);
    const added = /Added: ([\d,]+) snippets?/.exec(events);
    if (!added) throw new Error(`the upload did not end ready: ${events.slice(-400)}`);
    return { seconds, snippets: Number(added[1].replace(/,/g, "")), waits, idle };
  } finally {
    await server.shutdown();
    await t.close();
  }
}

async function direct(name: string, bytes: Uint8Array): Promise<Figure> {
  const database = await createTestDatabase();
  try {
    const started = performance.now();
    const summary = await ingestStream(database.db, createLexicalEmbedder(), {
      stream: new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(),
      fileName: name,
      path: name,
      runPath: name,
      size: bytes.byteLength,
      inputKey: () => `bench:${name}`,
    });
    return { seconds: (performance.now() - started) / 1000, snippets: summary.added };
  } finally {
    await database.close();
  }
}

/** "p50/max" of answer times, in whole ms (a list asked during a read that held it throughout: none). */
function spread(ms: number[]): string {
  if (ms.length === 0) return "none answered";
  const sorted = [...ms].sort((a, b) => a - b);
  return `${Math.round(sorted[Math.floor(sorted.length / 2)])}/${Math.round(sorted.at(-1)!)}`;
}

const rows: string[][] = [];
for (const [name, bytes] of [[`guideline-${PAGES}p.pdf`, pdf], [`faq-${ROWS}.csv`, csv]] as const) {
  console.error(`${name}: direct…`);
  const floor = await direct(name, bytes);
  console.error(`${name}: upload…`);
  const upload = await viaUpload(name, bytes);
  const mb = bytes.byteLength / (1024 * 1024);
  for (const [how, f] of [["upload (HTTP, to ready)", upload], ["floor: ingestStream", floor]] as const) {
    rows.push([
      name,
      how,
      mb.toFixed(2),
      f.seconds.toFixed(2),
      (mb / f.seconds).toFixed(2),
      String(f.snippets),
      Math.round(f.snippets / f.seconds).toLocaleString("en"),
      f.waits ? `${spread(f.waits)} (idle ${spread(f.idle!)})` : "",
    ]);
  }
}
const header = [
  "file",
  "path",
  "MB",
  "seconds",
  "MB/s",
  "snippets",
  "snippets/s",
  "list meanwhile, p50/max ms",
];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
console.log(`bench:upload on ${DRIVER}, lexical embedder`);
for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  "));
