/**
 * GET /cases: the library with search and filters, its results fragment, and the import form with its errors.
 */
import { CsrfField } from "../csrf.tsx";
import { DIFFICULTIES, type FieldError, LEARNER_LEVELS } from "../../cases/schema.ts";
import type { CaseHit } from "../../db/cases.ts";
import { renderPage } from "../layout.tsx";
import type { PageContext } from "../page.ts";
import { FieldErrors, plural, Select } from "./common.tsx";

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
        {view.notice && <p class="notice success" role="status">{view.notice}</p>}
      </section>
      <LibrarySearch view={view} />
      <div id="case-results" aria-live="polite">
        <LibraryResults view={view} />
      </div>
      {writes && <ImportForm errors={[]} />}
    </div>,
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
