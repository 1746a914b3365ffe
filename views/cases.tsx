/**
 * The case library pages: the library with search and filters, a case with its flags and history, the import
 * form and its errors, the delete confirmation, and the printable OSCE station pack. Case text is shown as
 * escaped text only; every page says the case is hypothetical.
 */
import { raw } from "hono/html";
import { CsrfField } from "./csrf.tsx";
import { type CaseFlag, formatAge } from "../cases/consistency.ts";
import {
  type Column,
  EDIT_SECTIONS,
  type EditSection,
  type Field,
  getPath,
  VITAL_UNITS,
} from "../cases/edit.ts";
import { patientLine, vitalSignLines } from "../cases/export.ts";
import type { GenerationProgress } from "../cases/generate.ts";
import {
  type Case,
  DIFFICULTIES,
  type FieldError,
  HYPOTHETICAL_NOTICE,
  LEARNER_LEVELS,
} from "../cases/schema.ts";
import type { CaseHit, CaseSummary } from "../db/cases.ts";
import { renderPage } from "./layout.tsx";
import type { PageContext } from "./page.ts";

/** What the library's search form was given. */
export interface LibraryQuery {
  q: string;
  specialty: string;
  difficulty: string;
  learnerLevel: string;
  tag: string;
}

/** What the library page shows. */
export interface LibraryView {
  hits: CaseHit[];
  facets: { specialties: [string, number][]; tags: [string, number][]; total: number };
  query: LibraryQuery;
  exampleCount: number;
  /** A problem with the query, shown next to the form. */
  error: string | null;
  /** A one-line confirmation ("Case deleted"). */
  notice: string | null;
}

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

function Hypothetical() {
  return (
    <p class="hypothetical" role="note">
      <strong>Hypothetical case.</strong>{" "}
      Written for medical education: not a real patient, not clinical guidance.
    </p>
  );
}

/** GET /cases */
export function libraryPage(page: PageContext, view: LibraryView): string {
  const writes = page.user?.role !== "clinician";
  return renderPage(
    page,
    "Case library",
    <div class="cases">
      <section>
        <h1>Case library</h1>
        <p class="lead">
          Hypothetical patient cases for teaching: search, open, print as OSCE stations
          {writes ? ", or import your own." : ", or practise with a simulated patient."}
        </p>
        {writes && (
          <p>
            <a class="button" href="/cases/new">Generate a new case</a>
          </p>
        )}
        {view.notice && <p class="notice" role="status">{view.notice}</p>}
      </section>
      <LibrarySearch view={view} />
      <div id="case-results" aria-live="polite">
        <LibraryResults view={view} />
      </div>
      {writes && <ImportForm errors={[]} />}
    </div>,
  );
}

function Select(
  props: { name: string; label: string; all: string; value: string; options: [string, string][] },
) {
  return (
    <label>
      {props.label}
      <select name={props.name}>
        <option value="">{props.all}</option>
        {props.options.map(([value, label]) => (
          <option value={value} selected={value === props.value}>{label}</option>
        ))}
      </select>
    </label>
  );
}

function LibrarySearch(props: { view: LibraryView }) {
  const { query, facets } = props.view;
  return (
    <form
      class="case-search"
      action="/cases"
      method="get"
      role="search"
      hx-get="/cases"
      hx-target="#case-results"
      hx-push-url="true"
    >
      <label class="grow">
        Search cases
        <input
          type="search"
          name="q"
          value={query.q}
          maxlength={500}
          placeholder="e.g. chest pain, sudden headache, confused elderly"
          autocomplete="off"
          aria-invalid={props.view.error ? "true" : undefined}
        />
      </label>
      <Select
        name="specialty"
        label="Specialty"
        all="All specialties"
        value={query.specialty}
        options={facets.specialties.map(([s, n]) => [s, `${s} (${n})`])}
      />
      <Select
        name="difficulty"
        label="Difficulty"
        all="Any difficulty"
        value={query.difficulty}
        options={DIFFICULTIES.map((d) => [d, d])}
      />
      <Select
        name="level"
        label="Learner level"
        all="Any level"
        value={query.learnerLevel}
        options={LEARNER_LEVELS.map((l) => [l, l])}
      />
      <Select
        name="tag"
        label="Tag"
        all="Any tag"
        value={query.tag}
        options={facets.tags.map(([t, n]) => [t, `${t} (${n})`])}
      />
      <button type="submit">Search</button>
    </form>
  );
}

/** The results list (the fragment the search form swaps in). */
export function LibraryResults(props: { view: LibraryView }) {
  const { view } = props;
  if (view.error) return <p class="form-error" role="alert">{view.error}</p>;
  if (view.facets.total === 0) {
    return (
      <div class="empty">
        <p>The library is empty.</p>
        <form method="post" action="/cases/examples" class="inline-form">
          <CsrfField />
          <button type="submit">Add the {view.exampleCount} example cases</button>
        </form>
        <p class="muted">Or import a case file below (JSON exported from Rounds).</p>
      </div>
    );
  }
  const filtered = Object.values(view.query).some(Boolean);
  if (view.hits.length === 0) {
    return (
      <p class="empty">
        No case matches{view.query.q && ` “${view.query.q}”`}. Try other words or clear the filters.
      </p>
    );
  }
  return (
    <div>
      <p class="muted">
        {filtered
          ? `${view.hits.length} of ${view.facets.total} cases`
          : `${view.facets.total} cases, newest first`}
      </p>
      <ul class="case-list">
        {view.hits.map((hit) => <CaseCard hit={hit} />)}
      </ul>
    </div>
  );
}

function CaseCard(props: { hit: CaseHit }) {
  const { summary, matchedBy } = props.hit;
  return (
    <li class="case-card">
      <a href={`/cases/${summary.id}`} class="case-title">{summary.title}</a>
      <span class="case-meta">
        {summary.specialty} · {summary.difficulty} · {summary.learnerLevel}
        {summary.tags.length > 0 && ` · ${summary.tags.join(", ")}`}
      </span>
      <span class="case-meta">
        {summary.errorCount > 0 && (
          <span class="badge badge-error">{plural(summary.errorCount, "problem")}</span>
        )}
        {summary.warningCount > 0 && <span class="badge">{plural(summary.warningCount, "warning")}</span>}
        {matchedBy.length > 0 && <span class="muted">matched by {matchedBy.join(" and ")}</span>}
      </span>
    </li>
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The import form, with the problems of a rejected file. */
function ImportForm(props: { errors: FieldError[]; text?: string }) {
  return (
    <section class="case-import" aria-labelledby="import-heading">
      <h2 id="import-heading">Import a case</h2>
      <form method="post" action="/cases/import" enctype="multipart/form-data">
        <CsrfField />
        <label>
          Case file (JSON)
          <input type="file" name="file" accept="application/json,.json" />
        </label>
        <label>
          Or paste the JSON
          <textarea name="json" rows={6} spellcheck={false}>{props.text ?? ""}</textarea>
        </label>
        <button type="submit">Import</button>
      </form>
      {props.errors.length > 0 && <FieldErrors errors={props.errors} />}
    </section>
  );
}

function FieldErrors(props: { errors: FieldError[] }) {
  const shown = props.errors.slice(0, 50);
  return (
    <div class="form-error" role="alert">
      <p>
        The case was not imported: {plural(props.errors.length, "problem")} to fix.
      </p>
      <ul class="field-errors">
        {shown.map((e) => (
          <li>
            <code>{e.path}</code>: {e.message}
          </li>
        ))}
      </ul>
      {props.errors.length > shown.length && <p>… and {props.errors.length - shown.length} more.</p>}
    </div>
  );
}

/** POST /cases/import that failed: the form again with each problem. */
export function importErrorPage(page: PageContext, errors: FieldError[], text: string): string {
  return renderPage(
    page,
    "Import a case",
    <div class="cases">
      <p>
        <a href="/cases">← Case library</a>
      </p>
      <ImportForm errors={errors} text={text.length <= 200_000 ? text : ""} />
    </div>,
  );
}

/** GET /cases/:id (and an old version at /cases/:id/versions/:n). */
export function casePage(page: PageContext, view: CaseView): string {
  const { summary, value: c } = view;
  const old = view.version !== summary.currentVersion;
  const user = page.user;
  const canEdit = Boolean(user && (user.role === "admin" || summary.ownerId === user.id));
  const canWrite = Boolean(user && user.role !== "clinician");
  return renderPage(
    page,
    c.title,
    <article class="case">
      <p class="breadcrumbs">
        <a href="/cases">← Case library</a>
      </p>
      <Hypothetical />
      {view.notice && <p class="notice" role="status">{view.notice}</p>}
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
      <Flags flags={view.flags} />
      <CaseBody c={c} caseId={summary.id} editable={!old && canEdit} />
      <History
        id={summary.id}
        versions={view.versions}
        shown={view.version}
        current={summary.currentVersion}
      />
    </article>,
  );
}

function CaseActions(props: { id: string; canEdit: boolean; canWrite: boolean; shared: boolean | null }) {
  const { id } = props;
  return (
    <div class="case-actions">
      <a class="button" href={`/cases/${id}/print`}>Print OSCE station</a>
      <a class="button" href={`/cases/${id}.md`} download>Markdown</a>
      <a class="button" href={`/cases/${id}.json`} download>JSON</a>
      <form method="post" action={`/cases/${id}/practice`} class="inline-form">
        <CsrfField />
        <button type="submit">Practise with a simulated patient</button>
      </form>
      {props.canWrite && (
        <form method="post" action={`/cases/${id}/duplicate`} class="inline-form">
          <CsrfField />
          <button type="submit">Duplicate</button>
        </form>
      )}
      {props.canEdit && props.shared !== null && (
        <form method="post" action={`/cases/${id}/share`} class="inline-form">
          <CsrfField />
          <input type="hidden" name="shared" value={props.shared ? "off" : "on"} />
          <button type="submit" aria-describedby={`share-state-${id}`}>
            {props.shared ? "Stop sharing" : "Share with everyone"}
          </button>
          <span class="muted" id={`share-state-${id}`}>
            {props.shared ? "Shared: every signed-in user can read it" : "Private: only you can see it"}
          </span>
        </form>
      )}
      {props.canEdit && <a class="button danger" href={`/cases/${id}/delete`}>Delete…</a>}
    </div>
  );
}

function Flags(props: { flags: CaseFlag[] }) {
  if (props.flags.length === 0) {
    return (
      <p class="muted">Consistency checks: nothing flagged. A clinician should still review the case.</p>
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
            <span class="badge">{f.severity === "error" ? "Problem" : "Warning"}</span> {f.message}{" "}
            <code class="muted">{f.path}</code>
          </li>
        ))}
      </ul>
    </section>
  );
}

function List(props: { items: string[]; ordered?: boolean; empty?: string }) {
  if (props.items.length === 0) return <p class="muted">{props.empty ?? "None."}</p>;
  const items = props.items.map((i) => <li>{i}</li>);
  return props.ordered ? <ol>{items}</ol> : <ul>{items}</ul>;
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
          <div class="table-scroll">
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
                {c.investigations.map((inv) => (
                  <tr>
                    <th scope="row">{inv.name}</th>
                    <td>{String(inv.value)}</td>
                    <td>{inv.unit}</td>
                    <td>{inv.referenceRange}</td>
                  </tr>
                ))}
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

/** A section's form: the fields it edits, with the problems of a rejected save. */
export function SectionEditor(
  props: { c: unknown; caseId: string; section: EditSection; errors: FieldError[]; version: number },
) {
  const { section, caseId } = props;
  const action = `/cases/${caseId}/sections/${section.name}`;
  const errorsAt = (path: string) =>
    props.errors.filter((e) => e.path === path || e.path.startsWith(`${path}.`));
  return (
    <section
      class="case-section editing"
      id={`section-${section.name}`}
      aria-labelledby={`h-${section.name}`}
    >
      <h2 id={`h-${section.name}`}>Editing: {section.title}</h2>
      {props.errors.length > 0 && (
        <div class="form-error" role="alert">
          <p>Not saved: {plural(props.errors.length, "problem")} to fix.</p>
          <ul class="field-errors">
            {props.errors.map((e) => (
              <li>
                <code>{e.path}</code>: {e.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      <form
        class="section-form"
        method="post"
        action={action}
        hx-post={action}
        hx-target={`#section-${section.name}`}
        hx-swap="outerHTML"
        {...{ "hx-status:422": "target:#section-" + section.name + " swap:outerHTML" }}
      >
        <CsrfField />
        <input type="hidden" name="base_version" value={String(props.version)} />
        {section.fields.map((field) => (
          <FieldInput field={field} value={getPath(props.c, field.path)} errors={errorsAt(field.path)} />
        ))}
        <div class="form-actions">
          <button type="submit">Save as a new version</button>
          <a
            class="button"
            href={`/cases/${caseId}#section-${section.name}`}
            hx-get={`/cases/${caseId}/sections/${section.name}`}
            hx-target={`#section-${section.name}`}
            hx-swap="outerHTML"
          >
            Cancel
          </a>
        </div>
      </form>
    </section>
  );
}

function FieldInput(props: { field: Field; value: unknown; errors: FieldError[] }) {
  const { field, value } = props;
  const invalid = props.errors.length > 0 ? { "aria-invalid": "true" } : {};
  const text = (v: unknown) => (v === undefined || v === null ? "" : String(v));
  switch (field.kind) {
    case "text":
    case "number":
      return (
        <label>
          {field.label}
          <input
            name={field.path}
            value={text(value)}
            inputmode={field.kind === "number" ? "decimal" : undefined}
            {...invalid}
          />
        </label>
      );
    case "textarea":
      return (
        <label>
          {field.label}
          <textarea name={field.path} rows={3} {...invalid}>{text(value)}</textarea>
        </label>
      );
    case "enum":
      return (
        <label>
          {field.label}
          <select name={field.path} {...invalid}>
            {field.options.map((o) => <option value={o} selected={o === value}>{o}</option>)}
          </select>
        </label>
      );
    case "lines":
      return (
        <label>
          {field.label}
          <textarea name={field.path} rows={4} {...invalid}>
            {Array.isArray(value) ? value.join("\n") : ""}
          </textarea>
        </label>
      );
    case "csv":
      return (
        <label>
          {field.label}
          <input name={field.path} value={Array.isArray(value) ? value.join(", ") : ""} {...invalid} />
        </label>
      );
    case "table": {
      const rows = Array.isArray(value) ? value as Record<string, unknown>[] : [];
      const count = rows.length + 2;
      return (
        <fieldset class="table-field" {...invalid}>
          <legend>{field.label}</legend>
          <p class="muted">Clear a row to remove it; fill a blank row to add one.</p>
          <input type="hidden" name={`${field.path}.rows`} value={String(count)} />
          <div class="table-scroll">
            <table>
              <thead>
                <tr>{field.columns.map((c) => <th scope="col">{c.label}</th>)}</tr>
              </thead>
              <tbody>
                {Array.from({ length: count }, (_, i) => (
                  <tr>
                    {field.columns.map((column) => (
                      <td>
                        <CellInput
                          name={`${field.path}.${i}.${column.key}`}
                          label={`${column.label}, row ${i + 1}`}
                          column={column}
                          value={rows[i]?.[column.key]}
                        />
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </fieldset>
      );
    }
    case "vitals": {
      const v = (value ?? {}) as Record<string, { value?: number; unit?: string; on?: string } | undefined>;
      const bp = (value as { bloodPressure?: { systolic: number; diastolic: number } } | undefined)
        ?.bloodPressure;
      return (
        <fieldset class="vitals-field" {...invalid}>
          <legend>{field.label} (leave a value empty if not measured)</legend>
          <label>
            Blood pressure, systolic (mmHg)
            <input name="vitalSigns.bloodPressure.systolic" inputmode="decimal" value={text(bp?.systolic)} />
          </label>
          <label>
            Blood pressure, diastolic (mmHg)
            <input
              name="vitalSigns.bloodPressure.diastolic"
              inputmode="decimal"
              value={text(bp?.diastolic)}
            />
          </label>
          {VITAL_UNITS.map(([key, label, units]) => (
            <div class="vital-row">
              <label>
                {label}
                <input name={`vitalSigns.${key}.value`} inputmode="decimal" value={text(v[key]?.value)} />
              </label>
              <label>
                Unit
                <select name={`vitalSigns.${key}.unit`}>
                  {units.map((u) => <option value={u} selected={u === v[key]?.unit}>{u}</option>)}
                </select>
              </label>
              {key === "oxygenSaturation" && (
                <label>
                  On
                  <input
                    name="vitalSigns.oxygenSaturation.on"
                    value={text(v[key]?.on)}
                    placeholder="room air"
                  />
                </label>
              )}
            </div>
          ))}
        </fieldset>
      );
    }
  }
}

function CellInput(props: { name: string; label: string; column: Column; value: unknown }) {
  const { column, value } = props;
  const text = Array.isArray(value)
    ? value.join(", ")
    : value === undefined || value === null
    ? ""
    : String(value);
  if (column.kind === "enum") {
    return (
      <select name={props.name} aria-label={props.label}>
        <option value=""></option>
        {column.options!.map((o) => <option value={o} selected={o === value}>{o}</option>)}
      </select>
    );
  }
  if (column.kind === "textarea") {
    return <textarea name={props.name} aria-label={props.label} rows={2}>{text}</textarea>;
  }
  return <input name={props.name} aria-label={props.label} value={text} />;
}

function Pairs(props: { rows: [string, string][] }) {
  return (
    <dl class="pairs">
      {props.rows.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
    </dl>
  );
}

function ActorScript(props: { c: Case }) {
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
      <div class="table-scroll">
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

function Checklist(props: { c: Case }) {
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
      <h2 id="history-heading">History</h2>
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
          </li>
        ))}
      </ol>
    </section>
  );
}

function formatWhen(date: Date): string {
  return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
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

/** What the new-case form holds, and its problems by field. */
export interface NewCaseForm {
  values: {
    specialty: string;
    difficulty: string;
    level: string;
    setting: string;
    focus: string;
    inspiredBy: string;
  };
  errors: Partial<Record<"specialty" | "difficulty" | "level" | "setting" | "focus" | "inspiredBy", string>>;
  /** The snippet the case is inspired by, when one was chosen. */
  inspiration: { id: string; label: string } | null;
  /** Why cases cannot be generated now (no model configured), or null. */
  unavailable: string | null;
  /** Why generated cases may fail validation with this model server (no output constraint), or null. */
  warning?: string | null;
}

/** GET /cases/new */
export function newCasePage(page: PageContext, form: NewCaseForm): string {
  return renderPage(
    page,
    "New case",
    <div class="cases">
      <p class="breadcrumbs">
        <a href="/cases">← Case library</a>
      </p>
      <h1>Generate a hypothetical case</h1>
      <p class="lead">
        The model writes a structured case; Rounds validates it and checks it for clinical consistency before
        saving. Review every generated case before teaching with it.
      </p>
      {form.unavailable && <p class="notice" role="note">{form.unavailable}</p>}
      {form.warning && <p class="notice warning" role="note">{form.warning}</p>}
      <NewCaseFormView form={form} />
      <div id="generation-status" aria-live="polite"></div>
      <p class="generation-cancel">
        <button type="button" id="cancel-generation" class="secondary" hidden>
          Cancel generation
        </button>
      </p>
    </div>,
  );
}

function NewCaseFormView(props: { form: NewCaseForm }) {
  const { values, errors } = props.form;
  const error = (field: keyof NewCaseForm["errors"]) =>
    errors[field] ? <span class="field-error" id={`${field}-error`}>{errors[field]}</span> : null;
  const invalid = (field: keyof NewCaseForm["errors"]) =>
    errors[field] ? { "aria-invalid": "true", "aria-describedby": `${field}-error` } : {};
  return (
    <form
      id="new-case"
      class="case-form"
      method="post"
      action="/cases"
      hx-post="/cases"
      hx-target="#generation-status"
      hx-swap="innerHTML"
      hx-sse:close="done"
      hx-disable="find button"
      {...{
        "hx-status:4xx": "target:#new-case swap:outerHTML",
        "hx-status:5xx": "target:#generation-status swap:innerHTML",
      }}
    >
      <CsrfField />
      <label>
        Specialty
        <input name="specialty" required maxlength={80} value={values.specialty} {...invalid("specialty")} />
        {error("specialty")}
      </label>
      <label>
        Setting
        <input
          name="setting"
          required
          maxlength={120}
          value={values.setting}
          placeholder="e.g. emergency department, general practice"
          {...invalid("setting")}
        />
        {error("setting")}
      </label>
      <label>
        Difficulty
        <select name="difficulty" {...invalid("difficulty")}>
          {DIFFICULTIES.map((d) => <option value={d} selected={d === values.difficulty}>{d}</option>)}
        </select>
        {error("difficulty")}
      </label>
      <label>
        Learner level
        <select name="level" {...invalid("level")}>
          {LEARNER_LEVELS.map((l) => <option value={l} selected={l === values.level}>{l}</option>)}
        </select>
        {error("level")}
      </label>
      <label class="wide">
        Focus or learning objectives (optional)
        <textarea name="focus" rows={3} maxlength={1000} {...invalid("focus")}>{values.focus}</textarea>
        {error("focus")}
      </label>
      {props.form.inspiration
        ? (
          <p class="wide">
            Inspired by <a href={`/snippets/${props.form.inspiration.id}`}>{props.form.inspiration.label}</a>
            <input type="hidden" name="inspired_by" value={props.form.inspiration.id} />
          </p>
        )
        : values.inspiredBy && error("inspiredBy")}
      <button type="submit" class="wide" disabled={props.form.unavailable !== null}>Generate the case</button>
    </form>
  );
}

/** The form again, with its problems (the 422 answer to a bad POST /cases). */
export function newCaseFormFragment(form: NewCaseForm): string {
  return String(<NewCaseFormView form={form} />);
}

/** Progress while the model writes (one SSE message each). */
export function generationProgressFragment(p: GenerationProgress): string {
  return String(
    <div class="generation-progress">
      <p>
        Writing the case{p.attempt > 1 ? ` (attempt ${p.attempt} of ${p.maxAttempts})` : ""}: {p.sections} of
        {" "}
        {p.sectionsTotal} sections begun, {p.characters.toLocaleString("en")} characters.
      </p>
      <progress max={p.sectionsTotal} value={p.sections}>{p.sections} of {p.sectionsTotal}</progress>
      {p.waiting && <p class="muted">{p.waiting}</p>}
      {p.retryReason && (
        <p class="muted">The previous attempt was rejected ({p.retryReason}); trying again.</p>
      )}
    </div>,
  );
}

/** The generation's end: a link to the saved case (app.js opens it), or what went wrong. */
export function generationResultFragment(
  result: { ok: true; id: string; title: string; warnings: number } | {
    ok: false;
    message: string;
    errors: FieldError[];
  },
): string {
  if (result.ok) {
    return String(
      <div class="generation-done" role="status">
        <p>
          Saved: <a href={`/cases/${result.id}`} data-open-case>{result.title}</a>
          {result.warnings > 0 && ` (${plural(result.warnings, "warning")} to review)`}.
        </p>
      </div>,
    );
  }
  return String(
    <div class="form-error generation-failed" role="alert">
      <p>
        <strong>The case was not generated.</strong> {result.message}
      </p>
      {result.errors.length > 0 && (
        <ul class="field-errors">
          {result.errors.slice(0, 20).map((e) => (
            <li>
              {e.path.startsWith("(") ? e.message : (
                <>
                  <code>{e.path}</code>: {e.message}
                </>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>,
  );
}

/** A whole page for a generation that failed without htmx. */
export function generationFailedPage(page: PageContext, message: string, errors: FieldError[]): string {
  return renderPage(
    page,
    "Case not generated",
    <div class="cases">
      <p class="breadcrumbs">
        <a href="/cases/new">← New case</a>
      </p>
      <h1>The case was not generated</h1>
      {raw(generationResultFragment({ ok: false, message, errors }))}
    </div>,
  );
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
        notice={`Saved as version ${props.version}.`}
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

/** A section's form alone, for htmx, or inside a page without it. */
export function sectionEditorFragment(
  props: { c: unknown; caseId: string; section: EditSection; errors: FieldError[]; version: number },
): string {
  return String(<SectionEditor {...props} />);
}

/** GET /cases/:id/sections/:name/edit without htmx. */
export function sectionEditorPage(
  page: PageContext,
  props: {
    c: unknown;
    title: string;
    caseId: string;
    section: EditSection;
    errors: FieldError[];
    version: number;
  },
): string {
  return renderPage(
    page,
    `Edit ${props.section.title.toLowerCase()} · ${props.title}`,
    <div class="cases">
      <p class="breadcrumbs">
        <a href={`/cases/${props.caseId}`}>← {props.title}</a>
      </p>
      <Hypothetical />
      <SectionEditor {...props} />
    </div>,
  );
}
