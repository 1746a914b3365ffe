/**
 * The case library: cases with their append-only version history, and search over them (full text plus
 * vector similarity, fused by rank, with filters).
 */
import { and, asc, count, desc, eq, gt, isNull, ne, or, type SQL, sql } from "drizzle-orm";
import type { CaseFlag } from "../cases/consistency.ts";
import type { Db } from "./client.ts";
import { isUuid } from "./ids.ts";
import { rows } from "./migrate.ts";
import { cases, caseVersions, seeds } from "./schema.ts";

/** A library row: what lists and filters need, without the case body. */
export type CaseSummary = Omit<typeof cases.$inferSelect, "search" | "embedding" | "searchText" | "embedder">;

/** A stored case version, body untyped here (cases/ validates it). */
export interface StoredVersion {
  caseId: string;
  version: number;
  data: unknown;
  flags: CaseFlag[];
  note: string;
  createdAt: Date;
}

/** What saving a version writes: the case, its flags, and the copies the library searches on. */
export interface VersionInput {
  data: unknown;
  flags: CaseFlag[];
  note: string;
  title: string;
  specialty: string;
  difficulty: string;
  learnerLevel: string;
  tags: string[];
  searchText: string;
  embedder: string;
  /** pgvector text form. */
  embedding: string;
}

const SUMMARY = {
  id: cases.id,
  currentVersion: cases.currentVersion,
  title: cases.title,
  specialty: cases.specialty,
  difficulty: cases.difficulty,
  learnerLevel: cases.learnerLevel,
  tags: cases.tags,
  origin: cases.origin,
  ownerId: cases.ownerId,
  shared: cases.shared,
  errorCount: cases.errorCount,
  warningCount: cases.warningCount,
  createdAt: cases.createdAt,
  updatedAt: cases.updatedAt,
};

function summaryColumns(input: VersionInput) {
  return {
    title: input.title,
    specialty: input.specialty,
    difficulty: input.difficulty,
    learnerLevel: input.learnerLevel,
    tags: input.tags,
    errorCount: input.flags.filter((f) => f.severity === "error").length,
    warningCount: input.flags.filter((f) => f.severity === "warning").length,
    searchText: input.searchText,
    embedder: input.embedder,
    embedding: sql`${input.embedding}::vector` as unknown as number[],
  };
}

/** Stores a new case as version 1 and returns its id. */
export async function createCase(
  db: Db,
  input: VersionInput & { origin: string; ownerId?: string | null; shared?: boolean },
): Promise<string> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.insert(cases).values({
      ...summaryColumns(input),
      currentVersion: 1,
      origin: input.origin,
      ownerId: input.ownerId ?? null,
      shared: input.shared ?? false,
    })
      .returning({ id: cases.id });
    await tx.insert(caseVersions).values({
      caseId: row.id,
      version: 1,
      data: input.data,
      flags: input.flags,
      note: input.note,
    });
    return row.id;
  });
}

/**
 * Appends a version and makes it current. Concurrent saves of one case queue on its row, so each gets the next
 * number. Null when the case does not exist (deleted meanwhile).
 */
export async function saveVersion(db: Db, caseId: string, input: VersionInput): Promise<number | null> {
  if (!isUuid(caseId)) return null;
  return await db.transaction(async (tx) => {
    const locked = rows<{ id: string }>(
      await tx.execute(sql`select id from ${cases} where id = ${caseId} for update`),
    );
    if (locked.length === 0) return null;
    const [{ latest }] = await tx.select({ latest: sql<number>`max(${caseVersions.version})::int` })
      .from(caseVersions).where(eq(caseVersions.caseId, caseId));
    const version = (latest ?? 0) + 1;
    await tx.insert(caseVersions).values({
      caseId,
      version,
      data: input.data,
      flags: input.flags,
      note: input.note,
    });
    await tx.update(cases).set({ ...summaryColumns(input), currentVersion: version, updatedAt: sql`now()` })
      .where(eq(cases.id, caseId));
    return version;
  });
}

/** A case's summary and current version, or null. */
export async function getCase(
  db: Db,
  id: string,
): Promise<{ summary: CaseSummary; current: StoredVersion } | null> {
  if (!isUuid(id)) return null;
  const [summary] = await db.select(SUMMARY).from(cases).where(eq(cases.id, id));
  if (!summary) return null;
  const current = await getVersion(db, id, summary.currentVersion);
  return current ? { summary, current } : null;
}

/** One version of a case, or null. */
export async function getVersion(db: Db, caseId: string, version: number): Promise<StoredVersion | null> {
  if (!isUuid(caseId) || !Number.isInteger(version) || version < 1) return null;
  const [row] = await db.select().from(caseVersions)
    .where(and(eq(caseVersions.caseId, caseId), eq(caseVersions.version, version)));
  return row ?? null;
}

/** A case's versions, newest first, without their bodies. */
export async function listVersions(
  db: Db,
  caseId: string,
): Promise<{ version: number; note: string; createdAt: Date; errors: number; warnings: number }[]> {
  if (!isUuid(caseId)) return [];
  const result = await db.select({
    version: caseVersions.version,
    note: caseVersions.note,
    createdAt: caseVersions.createdAt,
    errors: sql<number>`(select count(*)::int from jsonb_array_elements(${caseVersions.flags}) f
      where f->>'severity' = 'error')`,
    warnings: sql<number>`(select count(*)::int from jsonb_array_elements(${caseVersions.flags}) f
      where f->>'severity' = 'warning')`,
  }).from(caseVersions).where(eq(caseVersions.caseId, caseId)).orderBy(desc(caseVersions.version));
  return result.map((r) => ({ ...r, errors: Number(r.errors), warnings: Number(r.warnings) }));
}

/** Who owns a case and whether it is shared; null when there is no such case. */
export async function caseAccess(
  db: Db,
  id: string,
): Promise<{ ownerId: string | null; shared: boolean } | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.select({ ownerId: cases.ownerId, shared: cases.shared }).from(cases)
    .where(eq(cases.id, id));
  return row ?? null;
}

/**
 * A title no case the user can see has yet (ignoring case and spacing): the title itself, or it with
 * " (2)", " (3)"… so that two cases in a library never read the same.
 */
export async function freeCaseTitle(db: Db, userId: string, title: string): Promise<string> {
  const base = title.trim();
  const key = (t: string) => t.toLowerCase().replace(/\s+/g, " ").trim();
  const like = base.replace(/[\\%_]/g, (c) => "\\" + c) + "%";
  const taken = new Set(
    (await db.select({ title: cases.title }).from(cases).where(
      and(
        sql`lower(${cases.title}) like lower(${like})`,
        or(eq(cases.ownerId, userId), eq(cases.shared, true), isNull(cases.ownerId)),
      ),
    )).map((r) => key(r.title)),
  );
  if (!taken.has(key(base))) return base;
  for (let n = 2;; n++) {
    const candidate = `${base} (${n})`;
    if (!taken.has(key(candidate))) return candidate;
  }
}

/** Shares a case with every signed-in user, or stops sharing it. False when it does not exist. */
export async function setCaseShared(db: Db, id: string, shared: boolean): Promise<boolean> {
  if (!isUuid(id)) return false;
  const updated = await db.update(cases).set({ shared }).where(eq(cases.id, id)).returning({ id: cases.id });
  return updated.length > 0;
}

/** Deletes a case and its history. True if it existed. */
export async function deleteCase(db: Db, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const deleted = await db.delete(cases).where(eq(cases.id, id)).returning({ id: cases.id });
  return deleted.length > 0;
}

/** How many cases each embedder made the vectors of. */
export async function storedCaseEmbedders(db: Db): Promise<{ embedder: string; count: number }[]> {
  const result = await db.select({ embedder: cases.embedder, count: count() }).from(cases).groupBy(
    cases.embedder,
  );
  return result.map((row) => ({ embedder: row.embedder, count: Number(row.count) }));
}

/** The next page of cases another embedder than `embedder` made the vectors of, with their current version. */
export async function casesToReembed(
  db: Db,
  embedder: string,
  options: { afterId: string | null; limit: number },
): Promise<{ id: string; data: unknown }[]> {
  const conditions = [ne(cases.embedder, embedder)];
  if (options.afterId) conditions.push(gt(cases.id, options.afterId));
  return await db.select({ id: cases.id, data: caseVersions.data }).from(cases)
    .innerJoin(
      caseVersions,
      and(eq(caseVersions.caseId, cases.id), eq(caseVersions.version, cases.currentVersion)),
    )
    .where(and(...conditions)).orderBy(asc(cases.id)).limit(options.limit);
}

/** Replaces cases' vectors, recording the embedder that made them (not an edit: no version, same time). */
export async function updateCaseEmbeddings(
  db: Db,
  embedder: string,
  updates: { id: string; embedding: string }[],
): Promise<void> {
  if (updates.length === 0) return;
  await db.transaction(async (tx) => {
    for (const update of updates) {
      await tx.update(cases).set({
        embedder,
        embedding: sql`${update.embedding}::vector` as unknown as number[],
      }).where(eq(cases.id, update.id));
    }
  });
}

/** Narrows the library; empty values mean no restriction. */
export interface CaseFilters {
  specialty?: string;
  difficulty?: string;
  learnerLevel?: string;
  tag?: string;
  /** Only cases this user may see: their own, shared ones and the examples. */
  visibleTo?: string;
}

/** The SQL condition for cases a user may see. */
function visibleSql(userId: string): SQL {
  return sql`(${cases.ownerId} = ${userId} or ${cases.shared} or ${cases.ownerId} is null)`;
}

function filterSql(filters: CaseFilters): SQL[] {
  const conditions: SQL[] = [];
  if (filters.visibleTo) conditions.push(visibleSql(filters.visibleTo));
  if (filters.specialty) conditions.push(eq(cases.specialty, filters.specialty));
  if (filters.difficulty) conditions.push(eq(cases.difficulty, filters.difficulty));
  if (filters.learnerLevel) conditions.push(eq(cases.learnerLevel, filters.learnerLevel));
  if (filters.tag) conditions.push(sql`${filters.tag} = any(${cases.tags})`);
  return conditions;
}

/** A search hit: the case and how well it matched (reciprocal-rank fusion of the two searches). */
export interface CaseHit {
  summary: CaseSummary;
  score: number;
  /** Which searches found it. */
  matchedBy: ("text" | "meaning")[];
}

/**
 * Cases matching a query by words (full text, any word) or by meaning (cosine similarity at least
 * `minSimilarity`), fused by reciprocal rank; without a query, the newest first.
 */
export async function searchCases(
  db: Db,
  options: {
    query?: string;
    embedding?: string;
    minSimilarity?: number;
    filters?: CaseFilters;
    limit?: number;
  },
): Promise<CaseHit[]> {
  const limit = options.limit ?? 50;
  const conditions = filterSql(options.filters ?? {});
  const where = conditions.length ? and(...conditions) : undefined;
  const query = options.query?.trim();
  if (!query) {
    const list = await db.select(SUMMARY).from(cases).where(where).orderBy(
      desc(cases.updatedAt),
      asc(cases.id),
    )
      .limit(limit);
    return list.map((summary) => ({ summary, score: 0, matchedBy: [] }));
  }
  const extra = conditions.length ? sql`and ${and(...conditions)}` : sql``;
  // Any word matches, but a case with every word of the query comes first, and one with them as a phrase
  // before that: "chest pain" lists chest-pain cases before every case with "pain" in it.
  const textRows = rows<{ id: string; every: boolean; phrase: boolean }>(
    await db.execute(sql`
      with q as (
        select nullif(replace(plainto_tsquery('english', ${query})::text, ' & ', ' | '), '')::tsquery as any_word,
          plainto_tsquery('english', ${query}) as every_word,
          phraseto_tsquery('english', ${query}) as phrase
      )
      select id, search @@ q.every_word as every, search @@ q.phrase as phrase
      from ${cases}, q where q.any_word is not null and search @@ q.any_word ${extra}
      order by search @@ q.phrase desc, search @@ q.every_word desc, ts_rank_cd(search, q.any_word, 1) desc, id
      limit ${limit}`),
  );
  const text = textRows.map((r) => r.id);
  const meaning = options.embedding
    ? rows<{ id: string }>(
      await db.execute(sql`
        select id from ${cases}
        where 1 - (embedding <=> ${options.embedding}::vector) >= ${options.minSimilarity ?? 0.3} ${extra}
        order by embedding <=> ${options.embedding}::vector, id limit ${limit}`),
    ).map((r) => r.id)
    : [];
  const fused = new Map<string, { score: number; matchedBy: ("text" | "meaning")[] }>();
  const add = (ids: string[], by: "text" | "meaning") =>
    ids.forEach((id, i) => {
      const entry = fused.get(id) ?? { score: 0, matchedBy: [] };
      entry.score += 1 / (60 + i + 1);
      entry.matchedBy.push(by);
      fused.set(id, entry);
    });
  add(text, "text");
  add(meaning, "meaning");
  // Whole-query matches outrank anything the fusion of ranks can give (at most 2/61 each).
  for (const row of textRows) {
    const entry = fused.get(row.id)!;
    entry.score += (row.every ? 1 : 0) + (row.phrase ? 1 : 0);
  }
  if (fused.size === 0) return [];
  const summaries = await db.select(SUMMARY).from(cases)
    .where(
      sql`${cases.id} in (select json_array_elements_text(${JSON.stringify([...fused.keys()])}::json)::uuid)`,
    );
  return summaries.map((summary) => ({ summary, ...fused.get(summary.id)! }))
    .sort((a, b) => b.score - a.score || a.summary.title.localeCompare(b.summary.title)).slice(0, limit);
}

/** The values present in the library, with counts, for the filter menus. */
export async function caseFacets(
  db: Db,
  visibleTo?: string,
): Promise<{ specialties: [string, number][]; tags: [string, number][]; total: number }> {
  const where = visibleTo ? visibleSql(visibleTo) : undefined;
  const specialties = await db.select({ value: cases.specialty, n: count() }).from(cases).where(where)
    .groupBy(cases.specialty).orderBy(asc(cases.specialty));
  const tags = rows<{ value: string; n: number }>(
    await db.execute(sql`select tag as value, count(*)::int as n from ${cases}, unnest(tags) as tag
      ${where ? sql`where ${where}` : sql``} group by tag order by tag`),
  );
  const [{ total }] = await db.select({ total: count() }).from(cases).where(where);
  return {
    specialties: specialties.map((s) => [s.value, Number(s.n)]),
    tags: tags.map((t) => [t.value, Number(t.n)]),
    total: Number(total),
  };
}

/**
 * Runs `work` once per database under `name`: true if it ran now. Instances starting together take turns on
 * the row's lock; a failed run leaves no mark, so the next start tries again.
 */
export async function seedOnce(db: Db, name: string, work: (tx: Db) => Promise<void>): Promise<boolean> {
  return await db.transaction(async (tx) => {
    const claimed = await tx.insert(seeds).values({ name }).onConflictDoNothing().returning({
      name: seeds.name,
    });
    if (claimed.length === 0) return false;
    await work(tx as unknown as Db);
    return true;
  });
}

/** Titles of the example cases in the library (added from the shipped examples, owned by nobody). */
export async function exampleTitles(db: Db): Promise<string[]> {
  return (await db.select({ title: cases.title }).from(cases).where(
    and(eq(cases.origin, "example"), isNull(cases.ownerId)),
  )).map((r) => r.title);
}
