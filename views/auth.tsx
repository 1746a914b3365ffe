/**
 * Sign-in and first-run set-up pages.
 */
import { CsrfField } from "./csrf.tsx";
import { renderPage } from "./layout.tsx";
import type { PageContext } from "./page.ts";

/** What the sign-in form shows. */
export interface LoginView {
  email: string;
  /** Where to go after signing in (a path on this site). */
  next: string;
  error?: string;
  notice?: string;
  /** The single sign-on provider's name, when one is configured. */
  sso?: string | null;
}

/** The sign-in page. */
export function loginPage(page: PageContext, view: LoginView): string {
  return renderPage(
    page,
    "Sign in",
    <section class="auth-panel">
      <h1>Sign in to Rounds</h1>
      {view.notice ? <p class="notice" role="status">{view.notice}</p> : null}
      {view.error ? <p class="form-error" role="alert" id="login-error">{view.error}</p> : null}
      <form method="post" action="/login" class="auth-form">
        <CsrfField />
        <input type="hidden" name="next" value={view.next} />
        <label>
          Email
          <input
            type="email"
            name="email"
            value={view.email}
            autocomplete="username"
            required
            autofocus={!view.email}
            aria-describedby={view.error ? "login-error" : undefined}
          />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            autocomplete="current-password"
            required
            autofocus={Boolean(view.email)}
          />
        </label>
        <button type="submit">Sign in</button>
      </form>
      {view.sso
        ? (
          <p class="sso">
            <a class="button" href={`/login/sso?next=${encodeURIComponent(view.next)}`}>
              Sign in with {view.sso}
            </a>
          </p>
        )
        : null}
      <p class="muted">
        No account yet? Ask your Rounds administrator for one.
      </p>
    </section>,
  );
}

/** What the set-up form shows. */
export interface SetupView {
  email: string;
  name: string;
  errors: string[];
}

/** First run: create the first administrator. */
export function setupPage(page: PageContext, view: SetupView): string {
  return renderPage(
    page,
    "Set up Rounds",
    <section class="auth-panel">
      <h1>Set up Rounds</h1>
      <p>
        No one has an account yet. Create the first administrator; they can then add clinicians and educators.
        Sessions and cases already stored here become theirs.
      </p>
      {view.errors.length > 0
        ? (
          <ul class="field-errors" role="alert">
            {view.errors.map((e) => <li>{e}</li>)}
          </ul>
        )
        : null}
      <form method="post" action="/setup" class="auth-form">
        <CsrfField />
        <label>
          Your name
          <input type="text" name="name" value={view.name} autocomplete="name" maxlength={120} />
        </label>
        <label>
          Email
          <input type="email" name="email" value={view.email} autocomplete="username" required />
        </label>
        <label>
          Password <small>(at least 12 characters)</small>
          <input type="password" name="password" autocomplete="new-password" minlength={12} required />
        </label>
        <label>
          Password again
          <input type="password" name="confirm" autocomplete="new-password" minlength={12} required />
        </label>
        <button type="submit">Create the administrator</button>
      </form>
    </section>,
  );
}
