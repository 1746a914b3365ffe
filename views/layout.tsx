/**
 * The page layout: head with vendored htmx 4 and hx-sse, navigation, footer disclaimer.
 */
import type { Child } from "hono/jsx";
import { CsrfField } from "./csrf.tsx";
import type { PageContext } from "./page.ts";

/**
 * htmx settings: no injected indicator styles (the CSP allows only our stylesheet), only the SSE extension,
 * requests to this origin only. htmx 4 keeps no history snapshots in storage, so no patient text reaches
 * localStorage; the CSP (no unsafe-eval) switches off hx-on and other evaluated attributes.
 */
const HTMX_CONFIG = JSON.stringify({ includeIndicatorCSS: false, extensions: "sse", mode: "same-origin" });

const ROLE_LABELS = { clinician: "Clinician", educator: "Educator", admin: "Admin" } as const;

const NAV = [
  { href: "/", label: "Chat" },
  { href: "/knowledge", label: "Knowledge" },
  { href: "/cases", label: "Cases" },
];

/** Renders a whole HTML document around a page body. */
export function renderPage(page: PageContext, title: string, body: Child): string {
  return "<!doctype html>" + String(<Layout page={page} title={title}>{body}</Layout>);
}

function Layout(props: { page: PageContext; title: string; children: Child }) {
  const { page } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        {page.csrf ? <meta name="csrf-token" content={page.csrf} /> : null}
        <title>{props.title} · Rounds</title>
        <link rel="icon" type="image/svg+xml" href={page.assets.url("favicon.svg")} />
        <link rel="stylesheet" href={page.assets.url("app.css")} />
        <script src={page.assets.url("vendor/htmx-4.0.1.min.js")} nonce={page.nonce} defer></script>
        <script src={page.assets.url("vendor/hx-sse-4.0.1.min.js")} nonce={page.nonce} defer></script>
        <script src={page.assets.url("app.js")} nonce={page.nonce} defer></script>
      </head>
      <body data-user={page.user?.id}>
        <a class="skip-link" href="#main">Skip to content</a>
        {/^\/sessions\/[^/]+$/.test(page.path) && (
          <a class="skip-link" href="#composer-input">Skip to the question box</a>
        )}
        <header class="topbar">
          <a class="brand" href="/">Rounds</a>
          {page.user
            ? (
              <>
                <nav aria-label="Main">
                  {[...NAV, ...(page.user.role === "admin" ? [{ href: "/admin", label: "Admin" }] : [])].map((
                    item,
                  ) => (
                    <a
                      href={item.href}
                      aria-current={page.path === item.href ||
                          (item.href !== "/" && page.path.startsWith(`${item.href}/`))
                        ? "page"
                        : undefined}
                    >
                      {item.label}
                    </a>
                  ))}
                </nav>
                <form method="post" action="/logout" class="account">
                  <CsrfField />
                  <span class="who" title={page.user.email}>
                    {page.user.name ?? page.user.email} <small>{ROLE_LABELS[page.user.role]}</small>
                  </span>
                  <button type="submit" class="link-button">Sign out</button>
                </form>
              </>
            )
            : null}
        </header>
        <main id="main">{props.children}</main>
        <footer class="site-footer">
          Rounds supports clinicians; it does not replace clinical judgement. Model output and retrieved text
          can be wrong: verify before acting on them.
        </footer>
      </body>
    </html>
  );
}
