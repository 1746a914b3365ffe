/**
 * Model output → safe HTML: Markdown rendered with raw HTML disabled, then an allowlist sanitizer.
 */
import MarkdownIt from "markdown-it";
import sanitizeHtml from "sanitize-html";

/** HTML that went through the sanitizer; the only kind views insert unescaped. */
export type SafeHtml = string & { readonly __brand: "SafeHtml" };

const markdown = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });

// A remote image in model output would be fetched by the browser: a way to leak the page's text in its URL.
// Images become ordinary links the reader can choose to follow.
markdown.renderer.rules.image = (tokens, idx, options, _env, self) => {
  const token = tokens[idx];
  const src = String(token.attrGet("src") ?? "");
  const alt = self.renderInlineAsText(token.children ?? [], options, _env) || "image";
  return `<a href="${markdown.utils.escapeHtml(src)}">image: ${markdown.utils.escapeHtml(alt)}</a>`;
};

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: [
    "p",
    "br",
    "strong",
    "em",
    "b",
    "i",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
    "del",
    "s",
    "sup",
    "sub",
  ],
  allowedAttributes: { a: ["href", "title", "rel", "target"], ol: ["start"], th: ["scope"] },
  allowedSchemes: ["http", "https", "mailto"],
  allowedSchemesAppliedToAttributes: ["href"],
  allowProtocolRelative: false,
  disallowedTagsMode: "escape",
  transformTags: {
    a: sanitizeHtml.simpleTransform("a", { rel: "noopener noreferrer nofollow", target: "_blank" }),
    // Headings in untrusted text sit two levels down (as while streaming, static/app.js): a reply cannot
    // write a heading at the level of the page's own, such as the emergency banner's.
    h1: "h3",
    h2: "h4",
    h3: "h5",
    h4: "h6",
    h5: "h6",
  },
};

/** Renders untrusted Markdown (model output, retrieved text) to HTML that cannot run script or htmx. */
export function renderMarkdown(text: string): SafeHtml {
  return sanitizeHtml(markdown.render(text), SANITIZE) as SafeHtml;
}

/**
 * Turns citation markers `[n]` in sanitized HTML into links to the reply's numbered sources (`#<prefix><n>`),
 * for n from 1 to `count` only: a marker with no source stays plain text, so a citation the model invented is
 * never made to look real. Text inside links and code is left alone.
 */
export function linkCitations(html: SafeHtml, count: number, prefix: string): SafeHtml {
  if (count <= 0) return html;
  let skipDepth = 0;
  return html.split(/(<[^>]*>)/).map((part) => {
    if (part.startsWith("<")) {
      if (/^<(a|code|pre)\b/i.test(part)) skipDepth++;
      else if (/^<\/(a|code|pre)>/i.test(part)) skipDepth = Math.max(0, skipDepth - 1);
      return part;
    }
    if (skipDepth > 0) return part;
    return part.replace(/\[(\d{1,2})\]/g, (marker, digits) => {
      const n = Number(digits);
      return n >= 1 && n <= count ? `<a class="cite" href="#${prefix}${n}">${marker}</a>` : marker;
    });
  }).join("") as SafeHtml;
}
