/**
 * The printable OSCE station pack.
 */
import { formatAge } from "../../cases/consistency.ts";
import { patientLine, vitalSignLines } from "../../cases/export.ts";
import { type Case, HYPOTHETICAL_NOTICE } from "../../cases/schema.ts";
import type { PageContext } from "../page.ts";
import { Pairs } from "./common.tsx";
import { ActorScript, Checklist } from "./case.tsx";

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
          <p class="muted">Time: as set by the examiner. Talk to the patient as you would in clinic.</p>
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
          {head("Examiner checklist (examiner only)")}
          <p>
            <strong>Expected diagnosis:</strong> {c.finalDiagnosis}
          </p>
          <Checklist c={c} />
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
