/**
 * The debrief of a practice session: the checklist scored from the transcript (deterministic), and the model's
 * narrative feedback, labelled as such and kept apart.
 */
import { raw } from "hono/html";
import type { Debrief } from "../cases/practice_session.ts";
import { renderMarkdown } from "../safety/markdown.ts";
import { renderPage } from "./layout.tsx";
import type { PageContext } from "./page.ts";

const STATUS: Record<string, string> = {
  elicited: "Elicited",
  mentioned: "Mentioned (word match: examiner to confirm)",
  missed: "Not reached",
  in_person: "Examination: score in person",
};

/**
 * What a result says. Practice is history-taking with a patient: an item outside the history (a diagnosis, a
 * plan) that never came up was not asked of the learner here, so it goes to the examiner rather than "not reached".
 */
function resultLabel(r: { status: string; category: string }): string {
  if (r.status === "missed" && r.category !== "history") {
    return "Not part of history-taking: examiner to score";
  }
  return STATUS[r.status];
}

/** GET /sessions/:id/debrief */
export function debriefPage(
  page: PageContext,
  view: { sessionId: string; caseId: string | null; debrief: Debrief },
): string {
  const { debrief } = view;
  const { score } = debrief;
  return renderPage(
    page,
    `Debrief: ${debrief.caseTitle}`,
    <article class="cases debrief">
      <p class="breadcrumbs">
        <a href={`/sessions/${view.sessionId}`}>← Back to the practice session</a>
      </p>
      <p class="hypothetical" role="note">
        <strong>Hypothetical case.</strong> A practice exercise for education, not an assessment of real care.
      </p>
      <h1>Debrief: {debrief.caseTitle}</h1>
      <p class="lead">
        History items elicited: <strong>{score.history.elicited} of {score.history.total}</strong> in{" "}
        {score.learnerTurns} question{score.learnerTurns === 1 ? "" : "s"}.
      </p>
      <section class="case-section" aria-labelledby="checklist-heading">
        <h2 id="checklist-heading">Examiner checklist, scored from the transcript</h2>
        <p class="muted">
          Scored by matching your questions to the patient script's trigger words: the same transcript always
          gets the same result. Word matches on other items are only hints for the examiner.
        </p>
        <div class="table-scroll" tabindex={0} role="region" aria-label="Examiner checklist">
          <table class="checklist debrief-table">
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Area</th>
                <th scope="col">Result</th>
                <th scope="col">Your question</th>
              </tr>
            </thead>
            <tbody>
              {score.results.map((r) => (
                <tr class={`result-${r.status}`}>
                  <td>{r.item}</td>
                  <td>{r.category}</td>
                  <td>{resultLabel(r)}</td>
                  <td>{r.turn ? `Turn ${r.turn}: “${r.evidence}”` : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section class="case-section model-feedback" aria-labelledby="feedback-heading">
        <h2 id="feedback-heading">The model’s narrative feedback</h2>
        <p class="muted">
          Written by the model{"model" in debrief.feedback ? ` (${debrief.feedback.model})` : ""}, not by an
          examiner. It can be wrong; weigh it against the checklist above.
        </p>
        {debrief.feedback.text !== null
          ? <div class="prose markdown">{raw(renderMarkdown(debrief.feedback.text))}</div>
          : <p class="muted">{debrief.feedback.reason}</p>}
      </section>
      <p>
        {view.caseId && <a href={`/cases/${view.caseId}`}>Open the case</a>}
      </p>
    </article>,
  );
}
