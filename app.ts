/**
 * createApp(deps): the Hono application, with middleware, route groups and error mapping.
 * No I/O happens on import; everything the app touches arrives in deps.
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import type { Config } from "./config.ts";
import { EMBEDDING_DIMENSIONS } from "./db/schema.ts";
import type { Database } from "./db/client.ts";
import type { InferenceStatus } from "./inference/health.ts";
import type { Lifecycle } from "./lifecycle.ts";
import { healthRoutes } from "./routes/health.ts";
import { pageRoutes } from "./routes/pages.ts";
import { type AssetStore, staticRoutes } from "./routes/static.ts";
import { ErrorMessage, errorPage } from "./views/errors.tsx";
import type { SystemSummary } from "./views/home.tsx";
import type { PageContext } from "./views/page.ts";

/** Everything the application needs from the outside world. */
export interface AppDeps {
  config: Readonly<Config>;
  database: Database;
  lifecycle: Lifecycle;
  assets: AssetStore;
  inferenceStatus: () => Promise<InferenceStatus>;
  /** Log one line per request (method, path, status, time); never bodies. */
  logRequests?: boolean;
}

const ERROR_TITLES: Record<number, string> = {
  400: "Bad request",
  403: "Not allowed",
  404: "Not found",
  405: "Method not allowed",
  413: "Too large",
  415: "Unsupported content type",
  422: "Invalid input",
  429: "Too many requests",
  503: "Temporarily unavailable",
};

/** Builds the application. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const pageContext = (path: string): PageContext => ({ assets: deps.assets, path });

  if (deps.logRequests) {
    app.use(async (c, next) => {
      const started = performance.now();
      await next();
      const ms = (performance.now() - started).toFixed(1);
      console.log(`${c.req.method} ${c.req.path} ${c.res.status} ${ms}ms`);
    });
  }
  app.use(secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", "data:"],
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
      objectSrc: ["'none'"],
    },
    referrerPolicy: "same-origin",
  }));

  app.route("/", staticRoutes(deps.assets));
  app.route("/", healthRoutes(deps));
  app.route("/", pageRoutes({ system: describeSystem(deps.config, deps.database), pageContext }));

  app.notFound((c) => {
    const props = { status: 404, title: "Not found", detail: `There is nothing at ${c.req.path}.` };
    return c.html(
      c.req.header("hx-request") ? String(ErrorMessage(props)) : errorPage(pageContext(c.req.path), props),
      404,
    );
  });

  app.onError((error, c) => {
    let status = 500;
    let detail = "Something went wrong on our side. The error has been logged; please try again.";
    if (error instanceof HTTPException) {
      status = error.status;
      detail = error.message || ERROR_TITLES[status] || detail;
    } else {
      // Log the error and where it happened, never request bodies (they can hold patient details).
      console.error(`${c.req.method} ${c.req.path} failed:`, error);
    }
    const props = { status, title: ERROR_TITLES[status] ?? "Server error", detail };
    const body = c.req.header("hx-request")
      ? String(ErrorMessage(props))
      : errorPage(pageContext(c.req.path), props);
    return c.html(body, status as 500);
  });

  return app;
}

/** One line per subsystem, for the start-up log and the home page. */
export function describeSystem(
  config: Readonly<Config>,
  database: Pick<Database, "description">,
): SystemSummary {
  const inference = config.inference;
  let model: string | null = null;
  if (inference?.url) {
    model = `${inference.url} (${inference.template}${inference.model ? `, ${inference.model}` : ""})`;
  } else if (inference?.model) model = `Hugging Face Inference Providers (${inference.model}, chat)`;
  else if (config.modelsFile) model = `models from ${config.modelsFile}`;
  const embeddings = config.embeddingUrl
    ? `${config.embeddingUrl}${config.embeddingModel ? ` (${config.embeddingModel})` : ""}`
    : `built-in lexical embedder (feature hashing, ${EMBEDDING_DIMENSIONS} dimensions, offline)`;
  return { database: database.description, inference: model, embeddings };
}
