/**
 * createApp(deps): the Hono application, with middleware, route groups and error mapping.
 * No I/O happens on import; everything the app touches arrives in deps.
 */
import { createModelCallLimiter } from "./routes/model_calls.ts";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Context } from "hono";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { Config } from "./config.ts";
import { EMBEDDING_DIMENSIONS } from "./db/schema.ts";
import { type Database, loggable } from "./db/client.ts";
import type { InferenceStatus } from "./inference/health.ts";
import type { ModelRegistry } from "./inference/models.ts";
import type { GenerationRunner } from "./inference/runner.ts";
import type { KnowledgeSettings } from "./knowledge/retrieve.ts";
import type { Lifecycle } from "./lifecycle.ts";
import { healthRoutes } from "./routes/health.ts";
import { bodyDeadline, inputHygiene } from "./routes/hygiene.ts";
import { ssoRoutes } from "./routes/sso.ts";
import { adminRoutes } from "./routes/admin.ts";
import { DEFAULT_SYSTEM_PROMPT } from "./inference/templates.ts";
import { createGuards } from "./routes/guards.ts";
import {
  authRoutes,
  checkOrigin,
  createStreamGuard,
  requireSignIn,
  type StreamGuard,
} from "./routes/auth.ts";
import type { ScryptCost } from "./safety/passwords.ts";
import { knowledgeRoutes } from "./routes/knowledge.ts";
import { admitUploads, documentRoutes, UPLOAD_PATH } from "./routes/documents.ts";
import type { DocumentQueue } from "./knowledge/documents.ts";
import { caseRoutes } from "./routes/cases.ts";
import type { RetryLimits } from "./inference/completion.ts";
import { practiceRoutes } from "./routes/practice.ts";
import { type ChatDeps, chatRoutes } from "./routes/chats.ts";
import { type AssetStore, staticRoutes } from "./routes/static.ts";
import { MAX_BODY_BYTES } from "./safety/limits.ts";
import { ErrorMessage, errorPage } from "./views/errors.tsx";
import type { PageContext } from "./views/page.ts";
import { fillCsrfToken } from "./views/csrf.tsx";

/** One line per subsystem, for the start-up log. */
export interface SystemSummary {
  database: string;
  /** Endpoint and template, or null when no model is configured. */
  inference: string | null;
  embeddings: string;
}

/** Everything the application needs from the outside world. */
export interface AppDeps {
  config: Readonly<Config>;
  database: Database;
  lifecycle: Lifecycle;
  assets: AssetStore;
  inferenceStatus: () => Promise<InferenceStatus>;
  models: ModelRegistry;
  runner: GenerationRunner;
  /** The embedder and retrieval settings answers and the knowledge page use. */
  knowledge: KnowledgeSettings;
  /** Log one line per request (method, path, status, time); never bodies. */
  logRequests?: boolean;
  /** Ends revoked users' streams; one per app by default. */
  streamGuard?: StreamGuard;
  /** scrypt cost for new passwords (tests lower it; stored hashes carry their own). */
  passwordCost?: ScryptCost;
  /** How long case generation waits on a busy or waking model server (tests shorten it). */
  retry?: Partial<RetryLimits>;
  /** Reads uploaded documents into the knowledge base in the background. */
  documents: DocumentQueue;
  /** Begins an answer while its message is stored (chat/answer.ts:beginAnswer). */
  beginAnswer?: ChatDeps["beginAnswer"];
}

const ERROR_TITLES: Record<number, string> = {
  400: "Bad request",
  401: "Sign in needed",
  403: "Not allowed",
  404: "Not found",
  405: "Method not allowed",
  413: "Too large",
  415: "Unsupported content type",
  422: "Invalid input",
  408: "Request too slow",
  429: "Too many requests",
  503: "Temporarily unavailable",
};

/** Builds the application. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const db = deps.database.db;
  const security = deps.config.security;
  const guard = deps.streamGuard ?? createStreamGuard(db);
  const pageContext = (c: Context, path?: string): PageContext => {
    const auth = c.get("auth");
    return {
      assets: deps.assets,
      path: path ?? c.req.path,
      user: auth?.user ?? null,
      csrf: auth?.csrfToken,
      nonce: c.get("secureHeadersNonce") as string | undefined,
    };
  };
  // Each route group attaches these to the routes they protect (routes/guards.ts).
  const guards = createGuards({ db, trustProxy: security.trustProxy });

  // Views leave a placeholder where the anti-forgery token goes (views/csrf.tsx); whole HTML responses get the
  // request's token here. Event streams are left alone: they only run under htmx, which sends the header.
  app.use(async (c, next) => {
    await next();
    if (!c.res.headers.get("content-type")?.startsWith("text/html") || !c.res.body) return;
    const html = await c.res.text();
    const token = c.get("auth")?.csrfToken ?? c.get("loginCsrf");
    const headers = new Headers(c.res.headers);
    headers.delete("content-length");
    c.res = new Response(fillCsrfToken(html, token), { status: c.res.status, headers });
  });

  // Every request gets an id: sent back as X-Request-Id, written with its log line and audit entry, and shown
  // on error pages, so a clinician's "it failed at 10:42" can be found.
  app.use(async (c, next) => {
    const given = c.req.header("x-request-id");
    // Only a trusted proxy's id is kept (TRUST_PROXY): anyone else could tag their requests with an id read
    // off someone's error page, and mix their entries into that id's audit trail.
    const trusted = security.trustProxy > 0 && given && /^[\w.:-]{8,64}$/.test(given);
    c.set("requestId", trusted ? given : crypto.randomUUID());
    await next();
    c.header("x-request-id", c.get("requestId"));
  });
  if (deps.logRequests) {
    const json = deps.config.logFormat === "json";
    app.use(async (c, next) => {
      const started = performance.now();
      await next();
      const ms = Number((performance.now() - started).toFixed(1));
      // The path as sent (still percent-encoded), with any raw control character escaped: a %0A cannot forge a
      // log line, nor %1B[ drive a terminal. Never a body or a query string: they can hold patient details.
      const path = new URL(c.req.url).pathname.replace(
        // deno-lint-ignore no-control-regex -- control characters are exactly what must not reach the log
        /[\u0000-\u001f\u007f-\u009f]/g,
        (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`,
      );
      const id = c.get("requestId");
      if (!json) return console.log(`${c.req.method} ${path} ${c.res.status} ${ms}ms ${id}`);
      const user = c.get("auth")?.user.id;
      console.log(JSON.stringify({
        time: new Date().toISOString(),
        level: c.res.status >= 500 ? "error" : "info",
        msg: "request",
        method: c.req.method,
        path,
        status: c.res.status,
        ms,
        request_id: id,
        ...(user ? { user_id: user } : {}),
      }));
    });
  }
  app.use(secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: [NONCE],
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

  // An upload's body is larger and slower than any other: read only once its sender may upload.
  app.use(admitUploads({
    db,
    sessionIdleMs: security.sessionIdleMs,
    trustProxy: security.trustProxy,
    maxBytes: deps.config.uploadMaxBytes,
    uploaders: deps.config.uploaders,
  }));
  // The body is read here, whole, within its size and in time (a slow or stalled sender gets 408).
  app.use(bodyDeadline({
    skip: (c) => c.req.method === "POST" && c.req.path === UPLOAD_PATH,
    maxBytes: MAX_BODY_BYTES,
    tooLarge: () => {
      throw new HTTPException(413, {
        message: `The request is larger than ${
          MAX_BODY_BYTES / 1024
        } KB, the most Rounds accepts. Nothing was saved.`,
      });
    },
  }));
  app.use(inputHygiene());

  // Public: assets, the health check, sign-in. Everything after requireSignIn needs a session.
  app.route("/", staticRoutes(deps.assets));
  app.route("/", healthRoutes(deps));
  app.use(checkOrigin(security.trustProxy));
  const auth = {
    db,
    security,
    guard,
    pageContext,
    passwordCost: deps.passwordCost,
    ssoLabel: deps.config.oidc?.label ?? null,
  };
  app.route("/", authRoutes(auth));
  if (deps.config.oidc) app.route("/", ssoRoutes({ ...auth, oidc: deps.config.oidc }));
  app.use(requireSignIn(auth));

  // Case generation and debriefs share the chat's per-user limits (and the replies being written, theirs).
  const modelCalls = createModelCallLimiter(db, security);
  app.route(
    "/",
    chatRoutes({
      db,
      runner: deps.runner,
      models: deps.models,
      lifecycle: deps.lifecycle,
      pageContext,
      guard,
      guards,
      security,
      modelCalls,
      beginAnswer: deps.beginAnswer,
    }),
  );
  app.route("/", knowledgeRoutes({ db, knowledge: deps.knowledge, pageContext }));
  app.route(
    "/",
    documentRoutes({
      db,
      queue: deps.documents,
      guards,
      guard,
      pageContext,
      maxBytes: deps.config.uploadMaxBytes,
      uploaders: deps.config.uploaders,
    }),
  );

  app.route(
    "/",
    caseRoutes({
      db,
      knowledge: deps.knowledge,
      models: deps.models,
      lifecycle: deps.lifecycle,
      pageContext,
      guard,
      guards,
      redactPhi: security.phiRedaction !== "off",
      retry: deps.retry,
      modelCalls,
    }),
  );
  app.route(
    "/",
    practiceRoutes({
      db,
      models: deps.models,
      lifecycle: deps.lifecycle,
      pageContext,
      guards,
      redactPhi: security.phiRedaction !== "off",
      modelCalls,
    }),
  );
  app.route(
    "/",
    adminRoutes({
      db,
      guard,
      guards,
      pageContext,
      passwordCost: deps.passwordCost,
      models: deps.models,
      systemPrompt: deps.config.systemPrompt ?? DEFAULT_SYSTEM_PROMPT,
    }),
  );

  app.notFound((c) => {
    const props = {
      status: 404,
      title: "Not found",
      detail: `There is nothing at ${c.req.path}.`,
      reference: c.get("requestId"),
    };
    return c.html(
      c.req.header("hx-request") ? String(ErrorMessage(props)) : errorPage(pageContext(c), props),
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
      // A failed statement's values (message text, names) are left out (db/client.ts:loggable), and the path
      // loses control characters, as in the request log.
      const safe = loggable(error);
      const path = c.req.path.replace(
        // deno-lint-ignore no-control-regex -- control characters are exactly what must not reach the log
        /[\u0000-\u001f\u007f-\u009f]/g,
        (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`,
      );
      if (deps.config.logFormat === "json") {
        console.error(JSON.stringify({
          time: new Date().toISOString(),
          level: "error",
          msg: "request failed",
          method: c.req.method,
          path,
          request_id: c.get("requestId"),
          error: safe instanceof Error ? `${safe.name}: ${safe.message}` : String(safe),
          stack: safe instanceof Error ? safe.stack : undefined,
        }));
      } else console.error(`${c.req.method} ${path} failed (request ${c.get("requestId")}):`, safe);
    }
    const props = {
      status,
      title: ERROR_TITLES[status] ?? "Server error",
      detail,
      reference: c.get("requestId"),
    };
    const body = c.req.header("hx-request") ? String(ErrorMessage(props)) : errorPage(pageContext(c), props);
    return c.html(body, status as 500);
  });

  return app;
}

/** One line per subsystem, for the start-up log. */
export function describeSystem(
  config: Readonly<Config>,
  database: Pick<Database, "description">,
  models: ModelRegistry,
  embedder?: { description: string },
): SystemSummary {
  const described = models.list().map((m) =>
    `${m.target.url ?? "Hugging Face Inference Providers"} (${m.id}: ${m.templateName}` +
    `${m.target.model ? `, ${m.target.model}` : ""}${
      m.target.adapterId ? `, adapter ${m.target.adapterId}` : ""
    })`
  );
  const model = described.length > 0 ? described.join("; ") : null;
  const embeddings = embedder?.description ??
    (config.embeddingUrl
      ? `${config.embeddingUrl}${config.embeddingModel ? ` (${config.embeddingModel})` : ""}`
      : `built-in lexical embedder (feature hashing, ${EMBEDDING_DIMENSIONS} dimensions, offline)`);
  return { database: database.description, inference: model, embeddings };
}
