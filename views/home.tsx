/**
 * The home page.
 */
import type { PageContext } from "./page.ts";
import { renderPage } from "./layout.tsx";

/** What the home page says about the running system. */
export interface SystemSummary {
  database: string;
  /** Endpoint and template, or null when no model is configured. */
  inference: string | null;
  embeddings: string;
}

/** The home page. */
export function homePage(page: PageContext, system: SystemSummary): string {
  return renderPage(
    page,
    "Home",
    <section class="home">
      <h1>Rounds</h1>
      <p class="lead">
        A clinician assistant and teaching-case studio: ask clinical questions and read answers grounded in
        cited dialogue and literature snippets, and build hypothetical patient cases for teaching.
      </p>
      <h2>This installation</h2>
      <dl class="facts">
        <dt>Database</dt>
        <dd>{system.database}</dd>
        <dt>Model</dt>
        <dd>
          {system.inference ?? (
            <>
              Not configured. Set <code>INFERENCE_URL</code> (a TGI, vLLM, llama.cpp or Ollama server) or{" "}
              <code>MODEL</code> with <code>HF_TOKEN</code>, then restart.
            </>
          )}
        </dd>
        <dt>Embeddings</dt>
        <dd>{system.embeddings}</dd>
      </dl>
    </section>,
  );
}
