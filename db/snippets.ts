/**
 * The knowledge base: storing snippets in batches (deduplicated by content hash, with the ingest run's progress
 * in the same transaction), vector and full-text candidate search, source counts, and re-embedding, including
 * the dimension of the embedding columns (of snippets and of cases), which follows the configured embedder.
 */
import { and, asc, count, eq, gt, inArray, isNull, ne, type SQL, sql } from "drizzle-orm";
import { PGlite } from "@electric-sql/pglite";
import { CONNECTION_EF_SEARCH, type Db } from "./client.ts";
import { copyInput, PgliteThread } from "./pglite_thread.ts";
import { isUuid } from "./ids.ts";
import { rows } from "./migrate.ts";
import { builtOnce, decodeColumns } from "./statements.ts";
import { storedCaseEmbedders } from "./cases.ts";
import {
  type EvidenceState,
  ingestRuns,
  messages,
  messageSources,
  searchTerms,
  snippets,
  snippetSearch,
} from "./schema.ts";

/** A stored snippet, without its vector and tsvector. */
export type Snippet = Omit<typeof snippets.$inferSelect, "embedding">;

/** A snippet ready to store. */
export interface NewSnippet {
  source: string;
  sourceId: string;
  url: string | null;
  specialty: string | null;
  title: string | null;
  question: string | null;
  answer: string;
  text: string;
  contentHash: string;
  embedder: string;
  /** The embedder's vector: finite values, as many as the embedding column declares. */
  embedding: ArrayLike<number>;
  /** The uploaded document it comes from. */
  documentId?: string | null;
  /** Its page in a paginated document. */
  page?: number | null;
}

/** An ingest run as stored. */
export type IngestRun = typeof ingestRuns.$inferSelect;

/** Narrows a search to some sources and specialties; empty lists mean no restriction. */
export interface SnippetFilters {
  sources?: string[];
  specialties?: string[];
}

/** A search candidate: the snippet id and its score on that search's own scale. */
export interface Candidate {
  id: string;
  /** Cosine similarity for vector search (1 − distance); the BM25 score for full text. */
  score: number;
}

const SNIPPET_COLUMNS = {
  id: snippets.id,
  source: snippets.source,
  sourceId: snippets.sourceId,
  url: snippets.url,
  specialty: snippets.specialty,
  title: snippets.title,
  question: snippets.question,
  answer: snippets.answer,
  text: snippets.text,
  contentHash: snippets.contentHash,
  embedder: snippets.embedder,
  documentId: snippets.documentId,
  page: snippets.page,
  createdAt: snippets.createdAt,
};

/** Which of these content hashes are already stored (so their texts need not be embedded again). */
export async function storedHashes(db: Db, hashes: string[]): Promise<Set<string>> {
  if (hashes.length === 0) return new Set();
  // One array parameter rather than one per hash: cheaper to build and to parse for a batch of hundreds.
  const found = rows<{ hash: string }>(
    await db.execute(sql`select content_hash as hash from snippets
      where content_hash in (select json_array_elements_text(${JSON.stringify(hashes)}::json))`),
  );
  return new Set(found.map((row) => row.hash));
}

/**
 * Stores a batch, skipping hashes already present, and advances the run in the same transaction: after a crash
 * the run's `recordsDone` says exactly which records are safely stored. Returns how many rows were new.
 */
export async function storeBatch(
  db: Db,
  batch: NewSnippet[],
  progress: BatchProgress,
): Promise<number> {
  if (batch.length > 0) {
    const declared = await declaredDimensions(db, "snippets") ?? batch[0].embedding.length;
    for (const row of batch) {
      if (row.embedding.length !== declared) {
        throw new Error(
          `Cannot store snippet ${row.sourceId}: its vector has ${row.embedding.length} dimensions, the ` +
            `knowledge base stores ${declared}`,
        );
      }
    }
  }
  const pglite = pgliteClient(db);
  if (pglite) return await storeBatchByCopy(db, pglite, batch, progress);
  return await db.transaction(async (tx) => {
    let added = 0;
    if (batch.length > 0) {
      // One JSON parameter for the whole batch: building 5,500 bound parameters cost more client CPU than the
      // database spent storing the rows. (A binary COPY, as on PGlite, measured slower here: 2,750 rows/s
      // against 3,000–3,600 on Postgres 15, which parses vector text natively.)
      const input = batch.map((row) => ({ ...row, embedding: Array.from(row.embedding) }));
      added = rows<{ added: number }>(
        await tx.execute(sql`
          with added as (
            insert into snippets (${sql.raw(STORED_COLUMNS)})
            select source, "sourceId", url, specialty, title, question, answer, text, "contentHash", embedder,
              "documentId", page, embedding::text::vector
            from json_to_recordset(${JSON.stringify(input)}::json) as input(source text, "sourceId" text,
              url text, specialty text, title text, question text, answer text, text text, "contentHash" text,
              embedder text, "documentId" uuid, page int, embedding json)
            on conflict (content_hash) do nothing
            returning id, text
          ),
          ${sql.raw(SEARCH_ADDED)}
          select count(*)::int as added from added`),
      )[0].added;
    }
    await advanceRun(tx, progress, batch.length, added);
    return added;
  });
}

/** Where a stored batch leaves its ingest run. */
export interface BatchProgress {
  runId: string;
  /** Records of the input stored once this batch is (the count a resumed run skips). */
  recordsDone: number;
  /** Duplicates found before the batch reached the database (in the batch itself, or already stored). */
  duplicates: number;
  skipped: number;
}

/** The full-text vectors of the snippets a batch added (`added`: their ids and texts), in the same statement. */
const SEARCH_ADDED = `searched as (
            insert into snippet_search (snippet_id, search) select id, to_tsvector('english', text) from added
          )`;

/** The columns storeBatch fills, in the order of its COPY rows. */
const STORED_COLUMNS =
  "source, source_id, url, specialty, title, question, answer, text, content_hash, embedder, document_id, page, " +
  "embedding";

/**
 * PGlite's batches go in as a binary COPY: WebAssembly Postgres spent about 15% of a JSON batch reading the
 * parameter and 30% parsing the vectors' text, and binary rows skip both (1.6× the rows/s). The COPY lands in a
 * session table first, so rows stored meanwhile (by the batch before) end as duplicates rather than failing it.
 */
async function storeBatchByCopy(
  db: Db,
  client: PGlite | PgliteThread,
  batch: NewSnippet[],
  progress: BatchProgress,
): Promise<number> {
  return await client.transaction(async (tx) => {
    let added = 0;
    if (batch.length > 0) {
      // Any dimension here: the insert below checks the column's, and one session may see it change.
      await tx.query(
        `create temp table if not exists snippet_batch (source text, source_id text, url text, specialty text,
          title text, question text, answer text, text text, content_hash text, embedder text, document_id text,
          page text, embedding vector) on commit delete rows`,
      );
      await tx.query(`copy snippet_batch (${STORED_COLUMNS}) from '/dev/blob' with (format binary)`, [], {
        blob: copyInput(copyRows(batch)),
      });
      added = rows<{ added: number }>(
        await tx.query(`
          with added as (
            insert into snippets (${STORED_COLUMNS})
            select ${
          STORED_COLUMNS.replace("document_id, page", "document_id::uuid, page::int")
        } from snippet_batch
            on conflict (content_hash) do nothing
            returning id, text
          ),
          ${SEARCH_ADDED}
          select count(*)::int as added from added`),
      )[0].added;
    }
    const update = advanceRun(db, progress, batch.length, added).toSQL();
    await tx.query(update.sql, update.params);
    return added;
  });
}

/** The batch's rows in COPY's binary format (the columns of STORED_COLUMNS; the vector as pgvector sends it). */
function copyRows(batch: NewSnippet[]): ArrayBuffer {
  const encoder = new TextEncoder();
  const dimensions = batch[0]?.embedding.length ?? 0; // storeBatch checked that every row has it
  const vectorBytes = 4 + 4 * dimensions;
  // An upper bound: UTF-8 takes at most 3 bytes per UTF-16 unit.
  const fields = batch.map(textFields);
  let bound = 19 + 2;
  for (const row of fields) {
    bound += 2 + (row.length + 1) * 4 + vectorBytes;
    for (const field of row) bound += (field?.length ?? 0) * 3;
  }
  const bytes = new Uint8Array(bound);
  const view = new DataView(bytes.buffer);
  bytes.set([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]); // PGCOPY\n\377\r\n\0
  let at = 19; // then flags and the header extension's length, both 0
  for (const [r, row] of batch.entries()) {
    view.setInt16(at, fields[r].length + 1); // the text fields, then the vector
    at += 2;
    for (const field of fields[r]) {
      if (field === null) {
        view.setInt32(at, -1);
        at += 4;
        continue;
      }
      const { written } = encoder.encodeInto(field, bytes.subarray(at + 4));
      view.setInt32(at, written);
      at += 4 + written;
    }
    view.setInt32(at, vectorBytes);
    view.setInt16(at + 4, dimensions);
    view.setInt16(at + 6, 0);
    at += 8;
    for (let i = 0; i < dimensions; i++, at += 4) view.setFloat32(at, row.embedding[i]);
  }
  view.setInt16(at, -1);
  return bytes.buffer.slice(0, at + 2); // exactly the rows: COPY reads the whole buffer
}

/** A row's columns before the vector, in STORED_COLUMNS order. */
function textFields(row: NewSnippet): (string | null)[] {
  return [
    row.source,
    row.sourceId,
    row.url,
    row.specialty,
    row.title,
    row.question,
    row.answer,
    row.text,
    row.contentHash,
    row.embedder,
    row.documentId ?? null,
    row.page == null ? null : String(row.page),
  ];
}

/** The update that moves an ingest run past a stored batch of which `added` rows were new. */
function advanceRun(db: Pick<Db, "update">, progress: BatchProgress, batchSize: number, added: number) {
  return db.update(ingestRuns).set({
    recordsDone: progress.recordsDone,
    added: sql`${ingestRuns.added} + ${added}`,
    duplicates: sql`${ingestRuns.duplicates} + ${progress.duplicates + batchSize - added}`,
    skipped: sql`${ingestRuns.skipped} + ${progress.skipped}`,
    updatedAt: sql`now()`,
  }).where(eq(ingestRuns.id, progress.runId));
}

/**
 * Whether the database has one connection (PGlite, in this process or on its own thread): a long transaction
 * there holds every other request's statements until it ends.
 */
export function hasOneConnection(db: Db): boolean {
  return pgliteClient(db) !== null;
}

/** The PGlite behind a drizzle database, if that is what it is. */
function pgliteClient(db: Db): PGlite | PgliteThread | null {
  const client = (db as { $client?: unknown }).$client;
  return client instanceof PGlite || client instanceof PgliteThread ? client : null;
}

/** The unfinished run of this input, to resume, or a new run. */
export async function openIngestRun(
  db: Db,
  input: { inputKey: string; path: string; format: string; source: string | null },
): Promise<{ run: IngestRun; resumed: boolean }> {
  const [unfinished] = await db.select().from(ingestRuns)
    .where(and(eq(ingestRuns.inputKey, input.inputKey), isNull(ingestRuns.completedAt)))
    .orderBy(sql`${ingestRuns.createdAt} desc`).limit(1);
  if (unfinished) return { run: unfinished, resumed: true };
  const [run] = await db.insert(ingestRuns).values(input).returning();
  return { run, resumed: false };
}

/** Marks a run complete and returns its totals. */
export async function completeIngestRun(db: Db, runId: string): Promise<IngestRun> {
  const [run] = await db.update(ingestRuns).set({ completedAt: sql`now()`, updatedAt: sql`now()` })
    .where(eq(ingestRuns.id, runId)).returning();
  return run;
}

function filterConditions(filters: SnippetFilters): SQL[] {
  const conditions: SQL[] = [];
  if (filters.sources?.length) conditions.push(inArray(snippets.source, filters.sources));
  if (filters.specialties?.length) conditions.push(inArray(snippets.specialty, filters.specialties));
  return conditions;
}

function whereClause(filters: SnippetFilters): SQL {
  const conditions = filterConditions(filters);
  return conditions.length ? sql`where ${and(...conditions)}` : sql``;
}

/**
 * The nearest snippets by cosine distance through the HNSW index. With filters, pgvector's iterative scan keeps
 * walking the graph until enough rows pass them; where that is unavailable or still comes up short (a very
 * rare filter value), an exact scan answers instead, so a filter never silently shrinks the result.
 */
export async function vectorCandidates(
  db: Db,
  embedding: string,
  options: { limit: number; filters?: SnippetFilters; efSearch?: number },
): Promise<Candidate[]> {
  const filters = options.filters ?? {};
  const filtered = filterConditions(filters).length > 0;
  const efSearch = Math.max(options.efSearch ?? CONNECTION_EF_SEARCH, options.limit);
  // relaxed_order returns rows nearly in distance order; the outer sort restores it exactly. Measured in
  // bench:retrieval on a 1 % filter at 100k rows: recall 0.95 at p95 28 ms, against 0.85 at 65 ms for strict_order.
  const query = sql`with nearest as materialized (
      select id, embedding <=> ${embedding}::vector as distance from ${snippets}
      ${whereClause(filters)} order by embedding <=> ${embedding}::vector limit ${options.limit}
    ) select id, 1 - distance as score from nearest order by distance`;
  // Unfiltered at the connection's own hnsw.ef_search (db/client.ts): one statement, no transaction.
  if (!filtered && efSearch === CONNECTION_EF_SEARCH) {
    return rows<{ id: string; score: number }>(await db.execute(query)).map(toCandidate);
  }
  const found = await db.transaction(async (tx) => {
    await tx.execute(sql.raw(`set local hnsw.ef_search = ${Math.min(efSearch, 1000)}`));
    if (filtered) await tx.execute(sql.raw(`set local hnsw.iterative_scan = relaxed_order`));
    return rows<{ id: string; score: number }>(await tx.execute(query));
  }).catch((error) => {
    // pgvector older than 0.8 has no iterative scans; the exact fallback below covers filtered searches.
    if (!filtered || !/iterative_scan/.test(String(error?.message ?? error))) throw error;
    return [] as { id: string; score: number }[];
  });
  if (!filtered || found.length >= options.limit) return found.map(toCandidate);
  const exact = await db.transaction(async (tx) => {
    await tx.execute(sql.raw(`set local enable_indexscan = off`));
    return rows<{ id: string; score: number }>(await tx.execute(query));
  });
  return exact.map(toCandidate);
}

function toCandidate(row: { id: string; score: number | string }): Candidate {
  return { id: row.id, score: Number(row.score) };
}

/**
 * Full-text candidates: any of the question's words (stemmed by Postgres's English configuration), ranked by
 * Okapi BM25 over all of them (see textMatches). Natural questions rarely contain every word of an answer, so
 * the words are OR-ed. ts_rank, which ranked here until 2026-12-05, weighs every word alike however common it
 * is (held-out full-text R@1 0.684 and R@5 0.886 against BM25's 0.787 and 0.928); cover density (ts_rank_cd)
 * ranked worse still. With the question's embedding, each candidate's cosine similarity comes in the same
 * statement.
 */
export async function textCandidates(
  db: Db,
  text: string,
  options: {
    limit: number;
    filters?: SnippetFilters;
    embedding?: string;
    /**
     * The whole rows of the first `count` candidates whose similarity is at least `minScore` (with the embedding):
     * the ones a search quotes, read in the same statement instead of one more round trip after it.
     */
    rowsOf?: { count: number; minScore: number };
  },
): Promise<TextCandidate[]> {
  // The query's terms, rarest first, each with the number of snippets it occurs in (search_terms); only those
  // in at most 2% of the knowledge base (or 2,000 snippets) count, the rarest of them are ORed while their
  // snippets add up to POSTINGS_BUDGET (when even the rarest is past it, pairs of the rarest are ANDed), and at
  // most MATCHED snippets are ranked.
  // Ranking every snippet that contains "pain" took seconds at 100,000 snippets and told nothing. A query of
  // common words only falls back to all of them ANDed. Terms the statistics do not know (a word no snippet had at
  // the last count, which the vocabulary's expansions often are) cost nothing and are always searched, but they
  // never take the place of the rarest known term: with them alone, a question matched nothing.
  // The similarity of the ranked few only, read from their rows: carried through all the matches, each one's
  // vector (1.5 KB) was copied into the CTE, and the search took p50 / p95 4.4 / 9.1 ms instead of 2.6 / 4.7
  // (retrieve(), bench:request's questions, 100,000 snippets, Postgres, 2026-12-06).
  const similarity = options.embedding
    ? sql`1 - (s.embedding <=> ${options.embedding}::vector)`
    : sql`null::float8`;
  const rowsOf = options.embedding ? options.rowsOf : undefined;
  const result = await db.execute(sql`
    with ${textMatches(text, filterConditions(options.filters ?? {}))},
      ranked as (select id, score from bm25 order by score desc, id limit ${options.limit}),
      scored as (
        select r.id, r.score, ${similarity} as similarity from ranked r join ${snippets} s on s.id = r.id
      )${
    rowsOf
      ? sql`,
      quoted as (
        select id from scored where similarity >= ${rowsOf.minScore}::float8 order by score desc, id
        limit ${rowsOf.count}
      )
    select c.id, c.score, c.similarity, ${sql.raw(QUOTED_COLUMNS)}
    from scored c left join quoted on quoted.id = c.id left join ${snippets} q on q.id = quoted.id
    order by c.score desc, c.id`
      : sql`
    select id, score, similarity from scored order by score desc, id`
  }`);
  type Row = { id: string; score: number; similarity: number | null } & Record<string, unknown>;
  return rows<Row>(result).map((row) => ({
    ...toCandidate(row),
    similarity: row.similarity === null ? null : Number(row.similarity),
    ...(row.q_id ? { snippet: quotedSnippet(row) } : {}),
  }));
}

/** A full-text candidate, with its cosine similarity to the question when the embedding was given. */
export interface TextCandidate extends Candidate {
  similarity: number | null;
  /** The snippet itself, when it is among the rows asked for (`rowsOf`). */
  snippet?: Snippet;
}

/** A quoted snippet's columns in textCandidates' statement, as `q_<field>` (null for candidates not quoted). */
const QUOTED_COLUMNS = Object.entries(SNIPPET_COLUMNS)
  .map(([field, column]) => `q.${column.name} as "q_${field}"`).join(", ");

/** A snippet as getSnippets reads it (each column decoded as drizzle decodes it), from textCandidates' row. */
function quotedSnippet(row: Record<string, unknown>): Snippet {
  return decodeColumns<Snippet>(SNIPPET_COLUMNS, (field) => row[`q_${field}`]);
}

/**
 * The CTEs `q` (the tsquery of the question's rarer terms, and when they are paired, of three of them),
 * `matched` (at most MATCHED snippets it finds, those with three of the paired terms first) and
 * `bm25` (each match's Okapi BM25 score over all the question's terms: a term counts by how rare it is in the
 * knowledge base and saturates with repeats, a long snippet counts each word less).
 */
function textMatches(text: string, conditions: SQL[]): SQL {
  // Filters are on the snippet's own columns: only then is its row (text, vector) read for each match.
  const filtered = conditions.length > 0;
  const extra = filtered ? sql`and ${and(...conditions)}` : sql``;
  const join = filtered ? sql`join ${snippets} on ${snippets.id} = ss.snippet_id` : sql``;
  // Constants written into the statement: a bound parameter beside an integer would be typed integer.
  const [k1, k1Plus1, b] = [BM25_K1, BM25_K1 + 1, BM25_B].map((n) => sql.raw(`${n}::float8`));
  return sql`
      total as (select coalesce((select ndoc from ${searchTerms} where term = ${TOTAL_TERM}), 0) as n),
      terms as (
        select t.lexeme, coalesce(st.ndoc, 0) as ndoc
        from unnest(tsvector_to_array(to_tsvector('english', ${text}))) as t(lexeme)
        left join ${searchTerms} st on st.term = t.lexeme
      ),
      known as (
        select lexeme, ndoc, row_number() over (order by ndoc, lexeme) as n,
          sum(ndoc) over (order by ndoc, lexeme) as postings
        from terms, total
        where ndoc > 0 and ndoc <= greatest(${RARE_TERM_DOCS}::int, total.n * ${RARE_TERM_SHARE}::real)
      ),
      parts as (
        select quote_literal(lexeme) as part from terms where ndoc = 0
        union all
        select quote_literal(lexeme) from known where n <= ${MAX_QUERY_TERMS} and postings <= ${POSTINGS_BUDGET}
        union all
        select '(' || quote_literal(a.lexeme) || ' & ' || quote_literal(b.lexeme) || ')'
        from known a join known b on a.n < b.n
        where b.n <= ${PAIRED_TERMS} and (select ndoc from known where n = 1) > ${POSTINGS_BUDGET}
        union all
        select quote_literal(lexeme) from known
        where n = 1 and ndoc > ${POSTINGS_BUDGET} and not exists (select from known where n = 2)
      ),
      q as (
        select coalesce(
          (select string_agg(part, ' | ') from parts)::tsquery,
          nullif(plainto_tsquery('english', ${text})::text, '')::tsquery
        ) as query,
        (
          select string_agg(
            '(' || quote_literal(a.lexeme) || ' & ' || quote_literal(b.lexeme) || ' & ' || quote_literal(c.lexeme) || ')',
            ' | '
          )
          from known a join known b on a.n < b.n join known c on b.n < c.n
          where c.n <= ${PAIRED_TERMS} and (select ndoc from known where n = 1) > ${POSTINGS_BUDGET}
        )::tsquery as three
      ),
      matched as (
        (select ss.snippet_id as id, ss.search from ${snippetSearch} ss ${join}, q
        where q.three is not null and ss.search @@ q.three ${extra} limit ${MATCHED})
        union all
        (select ss.snippet_id as id, ss.search from ${snippetSearch} ss ${join}, q
        where q.query is not null and ss.search @@ q.query and not (q.three is not null and ss.search @@ q.three) ${extra}
        limit ${MATCHED})
        limit ${MATCHED}
      ),
      idf as (
        -- In float8: with a bare 0.5 the weights were numeric, and so was every match's sum (search p95 ~20% slower).
        select lexeme, ln(1 + (total.n - least(ndoc, total.n) + 0.5::float8) / (least(ndoc, total.n) + 0.5::float8))
          as weight
        from terms, total
      ),
      average as (
        select greatest(coalesce(
          (select ndoc from ${searchTerms} where term = ${LEXEMES_TERM})::float8 / nullif(total.n, 0),
          ${sql.raw(`${FALLBACK_AVERAGE_LENGTH}::float8`)}
        ), 1) as length
        from total
      ),
      occurrences as (
        -- The question's terms in each match and how often (its vector marked at them and filtered to them: to_tsvector
        -- marks nothing, so 'A' is only what this marked), without a row for every term of every match.
        select m.id, length(m.search) as length, u.lexeme, coalesce(cardinality(u.positions), 1) as tf
        from matched m
        cross join lateral unnest(ts_filter(setweight(m.search, 'A', (select array_agg(lexeme) from terms)), '{a}')) u
      ),
      bm25 as (
        select o.id,
          sum(idf.weight * o.tf * ${k1Plus1} / (o.tf + ${k1} * (1 - ${b} + ${b} * o.length / average.length))) as score
        from occurrences o join idf on idf.lexeme = o.lexeme, average
        group by o.id
      )`;
}

/** The pseudo-term under which search_terms keeps the number of snippets (a lexeme never contains a space). */
const TOTAL_TERM = " total";
/**
 * The pseudo-term under which search_terms keeps the sum of every snippet's distinct terms (its `length(search)`),
 * which over the total gives BM25 the average length.
 */
const LEXEMES_TERM = " lexemes";
/** A snippet's average length in distinct terms until statistics older than LEXEMES_TERM are recounted. */
const FALLBACK_AVERAGE_LENGTH = 60;
/**
 * Okapi BM25's parameters at their usual values (Robertson & Zaragoza): k1 how fast a repeated word stops adding,
 * b how much a snippet's length (its distinct terms) discounts its words. `deno task eval retrieval`, 2026-12-05:
 * held-out full-text R@1 / R@5 0.684 / 0.886 with ts_rank (no weight for how rare a word is), 0.791 / 0.920 with
 * BM25; a grid of k1 0.9–2.0 and b 0.4–0.9 moved R@5 within ±0.015, so the usual values stand rather than ones
 * fitted to the sets they are reported on. Length as every word counted (the whole vector unnested) gave R@5
 * 0.928 and cost ~6 ms more at p95 at 100,000 snippets on PGlite.
 */
const BM25_K1 = 1.2;
const BM25_B = 0.75;
/** A term in at most this many snippets, or this share of them, is rare enough to search by. */
const RARE_TERM_DOCS = 2000;
const RARE_TERM_SHARE = 0.02;
/**
 * The rarest terms are taken while the snippets they occur in add up to at most this many; when even the rarest
 * is in more, the snippets holding two of the PAIRED_TERMS rarest are ranked instead of all that hold one. The
 * rarer a term, the more it says, and ranking stays bounded. History at 100,000 snippets (bench:request's project
 * corpus, retrieve() called directly): without a budget, a question of mid-frequency words hit an arbitrary
 * 4,000-snippet cap, 84 / 123 ms (p50 / p95) on Postgres; a budget of 500 took that to 6.3 / 11.5 ms, but a
 * question whose rarest term was still in ~2,000 snippets ranked all of them (PGlite p95 144 ms, max 1.7 s on the
 * bench's questions). With 200, pairs and a cap of 300 (2026-12-04, 2-core VM): the bench's questions 15.6 / 25.1
 * ms on Postgres (was 20.1 / 63.0) and 26.4 / 50.6 ms on PGlite (was 37.1 / 143.6); 60 snippets' own questions
 * still all found first; 9-word excerpts of them found first 47% on Postgres (was 15%). The sample-corpus eval
 * moved within a question or two (docs/knowledge.md).
 */
const POSTINGS_BUDGET = 200;
/** Query terms searched by, at most (the rarest). */
const MAX_QUERY_TERMS = 12;
/**
 * When even the rarest term is in more than POSTINGS_BUDGET snippets, snippets with two of this many rarest; those
 * with three of them come first (`three`), so that when more than MATCHED match, those left unranked hold two of
 * them, not three (within each tier the table's order still decides).
 */
const PAIRED_TERMS = 4;
/**
 * Snippets ranked by full text, at most: a bound on the work (which ones, when more match, is the table's order
 * within each tier). `deno task bench:known-items` (nine-word excerpts of 350 of bench:request's 100,000 snippets,
 * PGlite, 2026-12-07; 274 of them searched by pairs), found first / in the top 5: 300 without the tiers 0.569 /
 * 0.657; with them 0.594 / 0.689 at 300, 0.580 / 0.677 at 250, 0.560 / 0.651 at 200. At 300 the tiers' second
 * index scan cost ~0.5 ms at p95 for bench:request's questions (6.5–6.9 → 7.2–8.5 ms); at 250 the search for them
 * took what 300 had without tiers (p50 / p95 3.6–4.3 / 6.5–7.2 against 4.2–4.5 / 6.8–7.2 ms, 3 alternated pairs).
 * Against ranking every match (no cap), for 267 of bench:request's new-subject questions (a script, not kept): the
 * same first source for 251 with 300 untiered, 254 with the tiers at 250; top-5 overlap 0.915 and 0.926. Without
 * the tiers, 150 found 0.451 first. Tried and not kept: snippets with all four rarest first as well (one question
 * in 350 more, for a third index scan); at most 100 or 150 of the pair tier (known items unchanged, but against
 * ranking every match 247 and 251 first sources, for p95 6.2–6.6 against 7.2 ms).
 */
const MATCHED = 250;

/**
 * Recounts how many snippets each full-text term occurs in (after an ingest: ts_stat reads every snippet's
 * tsvector once). Returns the number of terms.
 */
export async function refreshSearchTerms(db: Db): Promise<number> {
  return await db.transaction(async (tx) => {
    await tx.execute(sql`delete from ${searchTerms}`);
    await tx.execute(sql`
      insert into ${searchTerms} (term, ndoc)
      select word, ndoc from ts_stat('select search from snippet_search')`);
    await tx.execute(sql`
      insert into ${searchTerms} (term, ndoc) select ${TOTAL_TERM}, count(*)::int from ${snippets}`);
    await tx.execute(sql`
      insert into ${searchTerms} (term, ndoc)
      select ${LEXEMES_TERM}, coalesce(sum(ndoc), 0)::int from ts_stat('select search from snippet_search')`);
    await settleSearchIndex(tx);
    await tx.execute(sql`analyze ${snippetSearch}`);
    const [row] = await tx.select({ n: count() }).from(searchTerms);
    return Number(row?.n ?? 2) - 2;
  });
}

/**
 * Moves the full-text index's pending entries into the index proper. GIN keeps what was inserted since the last
 * vacuum in a list of up to 4 MB that every search reads in full, and PGlite has no autovacuum: after the ingest
 * of 100,000 snippets the list held 201 pages, and retrieve() for bench:request's questions took p50 / p95
 * 5.7–6.9 / 9.9–12.2 ms on PGlite against 3.9–4.8 / 7.5–9.0 once merged (2026-12-07, docs/performance.md).
 */
async function settleSearchIndex(db: Pick<Db, "execute">): Promise<void> {
  await db.execute(sql`select gin_clean_pending_list('snippet_search_idx'::regclass)`);
}

/**
 * True when snippets exist but their term statistics do not, or lack the word total BM25 needs (a knowledge base
 * from before they were kept).
 */
export async function searchTermsMissing(db: Db): Promise<boolean> {
  // Statistics counted before BM25 lack the word total (LEXEMES_TERM): counted again, once.
  const [tokens] = await db.select({ n: count() }).from(searchTerms).where(
    eq(searchTerms.term, LEXEMES_TERM),
  );
  if (Number(tokens?.n ?? 0) > 0) return false;
  return await hasSnippets(db);
}

/** Where the snippets table's bytes are: in its rows, or out of line in its TOAST table. */
export interface SnippetStorage {
  rows: number;
  tableBytes: number;
  outOfLineBytes: number;
}

/** The snippets table's size, in its rows and out of line (migration 0011 keeps vectors in the row). */
export async function snippetStorage(db: Db): Promise<SnippetStorage> {
  const [row] = rows<{ rows: number; table_bytes: string; out_of_line_bytes: string }>(
    await db.execute(sql`
      select (select count(*)::int from ${snippets}) as rows,
        pg_relation_size(c.oid)::text as table_bytes,
        coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0)::text as out_of_line_bytes
      from pg_class c where c.oid = 'snippets'::regclass`),
  );
  return {
    rows: Number(row.rows),
    tableBytes: Number(row.table_bytes),
    outOfLineBytes: Number(row.out_of_line_bytes),
  };
}

/**
 * Rewrites the snippets table in its current storage layout (VACUUM FULL: an exclusive lock while it runs) and
 * refreshes the planner's statistics. Rows stored before migration 0011 move their vectors into the row.
 */
export async function compactSnippets(db: Db): Promise<void> {
  await db.execute(sql`vacuum full ${snippets}`);
  await db.execute(sql`analyze ${snippets}`);
}

/** Cosine similarity of each listed snippet to the query vector. */
export async function similarities(db: Db, embedding: string, ids: string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const result = await db.select({
    id: snippets.id,
    score: sql<number>`1 - (embedding <=> ${embedding}::vector)`,
  })
    .from(snippets).where(inArray(snippets.id, ids));
  return new Map(result.map((row) => [row.id, Number(row.score)]));
}

/**
 * The first snippet of the exchange that follows a dialogue snippet's in its dialogue ("12#1" → "12#2", "12#2#3" →
 * "12#3"), or null: for a snippet of no dialogue (an uploaded document, a PubMed section, a single question and
 * answer), and after a dialogue's last exchange. With its cosine similarity to the embedding.
 */
export async function nextExchange(
  db: Db,
  id: string,
  embedding: string,
): Promise<{ id: string; similarity: number } | null> {
  if (!isUuid(id)) return null;
  // An exchange's number only where the id has one: the cast must not meet "PMID:1#METHODS" whatever order the
  // planner reads the conditions in.
  const exchange = (column: SQL) =>
    sql`(case when ${column} ~ '^[^#]+#[0-9]{1,9}(#[0-9]{1,9})?$' then split_part(${column}, '#', 2)::int end)`;
  const result = await db.execute(sql`
    select s.id, 1 - (s.embedding <=> ${embedding}::vector) as similarity from ${snippets} t join ${snippets} s
      on s.source = t.source and split_part(s.source_id, '#', 1) = split_part(t.source_id, '#', 1)
    where t.id = ${id} and t.document_id is null and s.document_id is null
      and s.source_id ~ '^[^#]+#[0-9]{1,9}$' and ${exchange(sql`s.source_id`)} > ${exchange(sql`t.source_id`)}
    order by ${exchange(sql`s.source_id`)} limit 1`);
  const [row] = rows<{ id: string; similarity: number }>(result);
  return row ? { id: row.id, similarity: Number(row.similarity) } : null;
}

/** One snippet, or null. */
export async function getSnippet(db: Db, id: string): Promise<Snippet | null> {
  if (!isUuid(id)) return null;
  const [row] = await db.select(SNIPPET_COLUMNS).from(snippets).where(eq(snippets.id, id));
  return row ?? null;
}

/** Several snippets by id, in no particular order. */
export async function getSnippets(db: Db, ids: string[]): Promise<Snippet[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  return await db.select(SNIPPET_COLUMNS).from(snippets).where(inArray(snippets.id, valid));
}

/** Snippet counts per source and specialty. */
export async function sourceCounts(
  db: Db,
): Promise<{ source: string; specialty: string | null; count: number }[]> {
  const result = await db.select({ source: snippets.source, specialty: snippets.specialty, count: count() })
    .from(snippets).groupBy(snippets.source, snippets.specialty).orderBy(snippets.source, snippets.specialty);
  return result.map((row) => ({ ...row, count: Number(row.count) }));
}

/** How many snippets each embedder made. */
export async function storedEmbedders(db: Db): Promise<{ embedder: string; count: number }[]> {
  const result = await db.select({ embedder: snippets.embedder, count: count() }).from(snippets)
    .groupBy(snippets.embedder);
  return result.map((row) => ({ embedder: row.embedder, count: Number(row.count) }));
}

/**
 * Whether the knowledge base holds any snippet: one row looked at, where counting them all reads every row (4–15
 * ms at 100,000 on Postgres, more on PGlite).
 */
export async function hasSnippets(db: Db): Promise<boolean> {
  const [row] = await db.select({ id: snippets.id }).from(snippets).limit(1);
  return row !== undefined;
}

/** Total snippets. */
export async function countSnippets(db: Db): Promise<number> {
  const [row] = await db.select({ n: count() }).from(snippets);
  return Number(row?.n ?? 0);
}

/**
 * A fixed sample of `count` snippets (the same for a knowledge base each time: ordered by the hash of their ids),
 * each with its question (its text when it has none): the known items `deno task bench:known-items` searches for.
 */
export async function sampleSnippets(db: Db, count: number): Promise<{ id: string; question: string }[]> {
  return await db.select({
    id: snippets.id,
    question: sql<string>`coalesce(${snippets.question}, ${snippets.text})`,
  })
    .from(snippets).orderBy(sql`md5(${snippets.id}::text)`).limit(count);
}

/** The next page of snippets not yet embedded by `embedder`, in id order after `afterId`. */
export async function snippetsToReembed(
  db: Db,
  embedder: string,
  options: { afterId: string | null; limit: number },
): Promise<{ id: string; text: string }[]> {
  const conditions = [ne(snippets.embedder, embedder)];
  if (options.afterId) conditions.push(gt(snippets.id, options.afterId));
  return await db.select({ id: snippets.id, text: snippets.text }).from(snippets).where(and(...conditions))
    .orderBy(asc(snippets.id)).limit(options.limit);
}

/** Replaces vectors, recording the embedder that made them. */
export async function updateEmbeddings(
  db: Db,
  embedder: string,
  updates: { id: string; embedding: string }[],
): Promise<void> {
  if (updates.length === 0) return;
  await db.transaction(async (tx) => {
    for (const update of updates) {
      await tx.update(snippets).set({
        embedder,
        embedding: sql`${update.embedding}::vector` as unknown as number[],
      }).where(eq(snippets.id, update.id));
    }
  });
}

/** A source an assistant reply cites, as stored with the reply. */
export interface CitedSource {
  rank: number;
  score: number;
  /** Null when the snippet has since been removed from the knowledge base. */
  snippet: Snippet | null;
}

/**
 * Stores the sources of an assistant reply and how retrieval went (with a note for the clinician, such as
 * PubMed being unreachable), replacing any earlier ones. One statement, so atomic without a transaction: it was
 * five round trips (begin, the reply's evidence, the old sources out, the new in, commit), each of which held
 * PGlite's one connection while a reply was being prepared.
 */
export async function saveMessageSources(
  db: Db,
  messageId: string,
  evidence: { state: EvidenceState; sources: { snippetId: string; score: number }[]; note?: string | null },
): Promise<void> {
  const ranked = evidence.sources.map((source, i) => ({
    rank: i + 1,
    snippetId: source.snippetId,
    score: source.score,
  }));
  // The new sources take the old ones' ranks in place and any ranks past them go: the rows one statement deletes
  // and inserts must not share a key (its parts run in no set order).
  await db.execute(sql`
    with evidence as (
      update ${messages} set evidence = ${evidence.state}${
    evidence.note === undefined ? sql`` : sql`, evidence_note = ${evidence.note}`
  } where id = ${messageId}
    ),
    stale as (
      delete from ${messageSources} where message_id = ${messageId} and rank > ${ranked.length}::int
    )
    insert into ${messageSources} (message_id, rank, snippet_id, score)
    select ${messageId}::uuid, s.rank, s."snippetId", s.score
    from json_to_recordset(${JSON.stringify(ranked)}::json) as s(rank smallint, "snippetId" uuid, score real)
    on conflict (message_id, rank) do update set snippet_id = excluded.snippet_id, score = excluded.score`);
}

/** Which of these PubMed articles the knowledge base already holds (snippets `PMID:<id>#…`). */
export async function storedPmids(db: Db, pmids: string[]): Promise<Set<string>> {
  if (pmids.length === 0) return new Set();
  const found = rows<{ pmid: string }>(
    await db.execute(sql`
      select distinct split_part(substring(source_id from 6), '#', 1) as pmid from snippets
      where source_id like any (${
      sql.raw(`array[${pmids.map((p) => `'PMID:${p.replace(/\D/g, "")}#%'`).join(",")}]`)
    })`),
  );
  return new Set(found.map((r) => r.pmid));
}

/** The cited sources of each listed message, in rank order. */
export async function sourcesOfMessages(db: Db, messageIds: string[]): Promise<Map<string, CitedSource[]>> {
  const bySource = new Map<string, CitedSource[]>();
  if (messageIds.length === 0) return bySource;
  // One reply's (its final render, as it ends) from a statement built once; a page's, with all its replies'.
  const found = messageIds.length === 1
    ? await oneReplySources(db).execute({ messageId: messageIds[0] })
    : await citedSources(db).where(inArray(messageSources.messageId, messageIds)).orderBy(
      messageSources.messageId,
      messageSources.rank,
    );
  for (const row of found) {
    const list = bySource.get(row.messageId) ?? [];
    list.push({ rank: row.rank, score: row.score, snippet: row.snippet?.id ? row.snippet as Snippet : null });
    bySource.set(row.messageId, list);
  }
  return bySource;
}

/** The cited sources' select, before its filter. */
function citedSources(db: Db) {
  return db.select({
    messageId: messageSources.messageId,
    rank: messageSources.rank,
    score: messageSources.score,
    snippet: SNIPPET_COLUMNS,
  }).from(messageSources).leftJoin(snippets, eq(snippets.id, messageSources.snippetId));
}

const oneReplySources = builtOnce((db) =>
  citedSources(db).where(eq(messageSources.messageId, sql.placeholder("messageId")))
    .orderBy(messageSources.rank).prepare("reply_sources")
);

const VECTOR_INDEX = "snippets_embedding_idx";

/**
 * Drops the HNSW index for a bulk load: inserting into a live HNSW graph costs ~5 ms a row, building it once
 * afterwards a fraction of that. Searches fall back to exact scans until ensureVectorIndex runs.
 */
export async function dropVectorIndex(db: Db): Promise<void> {
  await db.execute(sql.raw(`drop index if exists ${VECTOR_INDEX}`));
}

/** How far a vector index build is, as Postgres reports it to other sessions. */
export interface IndexBuildProgress {
  /** Postgres's phase, such as "building index: loading tuples". */
  phase: string;
  /** Snippets linked into the graph so far. */
  rows: number;
  /** Share of the table read, 0–1, or null before the scan starts. */
  fraction: number | null;
}

/**
 * The progress of the vector index build running in another session, or null when none is. Postgres only: PGlite
 * has one session, so this would wait for the build to end.
 */
export async function vectorIndexBuildProgress(db: Db): Promise<IndexBuildProgress | null> {
  const [row] = rows<{ phase: string; blocks_done: string; blocks_total: string; tuples_done: string }>(
    await db.execute(
      sql`select phase, blocks_done, blocks_total, tuples_done from pg_stat_progress_create_index
      where relid = to_regclass('snippets')`,
    ), // the index itself is not visible before the build commits
  );
  if (!row) return null;
  const total = Number(row.blocks_total);
  return {
    phase: row.phase,
    rows: Number(row.tuples_done),
    fraction: total > 0 ? Number(row.blocks_done) / total : null,
  };
}

/** The index's definition; it must match the migration's exactly (db/schema.ts). */
const CREATE_VECTOR_INDEX =
  `create index if not exists ${VECTOR_INDEX} on snippets using hnsw (embedding vector_cosine_ops) ` +
  `with (m = 24, ef_construction = 128)`;

/**
 * Builds the HNSW index when it is missing (after a bulk load, or one that was interrupted). True if it built.
 * Not while a re-embed into another dimension is under way: an index needs the column to declare one.
 */
export async function ensureVectorIndex(
  db: Db,
  options: { maintenanceWorkMem?: string } = {},
): Promise<boolean> {
  const present = rows<{ present: boolean }>(
    await db.execute(sql`select to_regclass(${VECTOR_INDEX}) is not null as present`),
  )[0]?.present;
  if (present || await declaredDimensions(db, "snippets") === null) return false;
  return await db.transaction(async (tx) => {
    // One builder at a time: instances starting together leave it to the first (the others search exactly
    // meanwhile, and find the index when it commits).
    const [lock] = rows<{ locked: boolean }>(
      await tx.execute(sql`select pg_try_advisory_xact_lock(${VECTOR_INDEX_LOCK_KEY}) as locked`),
    );
    if (!lock?.locked) return false;
    const memory = options.maintenanceWorkMem ?? "256MB";
    if (!/^\d+(kB|MB|GB)$/.test(memory)) throw new Error(`Invalid maintenance_work_mem ${memory}`);
    await tx.execute(sql.raw(`set local maintenance_work_mem = '${memory}'`));
    await tx.execute(sql.raw(CREATE_VECTOR_INDEX));
    return true;
  });
}

/** An arbitrary constant: the advisory lock whoever builds the vector index holds. */
const VECTOR_INDEX_LOCK_KEY = 7_406_281_134;

/** The tables with an embedding column: the knowledge base's snippets and the case library. */
export type VectorTable = "snippets" | "cases";

const VECTOR_TABLES: readonly VectorTable[] = ["snippets", "cases"];

/** pgvector's HNSW index takes vectors of at most this many dimensions. */
export const MAX_INDEXED_DIMENSIONS = 2000;

/** One embedding column: the dimension it declares and which embedders made its rows. */
export interface VectorColumn {
  table: VectorTable;
  /** The declared dimension; null while a re-embed into another dimension is under way (or was interrupted). */
  dimensions: number | null;
  /** Rows per embedder id. */
  embedders: { embedder: string; count: number }[];
}

/**
 * The dimension a table's embedding column declares (`vector(384)` → 384), or null when it declares none
 * (a re-embed into another dimension opened it).
 */
export async function declaredDimensions(db: Db, table: VectorTable): Promise<number | null> {
  // pgvector keeps the dimension as the column's type modifier; -1 means none.
  const [row] = rows<{ dimensions: number }>(
    await db.execute(sql`select atttypmod as dimensions from pg_attribute
      where attrelid = to_regclass(${table}) and attname = 'embedding' and not attisdropped`),
  );
  if (!row) throw new Error(`Table ${table} has no embedding column: are the migrations applied?`);
  const dimensions = Number(row.dimensions);
  return dimensions > 0 ? dimensions : null;
}

/** The embedding columns of the knowledge base and the case library, with what made their rows. */
export async function vectorColumns(db: Db): Promise<VectorColumn[]> {
  return [
    {
      table: "snippets",
      dimensions: await declaredDimensions(db, "snippets"),
      embedders: await storedEmbedders(db),
    },
    {
      table: "cases",
      dimensions: await declaredDimensions(db, "cases"),
      embedders: await storedCaseEmbedders(db),
    },
  ];
}

function dimensionsSql(dimensions: number): string {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 16_000) {
    throw new Error(`Cannot store ${dimensions}-dimension vectors: pgvector takes 1 to 16000`);
  }
  return `vector(${dimensions})`;
}

/**
 * Declares `dimensions` on each embedding column whose table is empty (checked with the tables locked, so two
 * instances starting together agree), rebuilding the vector index with it. Returns the tables changed.
 */
export async function switchEmptyVectorColumns(db: Db, dimensions: number): Promise<VectorTable[]> {
  const type = dimensionsSql(dimensions);
  return await db.transaction(async (tx) => {
    await tx.execute(sql.raw(`lock table ${VECTOR_TABLES.join(", ")} in access exclusive mode`));
    const switched: VectorTable[] = [];
    for (const table of VECTOR_TABLES) {
      if (await declaredDimensions(tx, table) === dimensions) continue;
      const [{ present }] = rows<{ present: boolean }>(
        await tx.execute(sql.raw(`select exists (select 1 from ${table}) as present`)),
      );
      if (present) continue;
      if (table === "snippets") await tx.execute(sql.raw(`drop index if exists ${VECTOR_INDEX}`));
      await tx.execute(sql.raw(`alter table ${table} alter column embedding type ${type}`));
      if (table === "snippets") await tx.execute(sql.raw(CREATE_VECTOR_INDEX));
      switched.push(table);
    }
    return switched;
  });
}

/**
 * The start of a re-embed into another dimension: drops the vector index and lets both embedding columns hold
 * vectors of any dimension, so rows can change one by one. Rows that `embedder` made in another dimension (the
 * same name serving another model) are marked stale so that the re-embed takes them too.
 */
export async function openVectorColumns(
  db: Db,
  embedder: { id: string; dimensions: number },
): Promise<void> {
  await dropVectorIndex(db);
  await db.transaction(async (tx) => {
    for (const table of VECTOR_TABLES) {
      // Only the type modifier changes: no table rewrite.
      await tx.execute(sql.raw(`alter table ${table} alter column embedding type vector`));
      await tx.execute(sql`update ${sql.raw(table)} set embedder = 'stale:' || embedder
        where embedder = ${embedder.id} and vector_dims(embedding) <> ${embedder.dimensions}`);
    }
  });
}

/**
 * The end of a re-embed into another dimension: both embedding columns declare `dimensions` again (every row must
 * have it). The vector index is built afterwards (ensureVectorIndex), with its progress shown.
 */
export async function closeVectorColumns(db: Db, dimensions: number): Promise<void> {
  const type = dimensionsSql(dimensions);
  await db.transaction(async (tx) => {
    for (const table of VECTOR_TABLES) {
      await tx.execute(sql.raw(`alter table ${table} alter column embedding type ${type}`));
    }
  });
}

/**
 * Adds (sign 1) or removes (sign −1) one document's snippets' terms to the full-text statistics, and recounts
 * the total and the sum of lengths BM25 averages (call {@link recountSearchTotal} again once removed snippets
 * are deleted): an upload or a deletion updates them in milliseconds where a full refresh reads every snippet.
 */
export async function adjustSearchTerms(
  db: Pick<Db, "execute">,
  documentId: string,
  sign: 1 | -1,
): Promise<void> {
  await db.execute(sql`
    with stat as materialized (
      select word, ndoc
      from ts_stat('select ss.search from snippet_search ss join snippets s on s.id = ss.snippet_id ' ||
        'where s.document_id = ' || quote_literal(${documentId}::text))
    )
    insert into ${searchTerms} (term, ndoc)
    select word, ndoc * ${sign}::int from stat
    union all
    select ${LEXEMES_TERM}, coalesce(sum(ndoc), 0)::int * ${sign}::int from stat
    on conflict (term) do update set ndoc = greatest(0, ${searchTerms.ndoc} + excluded.ndoc)`);
  await db.execute(
    sql`delete from ${searchTerms} where ndoc = 0 and term not in (${TOTAL_TERM}, ${LEXEMES_TERM})`,
  );
  await recountSearchTotal(db);
  if (sign === 1) await settleSearchIndex(db);
}

/** Sets the full-text statistics' snippet total to the count now (after snippets were added or removed). */
export async function recountSearchTotal(db: Pick<Db, "execute">): Promise<void> {
  await db.execute(sql`
    insert into ${searchTerms} (term, ndoc) select ${TOTAL_TERM}, count(*)::int from ${snippets}
    on conflict (term) do update set ndoc = excluded.ndoc`);
}

/** The title the first snippet of a document carries (what the parser found: a PDF's title, a page's h1). */
export async function firstSnippetTitle(db: Db, documentId: string): Promise<string | null> {
  const [row] = await db.select({ title: snippets.title }).from(snippets)
    .where(eq(snippets.documentId, documentId)).orderBy(asc(snippets.page), asc(snippets.createdAt)).limit(1);
  return row?.title ?? null;
}

/** The source name a document's snippets were stored with (the format's default when the uploader gave none). */
export async function firstSnippetSource(db: Db, documentId: string): Promise<string | null> {
  const [row] = await db.select({ source: snippets.source }).from(snippets)
    .where(eq(snippets.documentId, documentId)).limit(1);
  return row?.source ?? null;
}
