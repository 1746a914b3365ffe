/**
 * GET /cases/new and the generation that follows: the form, progress while the model writes, and its end.
 */
import { raw } from "hono/html";
import { CsrfField } from "../csrf.tsx";
import type { GenerationProgress } from "../../cases/generate.ts";
import { DIFFICULTIES, type FieldError, LEARNER_LEVELS } from "../../cases/schema.ts";
import { renderPage } from "../layout.tsx";
import type { PageContext } from "../page.ts";
import type { NewCaseErrors, NewCaseValues } from "../../cases/new_case_form.ts";
import { plural } from "./common.tsx";

/** What the new-case form holds, and its problems by field. */
export interface NewCaseForm {
  values: NewCaseValues;
  errors: NewCaseErrors;
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
      {form.unavailable && <p class="notice warning" role="note">{form.unavailable}</p>}
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
