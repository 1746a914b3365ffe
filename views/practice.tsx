/**
 * The debrief of a practice session: the checklist scored from the transcript (deterministic), and the model's
 * narrative feedback, labelled as such and kept apart.
 */
import type { Debrief } from "../cases/practice_session.ts";
import { renderPage } from "./layout.tsx";
import type { PageContext } from "./page.ts";

const STATUS: Record<string, string> = {
  elicited: "Elicited",
  mentioned: "Mentioned (word match: examiner to confirm)",
  missed: "Not reached",
  in_person: "Examination: score in person",
};

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
        <div class="table-scroll">
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
                  <td>{STATUS[r.status]}</td>
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
          ? <p class="prose">{debrief.feedback.text}</p>
          : <p class="muted">{debrief.feedback.reason}</p>}
      </section>
      <p>
        {view.caseId && <a href={`/cases/${view.caseId}`}>Open the case</a>}
      </p>
    </article>,
  );
}
