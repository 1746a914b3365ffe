/**
 * The case library's domain side: saving a case (validate, check, embed, version), the JSON exchange format
 * with its import errors, and the example cases shipped in `data/cases/`.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  caseFacets,
  casesToReembed,
  createCase,
  exampleTitles,
  saveVersion,
  seedOnce,
  updateCaseEmbeddings,
  type VersionInput,
} from "../db/cases.ts";
import type { Db } from "../db/client.ts";
import { type Embedder, vectorLiteral } from "../knowledge/embedder.ts";
import { type CaseFlag, checkCase } from "./consistency.ts";
import { type Case, type FieldError, HYPOTHETICAL_NOTICE, parseCase } from "./schema.ts";
import { storableJson } from "../safety/limits.ts";

/** The exchange format's name and version, written in every export and accepted by import. */
export const EXCHANGE_FORMAT = "rounds-case";
export const EXCHANGE_VERSION = 1;

/** Where the example cases live. */
export const EXAMPLE_CASES_DIR = fileURLToPath(new URL("../data/cases/", import.meta.url));

/** The words the library's full-text search looks at. */
export function caseSearchText(c: Case): string {
  return [
    c.title,
    c.specialty,
    c.setting,
    c.chiefComplaint,
    c.finalDiagnosis,
    ...c.differential.map((d) => d.diagnosis),
    ...c.learningObjectives,
    ...c.tags,
    c.patient.occupation,
  ].join("\n");
}

/** What semantic search embeds: the clinical picture rather than the bookkeeping. */
function caseMeaningText(c: Case): string {
  return [c.title, c.chiefComplaint, c.finalDiagnosis, c.historyOfPresentIllness.slice(0, 800)].join("\n");
}

async function versionInput(
  c: Case,
  flags: CaseFlag[],
  note: string,
  embedder: Embedder,
): Promise<VersionInput> {
  const [vector] = await embedder.embed([caseMeaningText(c)]);
  return {
    data: c,
    flags,
    note,
    title: c.title,
    specialty: c.specialty,
    difficulty: c.difficulty,
    learnerLevel: c.learnerLevel,
    tags: c.tags,
    searchText: caseSearchText(c),
    embedder: embedder.id,
    embedding: vectorLiteral(vector),
  };
}

/**
 * Re-embeds every case whose vector another embedder made (`deno task ingest --reembed`), from its current
 * version. Returns how many changed.
 */
export async function reembedCases(
  db: Db,
  embedder: Embedder,
  options: { batchSize?: number; signal?: AbortSignal; onProgress?: (done: number) => void } = {},
): Promise<number> {
  const limit = options.batchSize ?? Math.max(embedder.batchSize, 64);
  let afterId: string | null = null;
  let done = 0;
  for (;;) {
    const page = await casesToReembed(db, embedder.id, { afterId, limit });
    if (page.length === 0) return done;
    // Stored versions were valid when saved; the meaning text reads only fields every version has.
    const vectors = await embedder.embed(page.map((row) => caseMeaningText(row.data as Case)), {
      signal: options.signal,
    });
    await updateCaseEmbeddings(
      db,
      embedder.id,
      page.map((row, i) => ({ id: row.id, embedding: vectorLiteral(vectors[i]) })),
    );
    done += page.length;
    afterId = page[page.length - 1].id;
    options.onProgress?.(done);
  }
}

/** Stores a valid case as a new library entry; its consistency flags are stored with it. */
export async function addCase(
  db: Db,
  embedder: Embedder,
  c: Case,
  options: {
    origin: "example" | "generated" | "imported" | "duplicate";
    note: string;
    /** The educator it belongs to; examples belong to no one and are shared with everyone. */
    ownerId?: string | null;
  },
): Promise<{ id: string; flags: CaseFlag[] }> {
  const flags = checkCase(c);
  const id = await createCase(db, {
    ...await versionInput(c, flags, options.note, embedder),
    origin: options.origin,
    ownerId: options.origin === "example" ? null : options.ownerId ?? null,
    shared: options.origin === "example",
  });
  return { id, flags };
}

/** Saves an edited (or restored) case as the next version. Null when the case is gone. */
export async function updateCase(
  db: Db,
  embedder: Embedder,
  id: string,
  c: Case,
  note: string,
): Promise<{ version: number; flags: CaseFlag[] } | null> {
  const flags = checkCase(c);
  const version = await saveVersion(db, id, await versionInput(c, flags, note, embedder));
  return version === null ? null : { version, flags };
}

/** A case in the exchange format. */
export function exportCase(c: Case): Record<string, unknown> {
  return { format: EXCHANGE_FORMAT, version: EXCHANGE_VERSION, notice: HYPOTHETICAL_NOTICE, case: c };
}

/** The outcome of reading an import. */
export type ImportResult = { ok: true; value: Case } | { ok: false; errors: FieldError[] };

/**
 * Reads a case from JSON text: the exchange format (`{"format": "rounds-case", "version": 1, "case": {…}}`) or a
 * bare case object. Every problem is reported with the field it is in.
 */
export function readImport(text: string): ImportResult {
  let raw: unknown;
  try {
    // NUL and unpaired surrogates cannot be stored; everything else is validated as sent.
    raw = storableJson(JSON.parse(text));
  } catch (error) {
    return {
      ok: false,
      errors: [{ path: "(file)", message: `Not valid JSON: ${(error as Error).message}` }],
    };
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, errors: [{ path: "(file)", message: "Expected one case: a JSON object" }] };
  }
  const object = raw as Record<string, unknown>;
  if ("format" in object || "case" in object) {
    if (object.format !== EXCHANGE_FORMAT) {
      return {
        ok: false,
        errors: [{
          path: "format",
          message: `Expected "${EXCHANGE_FORMAT}", found ${JSON.stringify(object.format)}`,
        }],
      };
    }
    if (object.version !== EXCHANGE_VERSION) {
      return {
        ok: false,
        errors: [{
          path: "version",
          message: `This Rounds reads version ${EXCHANGE_VERSION} of the case format, not ${
            JSON.stringify(object.version)
          }`,
        }],
      };
    }
    const parsed = parseCase(object.case);
    return parsed.ok
      ? parsed
      : { ok: false, errors: parsed.errors.map((e) => ({ ...e, path: `case.${e.path}` })) };
  }
  return parseCase(object);
}

/** The example cases in `data/cases/`, validated; a broken file is an error naming it. */
export async function readExampleCases(dir = EXAMPLE_CASES_DIR): Promise<{ file: string; value: Case }[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".json")) files.push(entry.name);
  }
  files.sort();
  const out: { file: string; value: Case }[] = [];
  for (const file of files) {
    const result = readImport(await Deno.readTextFile(join(dir, file)));
    if (!result.ok) {
      const first = result.errors.slice(0, 3).map((e) => `${e.path}: ${e.message}`).join("; ");
      throw new Error(`Example case ${file} is invalid: ${first}`);
    }
    out.push({ file, value: result.value });
  }
  return out;
}

/** Adds the example cases to the library. Returns how many were added. */
export async function addExampleCases(db: Db, embedder: Embedder, dir = EXAMPLE_CASES_DIR): Promise<number> {
  // Only the ones not in the library: pressing "Add the example cases" twice adds nothing the second time.
  const present = new Set(await exampleTitles(db));
  const missing = (await readExampleCases(dir)).filter(({ value }) => !present.has(value.title));
  for (const { value } of missing) {
    await addCase(db, embedder, value, { origin: "example", note: "Added from the example cases" });
  }
  return missing.length;
}

/**
 * On the first start of a database, adds the example cases to an empty library, once: a library someone emptied
 * stays empty (its empty state offers the examples again). Returns how many were added.
 */
export async function seedExampleCases(db: Db, embedder: Embedder): Promise<number> {
  let added = 0;
  await seedOnce(db, "example-cases", async (tx) => {
    if ((await caseFacets(tx)).total === 0) added = await addExampleCases(tx, embedder);
  });
  return added;
}
