/**
 * The printable OSCE station pack.
 */
import { formatAge } from "../../cases/consistency.ts";
import { patientLine, vitalSignLines } from "../../cases/export.ts";
import { type Case, HYPOTHETICAL_NOTICE } from "../../cases/schema.ts";
import type { PageContext } from "../page.ts";
import { Pairs } from "./common.tsx";
import { ActorScript } from "./case.tsx";

/** Timing of a station, as the candidate brief and the examiner sheet state it. */
export const STATION_MINUTES = 10;
const READING_MINUTES = 1;
/** The global rating scale of a standard OSCE mark sheet (borderline-regression standard setting). */
const GLOBAL_RATINGS = ["Clear fail", "Borderline fail", "Borderline pass", "Clear pass", "Excellent"];

/** Lines to write on: who is examined, by whom, when. */
function IdFields(props: { fields: string[] }) {
  return (
    <dl class="id-fields">
      {props.fields.map((f) => (
        <div>
          <dt>{f}</dt>
          <dd></dd>
        </div>
      ))}
    </dl>
  );
}

/** The examiner's mark sheet: each item scored 2 / 1 / 0, a total, a global rating and room for comments. */
function MarkSheet(props: { c: Case }) {
  const items = props.c.checklist;
  return (
    <>
      <table class="checklist mark-sheet">
        <thead>
          <tr>
            <th scope="col">Item</th>
            <th scope="col">Area</th>
            <th scope="col" class="num">Done well (2)</th>
            <th scope="col" class="num">Partly (1)</th>
            <th scope="col" class="num">Not done (0)</th>
          </tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <tr>
              <td>{item.item}</td>
              <td>{item.category}</td>
              {[2, 1, 0].map(() => (
                <td class="num">
                  <span class="tickbox" aria-hidden="true"></span>
                </td>
              ))}
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colspan={2}>Total</th>
            <td colspan={3} class="num">
              ______ / {items.length * 2}
            </td>
          </tr>
        </tfoot>
      </table>
      <h2>Global rating</h2>
      <p class="muted">Your overall judgement of the candidate, apart from the checklist. Tick one.</p>
      <ul class="global-rating">
        {GLOBAL_RATINGS.map((r) => (
          <li>
            <span class="tickbox" aria-hidden="true"></span> {r}
          </li>
        ))}
      </ul>
      <h2>Comments and feedback for the candidate</h2>
      <div class="write-box" aria-label="Space for comments"></div>
    </>
  );
}

/**
 * GET /cases/:id/print: the OSCE station pack. Candidate brief, actor script and examiner checklist, each
 * starting on a new printed page, each headed with the hypothetical label.
 */
export function printPage(page: PageContext, c: Case): string {
  const vitals = vitalSignLines(c.vitalSigns);
  const head = (part: string) => (
    <header class="print-head">
      <p class="print-label">
        {part} · {HYPOTHETICAL_NOTICE}
      </p>
      <h1>{c.title}</h1>
    </header>
  );
  return "<!doctype html>" + String(
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>OSCE station: {c.title} · Rounds</title>
        <link rel="icon" type="image/svg+xml" href={page.assets.url("favicon.svg")} />
        <link rel="stylesheet" href={page.assets.url("app.css")} />
      </head>
      <body class="print-pack">
        <nav class="print-toolbar no-print">
          <a href={page.path.replace(/\/print$/, "")}>← Back to the case</a>
          <span class="muted">Use your browser’s Print (Ctrl+P / ⌘P) to print or save as PDF.</span>
        </nav>
        <section class="station-page" aria-label="Candidate brief">
          {head("Candidate brief")}
          <IdFields fields={["Candidate name or number"]} />
          <p class="station-time">
            <strong>Time:</strong> {READING_MINUTES} minute to read this brief, then {STATION_MINUTES}{" "}
            minutes in the station. You will be told when 2 minutes are left.
          </p>
          <p>
            <strong>Setting:</strong> {c.setting}
          </p>
          <p>
            <strong>Patient:</strong> {c.patient.name}, {formatAge(c.patient.age)}, {c.patient.sex}
          </p>
          <p>
            <strong>Presenting with:</strong> {c.chiefComplaint}
          </p>
          {vitals.length > 0 && (
            <>
              <h2>Observations</h2>
              <Pairs rows={vitals} />
            </>
          )}
          <h2>Your task</h2>
          <p>
            {c.candidateTask ||
              "Take a focused history from the patient. Then summarise your findings, your most likely diagnosis and your next steps to the examiner."}
          </p>
          <p class="muted">Talk to the patient as you would in clinic.</p>
        </section>
        <section class="station-page" aria-label="Actor script">
          {head("Standardized-patient script (actor only)")}
          <p>
            <strong>You are:</strong> {patientLine(c)}
          </p>
          <ActorScript c={c} />
          <p class="muted">Do not volunteer the facts above unless asked; never name a diagnosis.</p>
        </section>
        <section class="station-page" aria-label="Examiner checklist">
          {head("Examiner mark sheet (examiner only)")}
          <IdFields fields={["Candidate name or number", "Examiner", "Date", "Circuit and station"]} />
          <p class="station-time">
            <strong>Timing:</strong> {READING_MINUTES} minute reading, {STATION_MINUTES}{" "}
            minutes in the station; warn the candidate at {STATION_MINUTES - 2} minutes.
          </p>
          <p>
            <strong>Expected diagnosis:</strong> {c.finalDiagnosis}
          </p>
          <MarkSheet c={c} />
          <h2>Questions for the candidate</h2>
          <ol>
            {c.learnerQuestions.map((q) => (
              <li>
                <p>{q.question}</p>
                <p class="muted">Model answer: {q.modelAnswer}</p>
              </li>
            ))}
          </ol>
        </section>
      </body>
    </html>,
  );
}
