/**
 * Error pages and fragments: what went wrong and what to do about it.
 */
import type { PageContext } from "./page.ts";
import { renderPage } from "./layout.tsx";

/** The part of an error page an htmx request swaps in. */
export function ErrorMessage(props: { status: number; title: string; detail: string; reference?: string }) {
  return (
    <section class="error-panel" role="alert">
      <h1>{props.title}</h1>
      <p>{props.detail}</p>
      <p class="muted">
        HTTP {props.status}
        {props.reference
          ? <>· reference {props.reference} (give it to your administrator if you report this)</>
          : null}
      </p>
    </section>
  );
}

/** A whole error page. */
export function errorPage(
  page: PageContext,
  props: { status: number; title: string; detail: string; reference?: string },
): string {
  return renderPage(
    page,
    props.title,
    <>
      <ErrorMessage {...props} />
      <p>
        <a href="/">Back to Rounds</a>
      </p>
    </>,
  );
}
