/**
 * A conversation as a printable page (the browser saves it as PDF), with identifiers replaced (chat/export.ts).
 * Reply text is rendered only through renderMarkdown (sanitized).
 */
import { raw } from "hono/html";
import { EXPORT_DISCLAIMER, type ExportedConversation } from "../chat/export.ts";
import { renderMarkdown } from "../safety/markdown.ts";
import { renderPage } from "./layout.tsx";
import type { PageContext } from "./page.ts";

/** GET /sessions/:id/export */
export function conversationPrintPage(page: PageContext, sessionId: string, c: ExportedConversation): string {
  return renderPage(
    page,
    `Export: ${c.title}`,
    <article class="conversation-export">
      <p class="breadcrumbs no-print">
        <a href={`/sessions/${sessionId}`}>← Back to the session</a> ·{" "}
        <a href={`/sessions/${sessionId}/export.md`} download>Download as Markdown</a> ·{" "}
        <span class="muted">Use your browser’s Print (Ctrl+P / ⌘P) to print or save as PDF.</span>
      </p>
      <h1>{c.title}</h1>
      <p class="muted">
        Exported from Rounds on {c.exportedAt.toISOString().slice(0, 16).replace("T", " ")} UTC.{" "}
        {c.replaced > 0
          ? `${c.replaced} identifier${c.replaced === 1 ? " was" : "s were"} replaced with placeholders.`
          : "No identifiers were found to replace."} Detection is automatic and can miss some.
      </p>
      {c.practice && (
        <p class="hypothetical">A practice session with a simulated patient. The case is hypothetical.</p>
      )}
      {c.turns.map((t) => (
        <section class={`export-turn export-${t.role}`}>
          <h2>
            {t.speaker}
            {t.status && <span class="muted">({t.status})</span>}
          </h2>
          {t.role === "assistant"
            ? <div class="markdown">{raw(renderMarkdown(t.text))}</div>
            : <p class="plain">{t.text}</p>}
          {t.sources.length > 0 && (
            <>
              <p class="muted">Sources (retrieved text, not verified):</p>
              <ol class="export-sources">{t.sources.map((s) => <li>{s}</li>)}</ol>
            </>
          )}
        </section>
      ))}
      {!c.practice && c.turns.some((t) => t.role === "assistant") && (
        <p class="disclaimer">{EXPORT_DISCLAIMER}</p>
      )}
    </article>,
  );
}
