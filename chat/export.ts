/**
 * A conversation as it leaves Rounds: Markdown to download, or the same turns for a printable page (save as
 * PDF). Identifiers are always replaced with placeholders, whatever PHI_REDACTION says, with one redactor for
 * the whole conversation (a name keeps its placeholder in every turn). Replies keep their status, their
 * numbered sources and the disclaimer; earlier versions of a regenerated reply are left out.
 */
import type { Chat } from "../db/chats.ts";
import type { Message } from "../db/messages.ts";
import type { CitedSource } from "../db/snippets.ts";
import { redactTexts } from "../safety/phi.ts";
import { citationDetail, citationLabel } from "../knowledge/citation.ts";

/** One turn of an exported conversation. */
export interface ExportedTurn {
  role: "user" | "assistant";
  /** Who is speaking, in words: "Clinician", "Rounds", "Patient (simulated)". */
  speaker: string;
  text: string;
  /** A reply that did not complete: "stopped", "interrupted", "error". */
  status: string | null;
  /** A reply's sources: "Sample dialogues · 2041#1 · similarity 0.22". */
  sources: string[];
  at: Date;
}

/** A conversation ready to export. */
export interface ExportedConversation {
  title: string;
  practice: boolean;
  turns: ExportedTurn[];
  /** How many identifiers were replaced, all turns together. */
  replaced: number;
  exportedAt: Date;
}

/** Under every exported reply of the assistant. */
export const EXPORT_DISCLAIMER =
  "Replies were written by a model and can be wrong; sources are retrieved text, not verified. Not a diagnosis.";

/** The conversation with identifiers replaced, ready for Markdown or the printable page. */
export function exportConversation(
  chat: Pick<Chat, "title" | "kind">,
  messages: Message[],
  sources: Map<string, CitedSource[]>,
): ExportedConversation {
  const kept = messages.filter((m) => !m.superseded);
  // All texts with one redactor, so a name learned from a later turn is replaced in the earlier ones too.
  // The title last: it is stored redacted already, by a redactor of its own, and its placeholders would otherwise
  // push the conversation's numbering on.
  const redacted = redactTexts([...kept.map((m) => m.content), chat.title]);
  const replaced = redacted.reduce((n, r) => n + r.redactions.length, 0);
  const practice = chat.kind === "practice";
  const turns = kept.map((m, i): ExportedTurn => ({
    role: m.role === "user" ? "user" : "assistant",
    speaker: m.role === "user"
      ? (practice ? "Learner" : "Clinician")
      : (practice ? "Patient (simulated)" : "Rounds"),
    text: redacted[i].text,
    status: m.role === "assistant" && m.status !== "completed" ? m.status : null,
    sources: (sources.get(m.id) ?? []).map((s) =>
      s.snippet
        ? [
          citationLabel(s.snippet),
          citationDetail(s.snippet),
          s.snippet.specialty,
          `similarity ${s.score.toFixed(2)}`,
        ]
          .filter(Boolean).join(" · ")
        : "removed from the knowledge base since"
    ),
    at: m.createdAt,
  }));
  return { title: redacted[kept.length].text, practice, turns, replaced, exportedAt: new Date() };
}

/** The exported conversation as Markdown. Its text is quoted as written (Markdown in a reply stays Markdown). */
export function conversationMarkdown(c: ExportedConversation): string {
  const lines = [
    `# ${c.title.replace(/\s*\n\s*/g, " ")}`,
    "",
    `Exported from Rounds on ${c.exportedAt.toISOString().slice(0, 16).replace("T", " ")} UTC. ` +
    (c.replaced > 0
      ? `${c.replaced} identifier${c.replaced === 1 ? " was" : "s were"} replaced with placeholders ` +
        "such as [NAME_1]; detection is automatic and can miss some."
      : "Identifiers were looked for and none were found; detection is automatic and can miss some."),
  ];
  if (c.practice) lines.push("", "A practice session with a simulated patient. The case is hypothetical.");
  for (const turn of c.turns) {
    lines.push(
      "",
      `## ${turn.speaker}${turn.status ? ` (${turn.status})` : ""}`,
      "",
      turn.text || "(no text)",
    );
    if (turn.sources.length) {
      lines.push("", "Sources:", "", ...turn.sources.map((s, i) => `${i + 1}. ${s}`));
    }
  }
  if (!c.practice && c.turns.some((t) => t.role === "assistant")) {
    lines.push("", "---", "", EXPORT_DISCLAIMER);
  }
  return lines.join("\n") + "\n";
}
