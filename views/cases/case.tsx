/**
 * GET /cases/:id (and old versions): a case with its sections, flags, actions and history; the delete confirmation; the fragments htmx swaps after a section is saved.
 */
import { CsrfField } from "../csrf.tsx";
import type { CaseFlag } from "../../cases/consistency.ts";
import { EDIT_SECTIONS, inSection } from "../../cases/edit.ts";
import { patientLine, vitalSignLines } from "../../cases/export.ts";
import type { CaseChange } from "../../cases/diff.ts";
import { resultFlag } from "../../cases/reference_range.ts";
import type { Case } from "../../cases/schema.ts";
import type { CaseSummary } from "../../db/cases.ts";
import { renderPage } from "../layout.tsx";
import type { PageContext } from "../page.ts";
import { formatWhen, Hypothetical, List, Pairs, plural } from "./common.tsx";

/** A case page's data. */
export interface CaseView {
  summary: CaseSummary;
  value: Case;
  flags: CaseFlag[];
  /** The version shown; equals summary.currentVersion unless an old one is being looked at. */
  version: number;
  versions: { version: number; note: string; createdAt: Date; errors: number; warnings: number }[];
  notice: string | null;
}

/** GET /cases/:id (and an old version at /cases/:id/versions/:n). */
export function casePage(page: PageContext, view: CaseView): string {
  const { summary, value: c } = view;
  const old = view.version !== summary.currentVersion;
  const user = page.user;
  const canEdit = Boolean(
    user && (user.role === "admin" || (user.role === "educator" && summary.ownerId === user.id)),
  );
  const canWrite = Boolean(user && user.role !== "clinician");
  return renderPage(
    page,
    c.title,
    <article class="case">
      <p class="breadcrumbs">
        <a href="/cases">← Case library</a>
      </p>
      <Hypothetical />
      {view.notice && <p class="notice success" role="status">{view.notice}</p>}
      {old && (
        <div class="notice" role="note">
          You are looking at version {view.version}. The current version is {summary.currentVersion}.
          {canEdit && (
            <form
              method="post"
              action={`/cases/${summary.id}/versions/${view.version}/restore`}
              class="inline-form"
            >
              <CsrfField />
              <button type="submit">Restore version {view.version}</button>
            </form>
          )}
        </div>
      )}
      <header class="case-head">
        <h1>{c.title}</h1>
        <p class="case-meta">
          {c.specialty} · {c.setting} · {c.difficulty} · for {c.learnerLevel}
          {c.tags.length > 0 && ` · ${c.tags.join(", ")}`}
        </p>
        {!old && (
          <CaseActions
            id={summary.id}
            canEdit={canEdit}
            canWrite={canWrite}
            shared={summary.ownerId === null ? null : summary.shared}
          />
        )}
      </header>
      {!old && !canEdit && (
        <p class="notice" role="note">
          {canWrite
            ? "This case is read-only for you: it is an example case or another educator's. Use Duplicate to edit " +
              "to make your own copy; the original stays as it is."
            : "You can read, print and practise this case; educators write and edit cases."}
        </p>
      )}
      <div class="case-layout">
        <CaseOutline />
        <div class="case-main">
          <Flags flags={view.flags} />
          <CaseBody c={c} caseId={summary.id} editable={!old && canEdit} />
          <History
            id={summary.id}
            versions={view.versions}
            shown={view.version}
            current={summary.currentVersion}
          />
        </div>
      </div>
    </article>,
  );
}

/** The case's sections as links: beside the case on a desk, a row to scroll along on a phone. */
function CaseOutline() {
  return (
    <nav class="case-outline" aria-label="Sections of the case">
      <ul>
        <li>
          <a href="#case-flags">Consistency checks</a>
        </li>
        {EDIT_SECTIONS.map((s) => (
          <li>
            <a href={`#section-${s.name}`}>{s.title}</a>
          </li>
        ))}
        <li>
          <a href="#case-history">Versions</a>
        </li>
      </ul>
    </nav>
  );
}

function CaseActions(props: { id: string; canEdit: boolean; canWrite: boolean; shared: boolean | null }) {
  const { id } = props;
  return (
    <div class="case-actions">
      <form method="post" action={`/cases/${id}/practice`} class="inline-form">
        <CsrfField />
        <button type="submit">Practise with a simulated patient</button>
      </form>
      <a class="button secondary" href={`/cases/${id}/print`}>Print OSCE station</a>
      {props.canWrite && (
        <form method="post" action={`/cases/${id}/duplicate`} class="inline-form">
          <CsrfField />
          <button type="submit" class="secondary">{props.canEdit ? "Duplicate" : "Duplicate to edit"}</button>
        </form>
      )}
      {props.canEdit && props.shared !== null && (
        <form method="post" action={`/cases/${id}/share`} class="inline-form">
          <CsrfField />
          <input type="hidden" name="shared" value={props.shared ? "off" : "on"} />
          <button type="submit" class="secondary" aria-describedby={`share-state-${id}`}>
            {props.shared ? "Stop sharing" : "Share with everyone"}
          </button>
          <span class="muted" id={`share-state-${id}`}>
            {props.shared ? "Shared: every signed-in user can read it" : "Private: only you can see it"}
          </span>
        </form>
      )}
      <span class="downloads">
        Download: <a href={`/cases/${id}.md`} download>Markdown</a> ·{" "}
        <a href={`/cases/${id}.json`} download>JSON</a>
      </span>
      {props.canEdit && <a class="button danger" href={`/cases/${id}/delete`}>Delete…</a>}
    </div>
  );
}

function Flags(props: { flags: CaseFlag[] }) {
  if (props.flags.length === 0) {
    return (
      <section class="flags flags-none" id="case-flags">
        <p class="muted">Consistency checks: nothing flagged. A clinician should still review the case.</p>
      </section>
    );
  }
  const errors = props.flags.filter((f) => f.severity === "error");
  const warnings = props.flags.filter((f) => f.severity === "warning");
  return (
    <section class="flags" id="case-flags" aria-labelledby="flags-heading">
      <h2 id="flags-heading">
        Consistency checks: {errors.length > 0 && plural(errors.length, "problem")}
        {errors.length > 0 && warnings.length > 0 && ", "}
        {warnings.length > 0 && plural(warnings.length, "warning")}
      </h2>
      <ul>
        {[...errors, ...warnings].map((f) => (
          <li class={`flag flag-${f.severity}`}>
            <span class="badge">{f.severity === "error" ? "Problem" : "Warning"}</span> {f.message}
            <FlagWhere path={f.path} />
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Where in the case a flag points: a link to the section that holds the field. */
function FlagWhere(props: { path: string }) {
  const section = EDIT_SECTIONS.find((s) => inSection(s, props.path));
  if (!section) return null;
  return (
    <>
      {" "}
      <a class="flag-where" href={`#section-${section.name}`}>({section.title})</a>
    </>
  );
}

function CaseBody(props: { c: Case; caseId: string; editable: boolean }) {
  return (
    <div class="case-body">
      {EDIT_SECTIONS.map((s) => (
        <CaseSection c={props.c} name={s.name} caseId={props.caseId} editable={props.editable} />
      ))}
    </div>
  );
}

/** One section of the case page, with its Edit button on the current version. */
export function CaseSection(
  props: { c: Case; name: string; caseId: string; editable: boolean; notice?: string },
) {
  const section = EDIT_SECTIONS.find((s) => s.name === props.name)!;
  const edit = `/cases/${props.caseId}/sections/${section.name}/edit`;
  return (
    <section class="case-section" id={`section-${section.name}`} aria-labelledby={`h-${section.name}`}>
      <div class="section-head">
        <h2 id={`h-${section.name}`}>{section.title}</h2>
        {props.editable && (
          <a
            class="button edit-button"
            href={edit}
            hx-get={edit}
            hx-target={`#section-${section.name}`}
            hx-swap="outerHTML"
            aria-label={`Edit ${section.title.toLowerCase()}`}
          >
            Edit
          </a>
        )}
      </div>
      {props.notice && <p class="saved" role="status">{props.notice}</p>}
      <SectionContent c={props.c} name={section.name} />
    </section>
  );
}

function SectionContent(props: { c: Case; name: string }) {
  const { c } = props;
  switch (props.name) {
    case "overview":
      return (
        <>
          <p>
            {c.specialty} · {c.setting} · {c.difficulty} · for {c.learnerLevel}
            {c.tags.length > 0 && ` · tags: ${c.tags.join(", ")}`}
          </p>
          <h3>Learning objectives</h3>
          <List items={c.learningObjectives} />
        </>
      );
    case "patient":
      return (
        <>
          <p>{patientLine(c)}</p>
          <p>
            <strong>Chief complaint:</strong> {c.chiefComplaint}
          </p>
          {c.candidateTask && (
            <p>
              <strong>Candidate’s task:</strong> {c.candidateTask}
            </p>
          )}
        </>
      );
    case "history":
      return (
        <>
          <h3>History of present illness</h3>
          <p class="prose">{c.historyOfPresentIllness}</p>
          <h3>Past medical history</h3>
          <List items={c.pastMedicalHistory} />
          <h3>Social history</h3>
          <p class="prose">{c.socialHistory || "Not recorded."}</p>
          <h3>Family history</h3>
          <p class="prose">{c.familyHistory || "Not recorded."}</p>
        </>
      );
    case "medications":
      return (
        <>
          <h3>Medications</h3>
          <List items={c.medications.map((m) => [m.name, m.dose, m.frequency].filter(Boolean).join(" "))} />
          <h3>Allergies</h3>
          <List
            items={c.allergies.map((a) => (a.reaction ? `${a.substance}: ${a.reaction}` : a.substance))}
            empty="No known allergies."
          />
        </>
      );
    case "reviewOfSystems":
      return c.reviewOfSystems.length
        ? <Pairs rows={c.reviewOfSystems.map((r) => [r.system, r.findings])} />
        : <p class="muted">Not recorded.</p>;
    case "vitalSigns": {
      const vitals = vitalSignLines(c.vitalSigns);
      return vitals.length ? <Pairs rows={vitals} /> : <p class="muted">Not recorded.</p>;
    }
    case "examination":
      return <Pairs rows={c.examination.map((e) => [e.system, e.findings])} />;
    case "investigations":
      return c.investigations.length
        ? (
          <div class="table-scroll" tabindex={0} role="region" aria-label="Investigations">
            <table>
              <thead>
                <tr>
                  <th scope="col">Investigation</th>
                  <th scope="col">Result</th>
                  <th scope="col">Unit</th>
                  <th scope="col">Reference range</th>
                </tr>
              </thead>
              <tbody>
                {c.investigations.map((inv) => {
                  const flag = resultFlag(inv.value, inv.referenceRange);
                  return (
                    <tr class={flag ? "abnormal" : undefined}>
                      <th scope="row">{inv.name}</th>
                      <td>
                        {String(inv.value)}
                        {flag && (
                          <>
                            {" "}
                            <abbr
                              class={`result-flag flag-${flag}`}
                              title={flag === "H" ? "Above the reference range" : "Below the reference range"}
                            >
                              {flag}
                            </abbr>
                          </>
                        )}
                      </td>
                      <td>{inv.unit}</td>
                      <td>{inv.referenceRange}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )
        : <p class="muted">None.</p>;
    case "diagnosis":
      return (
        <>
          <ol>
            {c.differential.map((d) => (
              <li>
                <strong>{d.diagnosis}</strong> <span class="muted">({d.likelihood})</span>: {d.reasoning}
              </li>
            ))}
          </ol>
          <p>
            <strong>Final diagnosis:</strong> {c.finalDiagnosis}
          </p>
        </>
      );
    case "management":
      return (
        <>
          <h3>Management plan</h3>
          <List items={c.managementPlan} ordered />
          <h3>Teaching points</h3>
          <List items={c.teachingPoints} />
        </>
      );
    case "learnerQuestions":
      return (
        <ol>
          {c.learnerQuestions.map((q) => (
            <li>
              <p>{q.question}</p>
              <details>
                <summary>Model answer</summary>
                <p class="prose">{q.modelAnswer}</p>
              </details>
            </li>
          ))}
        </ol>
      );
    case "script":
      return <ActorScript c={c} />;
    case "checklist":
      return <Checklist c={c} />;
    default:
      return null;
  }
}

export function ActorScript(props: { c: Case }) {
  const { script } = props.c;
  return (
    <div>
      <p>
        <strong>Opening line:</strong> “{script.openingLine}”
      </p>
      {script.emotionalCues.length > 0 && (
        <>
          <h3>How to play it</h3>
          <List items={script.emotionalCues} />
        </>
      )}
      {script.patientQuestions.length > 0 && (
        <>
          <h3>Questions the patient asks</h3>
          <List items={script.patientQuestions} />
        </>
      )}
      <h3>Reveal only when asked</h3>
      <div class="table-scroll" tabindex={0} role="region" aria-label="Facts revealed only when asked">
        <table class="script-facts">
          <thead>
            <tr>
              <th scope="col">Topic</th>
              <th scope="col">If asked about</th>
              <th scope="col">The patient says</th>
            </tr>
          </thead>
          <tbody>
            {script.facts.map((f) => (
              <tr>
                <th scope="row">{f.topic}</th>
                <td>{f.triggers.join(", ")}</td>
                <td>{f.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

export function Checklist(props: { c: Case }) {
  return (
    <table class="checklist">
      <thead>
        <tr>
          <th scope="col">Item</th>
          <th scope="col">Area</th>
          <th scope="col" class="num">Done</th>
        </tr>
      </thead>
      <tbody>
        {props.c.checklist.map((item) => (
          <tr>
            <td>{item.item}</td>
            <td>{item.category}</td>
            <td class="num">
              <span class="tickbox" aria-hidden="true"></span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The version list. */
export function History(
  props: { id: string; versions: CaseView["versions"]; shown: number; current: number },
) {
  return (
    <section class="case-history" id="case-history" aria-labelledby="history-heading">
      <h2 id="history-heading">Versions</h2>
      <ol reversed class="versions">
        {props.versions.map((v) => (
          <li aria-current={v.version === props.shown ? "true" : undefined}>
            <a
              href={v.version === props.current
                ? `/cases/${props.id}`
                : `/cases/${props.id}/versions/${v.version}`}
            >
              Version {v.version}
            </a>{" "}
            · {v.note} · <time datetime={v.createdAt.toISOString()}>{formatWhen(v.createdAt)}</time>
            {v.version === props.current && <span class="badge">current</span>}
            {v.errors > 0 && <span class="badge badge-error">{plural(v.errors, "problem")}</span>}
            {v.version > 1 && (
              <>
                {" "}
                · <a href={`/cases/${props.id}/versions/${v.version}/changes`}>what changed</a>
              </>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}

/** GET /cases/:id/delete: the confirmation. */
export function deleteConfirmPage(page: PageContext, summary: CaseSummary, versions: number): string {
  return renderPage(
    page,
    `Delete ${summary.title}`,
    <div class="cases">
      <h1>Delete this case?</h1>
      <p>
        <strong>{summary.title}</strong> and its {plural(versions, "version")}{" "}
        will be deleted for good. Export it first (<a href={`/cases/${summary.id}.json`} download>JSON</a>) if
        you may want it back.
      </p>
      <form method="post" action={`/cases/${summary.id}/delete`} class="inline-form">
        <CsrfField />
        <button type="submit" class="danger">Delete the case</button>
        <a class="button" href={`/cases/${summary.id}`}>Keep it</a>
      </form>
    </div>,
  );
}

/** What the consistency checks make of a saved version, said with the save. */
function savedFlagsNote(flags: CaseFlag[]): string {
  const problems = flags.filter((f) => f.severity === "error").length;
  const warnings = flags.length - problems;
  if (flags.length === 0) return " Consistency checks: nothing flagged.";
  const parts = [
    problems > 0 ? plural(problems, "problem") : "",
    warnings > 0 ? plural(warnings, "warning") : "",
  ]
    .filter(Boolean).join(" and ");
  return ` Consistency checks found ${parts}: see the list at the top of the case.`;
}

/** After a section was saved: the section, and the flags and history brought up to date (htmx partials). */
export function sectionSavedFragment(
  props: {
    c: Case;
    caseId: string;
    name: string;
    version: number;
    flags: CaseFlag[];
    versions: CaseView["versions"];
  },
): string {
  return String(
    <>
      <CaseSection
        c={props.c}
        name={props.name}
        caseId={props.caseId}
        editable
        notice={`Saved as version ${props.version}.${savedFlagsNote(props.flags)}`}
      />
      <hx-partial hx-target="#case-flags" hx-swap="outerHTML">
        <Flags flags={props.flags} />
      </hx-partial>
      <hx-partial hx-target="#case-history" hx-swap="outerHTML">
        <History id={props.caseId} versions={props.versions} shown={props.version} current={props.version} />
      </hx-partial>
    </>,
  );
}

/** A section's view or form alone, for htmx. */
export function sectionFragment(props: { c: Case; caseId: string; name: string }): string {
  return String(<CaseSection c={props.c} name={props.name} caseId={props.caseId} editable />);
}

/** GET /cases/:id/versions/:n/changes: what version n changed from the one before, field by field. */
export function changesPage(
  page: PageContext,
  view: { id: string; title: string; version: number; note: string; changes: CaseChange[] },
): string {
  const bySection = new Map<string, CaseChange[]>();
  for (const change of view.changes) {
    bySection.set(change.section, [...bySection.get(change.section) ?? [], change]);
  }
  const shown = (text: string | null) =>
    text === null ? <span class="muted">(empty)</span> : <span class="plain">{text}</span>;
  return renderPage(
    page,
    `What version ${view.version} changed: ${view.title}`,
    <article class="case case-changes">
      <p class="breadcrumbs">
        <a href={`/cases/${view.id}`}>← {view.title}</a>
      </p>
      <Hypothetical />
      <h1>What version {view.version} changed</h1>
      <p class="lead">
        {view.note}: {plural(view.changes.length, "field")} changed from version {view.version - 1}.{" "}
        <a href={`/cases/${view.id}/versions/${view.version}`}>See version {view.version} whole</a>
      </p>
      {view.changes.length === 0 && <p class="empty">No field changed (the version was saved as it was).</p>}
      {[...bySection].map(([section, changes]) => (
        <section class="case-section">
          <h2>{section}</h2>
          <div class="table-scroll" tabindex={0} role="region" aria-label={`Changes in ${section}`}>
            <table class="data-table changes">
              <thead>
                <tr>
                  <th scope="col">Field</th>
                  <th scope="col">Before (version {view.version - 1})</th>
                  <th scope="col">After (version {view.version})</th>
                </tr>
              </thead>
              <tbody>
                {changes.map((c) => (
                  <tr>
                    <th scope="row">{c.field}</th>
                    <td class="before">{shown(c.before)}</td>
                    <td class="after">{shown(c.after)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </article>,
  );
}
