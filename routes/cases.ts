/**
 * The case library in the browser: list and search, one case with its history, exports (JSON, Markdown, the
 * printable station pack), import, duplicate, delete, and restoring an old version.
 */
import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { checkCase } from "../cases/consistency.ts";
import { caseMarkdown } from "../cases/export.ts";
import {
  addCase,
  addExampleCases,
  exportCase,
  readExampleCases,
  readImport,
  updateCase,
} from "../cases/library.ts";
import { type Case, DIFFICULTIES, type FieldError, LEARNER_LEVELS, parseCase } from "../cases/schema.ts";
import {
  caseFacets,
  deleteCase,
  freeCaseTitle,
  getCase,
  getVersion,
  listVersions,
  searchCases,
  setCaseShared,
  type StoredVersion,
} from "../db/cases.ts";
import { type Db, loggable } from "../db/client.ts";
import { vectorLiteral } from "../knowledge/embedder.ts";
import type { KnowledgeSettings } from "../knowledge/retrieve.ts";
import { stripControlCharacters } from "../safety/limits.ts";
import {
  caseConstraintWarning,
  type CaseRequest,
  generateCase,
  type GenerationOutcome,
  type GenerationProgress,
} from "../cases/generate.ts";
import { getSnippet } from "../db/snippets.ts";
import type { RetryLimits } from "../inference/completion.ts";
import { EndpointError } from "../inference/endpoint.ts";
import type { ModelRegistry, ModelSpec } from "../inference/models.ts";
import type { Lifecycle } from "../lifecycle.ts";
import { sseResponse } from "./sse.ts";
import { revocableStream, signedInUser, type StreamGuard } from "./auth.ts";
import { CASE_WRITERS, caseRef, type Guards } from "./guards.ts";
import { redactPhi } from "../safety/phi.ts";
import { readNewCaseForm } from "../cases/new_case_form.ts";
import { applySectionForm, type EditSection, editSection } from "../cases/edit.ts";
import {
  importErrorPage,
  libraryPage,
  type LibraryQuery,
  LibraryResults,
  type LibraryView,
} from "../views/cases/library.tsx";
import {
  casePage,
  changesPage,
  deleteConfirmPage,
  sectionFragment,
  sectionSavedFragment,
} from "../views/cases/case.tsx";
import { diffCases } from "../cases/diff.ts";
import { sectionEditorFragment, sectionEditorPage } from "../views/cases/edit.tsx";
import { printPage } from "../views/cases/print.tsx";
import {
  generationFailedPage,
  generationProgressFragment,
  generationResultFragment,
  type NewCaseForm,
  newCaseFormFragment,
  newCasePage,
} from "../views/cases/new.tsx";
import type { PageContext } from "../views/page.ts";
import type { ModelCall, ModelCallLimiter } from "./model_calls.ts";

/** What the case routes need. */
export interface CaseDeps {
  db: Db;
  knowledge: KnowledgeSettings;
  models: ModelRegistry;
  lifecycle: Lifecycle;
  pageContext: (c: Context, path?: string) => PageContext;
  guard: StreamGuard;
  guards: Guards;
  /** Replace identifiers in the free text sent to the model (PHI_REDACTION is not off). */
  redactPhi?: boolean;
  /** How long to wait on a busy or waking model server (tests shorten it). */
  retry?: Partial<RetryLimits>;
  /** The user's limits on model work (a case generation counts as one model call). */
  modelCalls: ModelCallLimiter;
}

const NO_MODEL =
  "No model is configured, so Rounds cannot write new cases. Set INFERENCE_URL (or MODELS_FILE) and restart; " +
  "the example cases, import, export and printing work without one.";

const MAX_QUERY_CHARS = 500;
/** Cosine similarity a case needs to count as a match by meaning. */
const MIN_CASE_SIMILARITY = 0.25;

const NOTICES: Record<string, string> = {
  deleted: "The case was deleted.",
  shared: "Shared: every signed-in user can now read and practise this case.",
  unshared: "No longer shared: only you (and administrators) can see this case.",
  "examples-present": "Every example case is in the library already: nothing was added.",
  imported:
    "Imported as version 1. Only you can see it until you share it; check the consistency flags below.",
  "imported-renamed":
    "Imported as version 1. A case with the same title was already in the library, so this " +
    "one has a number after its title; rename it under Overview if you like.",
};

/** The case routes. */
export function caseRoutes(deps: CaseDeps): Hono {
  const app = new Hono();
  const { db } = deps;
  const { audit, caseFor, role } = deps.guards;
  const educators = role(CASE_WRITERS, "educators");
  const onCase = { type: "case", param: "id" } as const;
  const embedder = deps.knowledge.embedder;
  let exampleCount: number | null = null;

  async function libraryView(c: Context): Promise<LibraryView> {
    const query: LibraryQuery = {
      q: stripControlCharacters(c.req.query("q") ?? "").trim(),
      specialty: c.req.query("specialty")?.trim() ?? "",
      difficulty: oneOf(c.req.query("difficulty"), DIFFICULTIES),
      learnerLevel: oneOf(c.req.query("level"), LEARNER_LEVELS),
      tag: c.req.query("tag")?.trim().toLowerCase() ?? "",
    };
    exampleCount ??= (await readExampleCases()).length;
    const user = signedInUser(c);
    const facets = await caseFacets(db, user.id);
    const added = Number(c.req.query("added"));
    const notice = Number.isInteger(added) && added > 0
      ? `Added ${added} example cases.`
      : NOTICES[c.req.query("done") ?? ""] ?? null;
    const base = { hits: [], facets, query, exampleCount, error: null, notice };
    if (query.q.length > MAX_QUERY_CHARS) {
      return {
        ...base,
        error: `A search can be at most ${MAX_QUERY_CHARS} characters; this one has ${query.q.length}`,
      };
    }
    const embedding = query.q ? vectorLiteral((await embedder.embed([query.q]))[0]) : undefined;
    const hits = await searchCases(db, {
      query: query.q,
      embedding,
      minSimilarity: MIN_CASE_SIMILARITY,
      filters: { ...query, visibleTo: user.id },
      limit: 100,
    });
    return { ...base, hits };
  }

  /** The case at :id with its current version, validated, or a 404. */
  async function load(id: string) {
    const found = await getCase(db, id);
    if (!found) throw notFound();
    return { summary: found.summary, value: stored(found.current) };
  }

  app.get("/cases", async (c) => {
    const view = await libraryView(c);
    // htmx 4 names the target as it found it ("div#case-results").
    if (c.req.header("hx-request") && /(^|#)case-results$/.test(c.req.header("hx-target") ?? "")) {
      return c.html(String(LibraryResults({ view })));
    }
    return c.html(libraryPage(deps.pageContext(c), view));
  });

  /** The new-case form's values from a request, with a problem per field. */
  async function readNewCase(c: Context): Promise<{ form: NewCaseForm; request: CaseRequest | null }> {
    const body = await c.req.parseBody().catch(() => ({} as Record<string, unknown>));
    const field = (name: string) =>
      typeof body[name] === "string" ? stripControlCharacters(body[name]).trim() : "";
    const values = {
      specialty: field("specialty"),
      difficulty: field("difficulty"),
      level: field("level"),
      setting: field("setting"),
      focus: field("focus"),
      inspiredBy: field("inspired_by"),
    };
    const { request, errors } = readNewCaseForm(values);
    const snippet = values.inspiredBy ? await getSnippet(db, values.inspiredBy) : null;
    if (values.inspiredBy && !snippet) errors.inspiredBy = "That knowledge-base snippet no longer exists";
    const form: NewCaseForm = {
      values,
      errors,
      inspiration: snippet ? { id: snippet.id, label: snippetLabel(snippet) } : null,
      unavailable: deps.models.get(null) ? null : NO_MODEL,
    };
    if (!request || Object.keys(errors).length > 0) return { form, request: null };
    return {
      form,
      request: {
        specialty: request.specialty,
        setting: request.setting,
        difficulty: request.difficulty,
        learnerLevel: request.level,
        // Educators describe hypothetical cases, but a real detail can slip in: it does not reach the model.
        focus: deps.redactPhi ? redactPhi(values.focus).text : values.focus,
        inspiration: snippet ? { source: snippet.source, text: snippet.text } : undefined,
      },
    };
  }

  /** What the form says before generation when the server cannot be held to the case format. */
  async function constraintWarning(): Promise<string | null> {
    const spec = deps.models.get(null);
    if (!spec) return null;
    return await caseConstraintWarning(deps.models, spec).catch(() => null);
  }

  app.get("/cases/new", educators, async (c) => {
    const inspiredBy = c.req.query("inspired_by") ?? "";
    const snippet = inspiredBy ? await getSnippet(db, inspiredBy) : null;
    return c.html(newCasePage(deps.pageContext(c), {
      values: {
        specialty: snippet?.specialty ?? "",
        difficulty: "intermediate",
        level: "medical student",
        setting: "",
        focus: "",
        inspiredBy,
      },
      errors: inspiredBy && !snippet ? { inspiredBy: "That knowledge-base snippet no longer exists" } : {},
      inspiration: snippet ? { id: snippet.id, label: snippetLabel(snippet) } : null,
      unavailable: deps.models.get(null) ? null : NO_MODEL,
      warning: await constraintWarning(),
    }));
  });

  app.post("/cases", audit("case.generate", { type: "case" }), educators, async (c) => {
    const { form, request } = await readNewCase(c);
    const htmx = c.req.header("hx-request") === "true";
    if (!request) {
      return htmx
        ? c.html(newCaseFormFragment(form), 422)
        : c.html(newCasePage(deps.pageContext(c, "/cases/new"), form), 422);
    }
    const spec = deps.models.get(null);
    if (!spec) throw new HTTPException(503, { message: NO_MODEL });
    // Up to three model calls: one against the user's limits, every attempt's tokens against the budget.
    const call = await deps.modelCalls.begin(signedInUser(c).id, "generate the case");
    const save = async (outcome: GenerationOutcome) => {
      if (!outcome.ok) return null;
      const attempts = outcome.attempts === 1 ? "" : ` after ${outcome.attempts} attempts`;
      return await addCase(db, embedder, outcome.value, {
        origin: "generated",
        ownerId: signedInUser(c).id,
        note: `Generated by ${spec.label}${attempts}`,
      });
    };
    if (!htmx) {
      const outcome = await generate(spec, request, c.req.raw.signal, call).finally(() => call.end());
      const saved = await save(outcome);
      if (saved) return c.redirect(`/cases/${saved.id}`, 303);
      const failed = outcome as Extract<GenerationOutcome, { ok: false }>;
      return c.html(
        generationFailedPage(deps.pageContext(c, "/cases/new"), failed.message, failed.errors),
        502,
      );
    }
    return sseResponse(c.req.raw, async (sse) => {
      let n = 0;
      const send = (data: string, event?: string) => sse.send({ id: String(++n), data, event });
      try {
        const outcome = await generate(
          spec,
          request,
          sse.signal,
          call,
          (p) => send(generationProgressFragment(p)),
        );
        const saved = await save(outcome);
        send(
          saved
            ? generationResultFragment({
              ok: true,
              id: saved.id,
              title: (outcome as Extract<GenerationOutcome, { ok: true }>).value.title,
              warnings: saved.flags.length,
            })
            : generationResultFragment({
              ok: false,
              message: (outcome as Extract<GenerationOutcome, { ok: false }>).message,
              errors: (outcome as Extract<GenerationOutcome, { ok: false }>).errors,
            }),
        );
      } catch (error) {
        if (sse.signal.aborted) return;
        send(generationResultFragment({ ok: false, message: failureMessage(error), errors: [] }));
      } finally {
        call.end();
        // The result above is an ordinary message (swapped into the page); `done` only tells the form it ended.
        send("", "done");
        sse.close();
      }
    }, revocableStream(c, deps.guard));
  });

  /** Runs a generation as lifecycle work, so a shutdown waits for (or aborts) it. */
  async function generate(
    spec: ModelSpec,
    request: CaseRequest,
    signal: AbortSignal,
    call: ModelCall,
    onProgress?: (p: GenerationProgress) => void,
  ): Promise<GenerationOutcome> {
    return await deps.lifecycle.run(async (shutdown) => {
      const both = AbortSignal.any([signal, shutdown]);
      try {
        return await generateCase(deps.models, spec, request, {
          signal: both,
          onProgress,
          retry: deps.retry,
          onTokens: (tokens) => call.charge(tokens),
        });
      } catch (error) {
        if (both.aborted) throw new Error("The generation was stopped");
        throw error;
      }
    });
  }

  app.post("/cases/examples", audit("case.add_examples", { type: "case" }), educators, async (c) => {
    const added = await addExampleCases(db, embedder);
    return c.redirect(added > 0 ? `/cases?added=${added}` : "/cases?done=examples-present", 303);
  });

  app.post("/cases/import", audit("case.import", { type: "case" }), educators, async (c) => {
    const form = await c.req.parseBody().catch(() => {
      throw new HTTPException(400, {
        message: "The import form could not be read. Choose a file or paste JSON.",
      });
    });
    const file = form.file;
    let text = typeof form.json === "string" ? form.json.trim() : "";
    if (file instanceof File && file.size > 0) text = await file.text();
    if (!text) {
      return c.html(
        importErrorPage(deps.pageContext(c), [{
          path: "(file)",
          message: "Nothing to import: choose a JSON file or paste one",
        }], ""),
        422,
      );
    }
    const result = readImport(text);
    if (!result.ok) return c.html(importErrorPage(deps.pageContext(c), result.errors, text), 422);
    const ownerId = signedInUser(c).id;
    // Two cases that read the same in the library are one too many: a taken title gets a number.
    const title = await freeCaseTitle(db, ownerId, result.value.title);
    const { id } = await addCase(db, embedder, { ...result.value, title }, {
      origin: "imported",
      note: "Imported",
      ownerId,
    });
    return c.redirect(
      `/cases/${id}?done=${title === result.value.title ? "imported" : "imported-renamed"}`,
      303,
    );
  });

  app.get(
    "/cases/:ref",
    audit((c) => caseRef(c.req.param("ref") ?? "").format ? "case.export" : "case.read", {
      type: "case",
      param: "ref",
    }),
    caseFor("read"),
    async (c) => {
      const { id, format } = caseRef(c.req.param("ref"));
      const { summary, value } = await load(id);
      const name = fileName(value.title);
      if (format === "json") {
        c.header("content-disposition", `attachment; filename="${name}.json"`);
        return c.json(exportCase(value));
      }
      if (format === "md") {
        c.header("content-type", "text/markdown; charset=utf-8");
        c.header("content-disposition", `attachment; filename="${name}.md"`);
        return c.body(caseMarkdown(value));
      }
      const notice = c.req.query("restored")
        ? `Restored version ${c.req.query("restored")} as the new current version.`
        : c.req.query("duplicated") !== undefined
        ? "This is a copy: edits here leave the original unchanged."
        : NOTICES[c.req.query("done") ?? ""] ?? null;
      return c.html(casePage(deps.pageContext(c), {
        summary,
        value,
        flags: checkCase(value),
        version: summary.currentVersion,
        versions: await listVersions(db, id),
        notice,
      }));
    },
  );

  app.get("/cases/:id/print", audit("case.export", onCase), caseFor("read"), async (c) => {
    const { value } = await load(c.req.param("id"));
    return c.html(printPage(deps.pageContext(c), value));
  });

  app.get("/cases/:id/versions/:version", audit("case.read_version", onCase), caseFor("read"), async (c) => {
    const id = c.req.param("id");
    const found = await getCase(db, id);
    const version = await getVersion(db, id, Number(c.req.param("version")));
    if (!found || !version) throw notFound("That version of the case does not exist.");
    const value = stored(version);
    return c.html(casePage(deps.pageContext(c), {
      summary: found.summary,
      value,
      flags: checkCase(value),
      version: version.version,
      versions: await listVersions(db, id),
      notice: null,
    }));
  });

  app.get(
    "/cases/:id/versions/:version/changes",
    audit("case.read_version", onCase),
    caseFor("read"),
    async (c) => {
      const id = c.req.param("id");
      const found = await getCase(db, id);
      const n = Number(c.req.param("version"));
      const [version, previous] = await Promise.all([getVersion(db, id, n), getVersion(db, id, n - 1)]);
      if (!found || !version || !previous) {
        throw notFound("That version of the case, or the one before it, does not exist.");
      }
      return c.html(changesPage(deps.pageContext(c), {
        id,
        title: found.summary.title,
        version: version.version,
        note: version.note,
        changes: diffCases(previous.data, version.data),
      }));
    },
  );

  app.post(
    "/cases/:id/versions/:version/restore",
    audit("case.restore", onCase),
    caseFor("change"),
    async (c) => {
      const id = c.req.param("id");
      const version = await getVersion(db, id, Number(c.req.param("version")));
      if (!version) throw notFound("That version of the case does not exist.");
      const saved = await updateCase(
        db,
        embedder,
        id,
        stored(version),
        `Restored version ${version.version}`,
      );
      if (!saved) throw notFound();
      return c.redirect(`/cases/${id}?restored=${version.version}`, 303);
    },
  );

  app.post("/cases/:id/duplicate", audit("case.duplicate", onCase), caseFor("duplicate"), async (c) => {
    const { summary, value } = await load(c.req.param("id"));
    const copy: Case = { ...value, title: `Copy of ${value.title}`.slice(0, 200) };
    const { id } = await addCase(db, embedder, copy, {
      origin: "duplicate",
      ownerId: signedInUser(c).id,
      note: `Duplicated from “${value.title}” (version ${summary.currentVersion})`,
    });
    return c.redirect(`/cases/${id}?duplicated`, 303);
  });

  /** The section named in the URL, or a 404. */
  function sectionOf(name: string): EditSection {
    const section = editSection(name);
    if (!section) throw notFound("That part of a case does not exist.");
    return section;
  }

  app.get("/cases/:id/sections/:name", caseFor("read"), async (c) => {
    const id = c.req.param("id");
    const section = sectionOf(c.req.param("name"));
    const { value } = await load(id);
    if (!c.req.header("hx-request")) return c.redirect(`/cases/${id}#section-${section.name}`, 303);
    return c.html(sectionFragment({ c: value, caseId: id, name: section.name }));
  });

  app.get("/cases/:id/sections/:name/edit", caseFor("change"), async (c) => {
    const id = c.req.param("id");
    const section = sectionOf(c.req.param("name"));
    const { summary, value } = await load(id);
    const props = { c: value, caseId: id, section, errors: [], version: summary.currentVersion };
    return c.html(
      c.req.header("hx-request")
        ? sectionEditorFragment(props)
        : sectionEditorPage(deps.pageContext(c), { ...props, title: value.title }),
    );
  });

  app.post("/cases/:id/sections/:name", audit("case.update", onCase), caseFor("change"), async (c) => {
    const id = c.req.param("id");
    const section = sectionOf(c.req.param("name"));
    const { summary, value } = await load(id);
    const body = await c.req.parseBody().catch(() => {
      throw new HTTPException(400, { message: "The form could not be read. Reload the page and try again." });
    });
    const form: Record<string, string> = {};
    for (const [key, v] of Object.entries(body)) {
      if (typeof v === "string") form[key] = stripControlCharacters(v);
    }
    const edited = applySectionForm(value, section, form);
    const htmx = c.req.header("hx-request") === "true";
    const reject = (errors: FieldError[], status: 409 | 422) => {
      const props = { c: edited, caseId: id, section, errors, version: summary.currentVersion };
      return c.html(
        htmx ? sectionEditorFragment(props) : sectionEditorPage(deps.pageContext(c), {
          ...props,
          title: value.title,
        }),
        status,
      );
    };
    const base = Number(form.base_version);
    if (Number.isInteger(base) && base !== summary.currentVersion) {
      return reject([{
        path: "(case)",
        message:
          `Someone saved this case while you were editing (it is now version ${summary.currentVersion}). ` +
          `Your changes are below: copy what you need, then Cancel to see the current version.`,
      }], 409);
    }
    const parsed = parseCase(edited);
    if (!parsed.ok) return reject(parsed.errors, 422);
    const saved = await updateCase(db, embedder, id, parsed.value, `Edited ${section.title.toLowerCase()}`);
    if (!saved) throw notFound();
    if (!htmx) return c.redirect(`/cases/${id}#section-${section.name}`, 303);
    return c.html(sectionSavedFragment({
      c: parsed.value,
      caseId: id,
      name: section.name,
      version: saved.version,
      flags: saved.flags,
      versions: await listVersions(db, id),
    }));
  });

  app.get("/cases/:id/delete", caseFor("change"), async (c) => {
    const id = c.req.param("id");
    const { summary } = await load(id);
    return c.html(
      deleteConfirmPage(deps.pageContext(c), summary, (await listVersions(db, id)).length),
    );
  });

  app.post("/cases/:id/share", audit("case.share", onCase), caseFor("change"), async (c) => {
    const shared = (await c.req.parseBody()).shared === "on";
    if (!(await setCaseShared(db, c.req.param("id"), shared))) throw notFound();
    return c.redirect(`/cases/${c.req.param("id")}?done=${shared ? "shared" : "unshared"}`, 303);
  });

  app.post("/cases/:id/delete", audit("case.delete", onCase), caseFor("change"), async (c) => {
    if (!(await deleteCase(db, c.req.param("id")))) throw notFound();
    return c.redirect("/cases?done=deleted", 303);
  });

  return app;
}

function snippetLabel(
  snippet: { source: string; sourceId: string; title: string | null; question: string | null },
) {
  const text = snippet.title ?? snippet.question ?? snippet.sourceId;
  return `${snippet.source}: ${text.length > 80 ? text.slice(0, 80) + "…" : text}`;
}

/** What a clinician can act on when the endpoint fails mid-generation. */
function failureMessage(error: unknown): string {
  if (error instanceof EndpointError) {
    const next = error.kind === "unauthorized" || error.kind === "rejected"
      ? "Nothing was saved."
      : "Nothing was saved. Try again in a few minutes; if it keeps failing, ask an operator to check the model server.";
    return `${error.message.replace(/\.$/, "")}. ${next}`;
  }
  console.error("case generation failed:", loggable(error));
  return "An error on our side stopped it. It has been logged; please try again.";
}

function notFound(message = "This case is not in the library. It may have been deleted."): HTTPException {
  return new HTTPException(404, { message });
}

/** A stored version's case. Stored cases were valid when saved; one that no longer is, is a server error. */
function stored(version: StoredVersion): Case {
  const parsed = parseCase(version.data);
  if (!parsed.ok) {
    const first = parsed.errors[0];
    throw new Error(
      `Stored case ${version.caseId} v${version.version} is invalid: ${first.path}: ${first.message}`,
    );
  }
  return parsed.value;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[]): T | "" {
  return allowed.includes(value as T) ? value as T : "";
}

/** A safe download name from a title. */
function fileName(title: string): string {
  return title.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(
    0,
    80,
  ) ||
    "case";
}
