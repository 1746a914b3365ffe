/**
 * The knowledge page (sources with counts, and a search over the corpus) and the snippet page.
 * Retrieved text is untrusted: it is shown as escaped text only.
 */
import type { Snippet } from "../db/snippets.ts";
import type { RetrievalResult, Retrieved } from "../knowledge/retrieve.ts";
import { citationDetail, citationLabel, isDocumentPassage } from "../knowledge/citation.ts";
import { renderPage } from "./layout.tsx";
import type { PageContext } from "./page.ts";

/** A source and its snippet count per specialty. */
export interface SourceSummary {
  source: string;
  total: number;
  specialties: { specialty: string | null; count: number }[];
}

/** What the knowledge search form was given. */
export interface KnowledgeQuery {
  q: string;
  source: string;
  specialty: string;
  k: number;
}

/** What the knowledge page shows. */
export interface KnowledgeView {
  sources: SourceSummary[];
  specialties: string[];
  embedder: string;
  minScore: number;
  query: KnowledgeQuery;
  result: RetrievalResult | null;
  /** A problem with the query, shown next to the form. */
  error: string | null;
}

/** GET /knowledge */
export function knowledgePage(page: PageContext, view: KnowledgeView): string {
  const total = view.sources.reduce((n, s) => n + s.total, 0);
  return renderPage(
    page,
    "Knowledge base",
    <div class="knowledge">
      <section>
        <h1>Knowledge base</h1>
        <p class="lead">
          Answers are grounded in these snippets: the closest are quoted to the model and listed under each
          reply as numbered sources, ordered by combined meaning and word match. They are retrieved text, not
          verified facts.
        </p>
        <p class="muted">
          {total.toLocaleString("en")} snippets from {view.sources.length} source
          {view.sources.length === 1 ? "" : "s"}
          {page.user?.role === "admin" &&
            ` · embeddings: ${view.embedder} · minimum similarity ${view.minScore.toFixed(2)}`}
        </p>
        <p>
          <a href="/knowledge/documents">Documents</a>: the clinic's own guidelines, protocols and datasets,
          uploaded from the browser.
        </p>
      </section>
      <section aria-labelledby="search-heading">
        <h2 id="search-heading">Search the corpus</h2>
        <SearchForm view={view} />
        <div id="knowledge-results" aria-live="polite">
          <SearchResults view={view} />
        </div>
      </section>
      <section aria-labelledby="sources-heading">
        <h2 id="sources-heading">Sources</h2>
        {view.sources.length === 0 ? <EmptyKnowledge /> : <SourceTable sources={view.sources} />}
      </section>
    </div>,
  );
}

function EmptyKnowledge() {
  return (
    <div class="empty">
      <p>The knowledge base is empty, so answers are not grounded in any source.</p>
      <p>
        Upload guidelines, protocols or datasets on{" "}
        <a href="/knowledge/documents">Documents</a>, load the sample corpus with{" "}
        <code>deno task ingest data/corpus</code>, or a dataset with{" "}
        <code>deno task ingest path/to/file</code>{" "}
        (MedDialog, HealthCareMagic, iCliniq, MASHQA, MedQuAD, PubMedQA, PubMed XML, CSV, Parquet, PDF, Word).
      </p>
    </div>
  );
}

function SourceTable(props: { sources: SourceSummary[] }) {
  return (
    <div class="table-scroll" tabindex={0} role="region" aria-label="Sources in the knowledge base">
      <table class="sources-table data-table">
        <thead>
          <tr>
            <th scope="col">Source</th>
            <th scope="col" class="num">Snippets</th>
            <th scope="col">Specialties</th>
          </tr>
        </thead>
        <tbody>
          {props.sources.map((s) => (
            <tr>
              <th scope="row">{s.source}</th>
              <td class="num">{s.total.toLocaleString("en")}</td>
              <td>
                {s.specialties.map((sp) => `${sp.specialty ?? "unspecified"} (${sp.count})`).join(", ")}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function SearchForm(props: { view: KnowledgeView }) {
  const { view } = props;
  return (
    <form
      class="knowledge-search"
      action="/knowledge"
      method="get"
      role="search"
      hx-get="/knowledge/search"
      hx-target="#knowledge-results"
      hx-push-url="true"
    >
      <label class="grow">
        Question or words
        <input
          type="search"
          name="q"
          value={view.query.q}
          maxlength={2000}
          placeholder="e.g. dry cough for two weeks after a cold"
          autocomplete="off"
          aria-invalid={view.error ? "true" : undefined}
        />
      </label>
      <label>
        Source
        <select name="source">
          <option value="">All sources</option>
          {view.sources.map((s) => (
            <option value={s.source} selected={s.source === view.query.source}>{s.source}</option>
          ))}
        </select>
      </label>
      <label>
        Specialty
        <select name="specialty">
          <option value="">All specialties</option>
          {view.specialties.map((s) => <option value={s} selected={s === view.query.specialty}>{s}</option>)}
        </select>
      </label>
      <button type="submit">Search</button>
    </form>
  );
}

/** The search results (the fragment the form swaps in). */
export function SearchResults(props: { view: KnowledgeView }) {
  const { view } = props;
  if (view.error) return <p class="form-error" role="alert">{view.error}</p>;
  if (!view.result) return null;
  const { result } = view;
  if (result.evidence === "empty") return <EmptyKnowledge />;
  if (result.results.length === 0) {
    return (
      <p class="empty">
        Nothing in the knowledge base is close enough to “{view.query.q}”
        {result.bestScore !== null &&
          ` (the closest scored ${result.bestScore.toFixed(2)}, below the minimum of ${
            view.minScore.toFixed(2)
          })`}. Try other words or remove the filters.
      </p>
    );
  }
  return (
    <ol class="search-results">
      {result.results.map((r) => <SearchHit hit={r} />)}
    </ol>
  );
}

function SearchHit(props: { hit: Retrieved }) {
  const { snippet, score } = props.hit;
  return (
    <li>
      <a class="hit-title" href={`/snippets/${snippet.id}`}>
        {isDocumentPassage(snippet)
          ? citationLabel(snippet)
          : snippet.title ?? snippet.question ?? snippet.sourceId}
      </a>
      <span class="source-meta">
        {[snippet.source, citationDetail(snippet), snippet.specialty].filter(Boolean).join(" · ")}{" "}
        · similarity {score.toFixed(2)}
      </span>
      <blockquote class="excerpt">{clip(snippet.answer, 320)}</blockquote>
    </li>
  );
}

function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max).replace(/\s+\S*$/, "") + " …" : flat;
}

/** The search results fragment, as a string. */
export function searchResultsFragment(view: KnowledgeView): string {
  return String(<SearchResults view={view} />);
}

/** GET /snippets/<id> */
export function snippetPage(page: PageContext, snippet: Snippet): string {
  const pmid = snippet.sourceId.match(/^PMID:(\d+)/)?.[1];
  return renderPage(
    page,
    `Snippet from ${snippet.source}`,
    <article class="snippet">
      <p class="crumbs">
        <a href="/knowledge">Knowledge base</a> ›{" "}
        {snippet.documentId
          ? <a href={`/knowledge/documents/${snippet.documentId}`}>{snippet.title ?? snippet.source}</a>
          : snippet.source}
      </p>
      <h1>
        {isDocumentPassage(snippet)
          ? citationLabel(snippet)
          : snippet.title ?? snippet.question ?? `${snippet.source} ${snippet.sourceId}`}
      </h1>
      <dl class="snippet-meta">
        <dt>Source</dt>
        <dd>{snippet.source}</dd>
        <dt>{isDocumentPassage(snippet) ? (snippet.page ? "Page" : "Section") : "Id in source"}</dt>
        <dd>{snippet.page ?? snippet.sourceId}</dd>
        {pmid && (
          <>
            <dt>PMID</dt>
            <dd>{pmid}</dd>
          </>
        )}
        {snippet.specialty && (
          <>
            <dt>Specialty</dt>
            <dd>{snippet.specialty}</dd>
          </>
        )}
        {snippet.url && (
          <>
            <dt>Original</dt>
            <dd>
              {/^https?:\/\//.test(snippet.url)
                ? <a href={snippet.url} rel="noopener noreferrer nofollow" target="_blank">{snippet.url}</a>
                : snippet.url}
            </dd>
          </>
        )}
        {page.user?.role === "admin" && (
          <>
            <dt>Embedded by</dt>
            <dd>{snippet.embedder}</dd>
          </>
        )}
      </dl>
      {snippet.question && (
        <section>
          <h2>{snippet.source === "MASHQA" || /mashqa/i.test(snippet.source) ? "Question" : "Patient"}</h2>
          <p class="plain">{snippet.question}</p>
        </section>
      )}
      <section>
        <h2>{snippet.question ? "Answer" : "Text"}</h2>
        <p class="plain">{snippet.answer}</p>
      </section>
      <p class="disclaimer">
        Retrieved text from{" "}
        {snippet.documentId ? "an uploaded document" : "a dataset"}, shown as it was stored: it has not been
        checked by Rounds and may be wrong or out of date.
      </p>
      {page.user?.role !== "clinician" && (
        <p>
          <a class="button" href={`/cases/new?inspired_by=${snippet.id}`}>
            Write a teaching case inspired by this
          </a>
        </p>
      )}
    </article>,
  );
}
