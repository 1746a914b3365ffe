/**
 * deno task eval answers [--corpus DIR|FILE] [--questions FILE.jsonl] [--model ID]… [--limit N] [--json PATH]
 *
 * Answer quality across models: each question goes through the whole pipeline — retrieval from a knowledge
 * base, the model's template, the redaction gate, the model — and the answers are scored (chat/answer_scores.ts)
 * against the reference answer and the sources quoted. The questions are exchanges held out of the corpus (their
 * own snippets are left out of the index, so a reference is never quoted to the model), or a JSONL file of
 * `{"question", "reference"?, "emergency"?}` over the whole corpus. The knowledge base is an in-memory PGlite,
 * so the app's data is never touched; the figures (no text) are stored in the configured database for the admin
 * page when it can be opened.
 */
import type { Config } from "../config.ts";
import { DatabaseLockedError, openPglite } from "../db/client.ts";
import { saveAnswerEval } from "../db/evals.ts";
import { openTaskDatabase } from "./cli.ts";
import { migrate } from "../db/migrate.ts";
import { openIngestRun, refreshSearchTerms, storeBatch } from "../db/snippets.ts";
import type { Embedder } from "../knowledge/embedder.ts";
import { prepareVectorStore } from "../knowledge/embedder.ts";
import { contentHash, corpusSnippets } from "../knowledge/ingest.ts";
import type { SnippetDraft } from "../knowledge/records.ts";
import { joinChunks } from "../knowledge/snippets.ts";
import { defaultMinScore, referenceBlocks, type Reranker, retrieve } from "../knowledge/retrieve.ts";
import type { Vocabulary } from "../knowledge/vocabulary.ts";
import { streamGeneration } from "../inference/completion.ts";
import type { ModelRegistry, ModelSpec } from "../inference/models.ts";
import { cutAtStop, DEFAULT_SYSTEM_PROMPT } from "../inference/templates.ts";
import { effectiveSettings } from "../chat/answer.ts";
import { type AnswerFigures, scoreAnswer, type ScoredAnswer, summarise } from "../chat/answer_scores.ts";
import { detectRedFlags } from "../safety/red_flags.ts";

/** A problem with what was asked for (no model, an unknown one), in words. */
export class AnswerEvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AnswerEvalError";
  }
}

/**
 * Stores a run's figures in the configured database for the admin page; says what happened. A PGlite directory
 * held by the running server is not an error: the figures are in the JSON file either way.
 */
export async function storeAnswerEval(config: Readonly<Config>, report: AnswerEvalReport): Promise<string> {
  let database;
  try {
    database = await openTaskDatabase(config);
  } catch (error) {
    if (error instanceof DatabaseLockedError) {
      return "Not stored for the admin page: the server holds the PGlite directory (stop it and run again, or " +
        "use a Postgres DATABASE_URL both can share).";
    }
    throw error;
  }
  try {
    await saveAnswerEval(database.db, {
      questionSet: report.questionSet,
      questions: report.questions,
      figures: report.figures,
    });
    return `Stored for the admin page (Administration → Answer quality) in ${database.description}.`;
  } finally {
    await database.close();
  }
}

/** One question of a set. */
export interface EvalQuestion {
  id: string;
  question: string;
  reference: string | null;
  emergency: boolean;
}

/** Parses a question set: one JSON object per line, `question` required; blank lines and `#` comments skipped. */
export function parseQuestions(text: string, fileName: string): EvalQuestion[] {
  const out: EvalQuestion[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`${fileName}:${i + 1}: not JSON`);
    }
    const record = value as Record<string, unknown>;
    if (typeof record?.question !== "string" || !record.question.trim()) {
      throw new Error(`${fileName}:${i + 1}: needs a "question" string`);
    }
    if (record.reference !== undefined && typeof record.reference !== "string") {
      throw new Error(`${fileName}:${i + 1}: "reference" must be a string`);
    }
    if (record.emergency !== undefined && typeof record.emergency !== "boolean") {
      throw new Error(`${fileName}:${i + 1}: "emergency" must be true or false`);
    }
    out.push({
      id: typeof record.id === "string" ? record.id : `${fileName}:${i + 1}`,
      question: record.question,
      reference: (record.reference as string | undefined)?.trim() || null,
      emergency: (record.emergency as boolean | undefined) ?? detectRedFlags(record.question).length > 0,
    });
  });
  return out;
}

/** Up to `limit` of the corpus's question-answer snippets, spread evenly over it (the same ones every run). */
export function holdOut(drafts: readonly SnippetDraft[], limit: number): SnippetDraft[] {
  const candidates = joinChunks(drafts).filter((d) => d.question?.trim());
  if (candidates.length <= limit) return candidates;
  const step = candidates.length / limit;
  return Array.from({ length: limit }, (_, i) => candidates[Math.floor(i * step)]);
}

/** What evaluating answers needs. */
export interface AnswerEvalOptions {
  config: Readonly<Config>;
  models: ModelRegistry;
  /** The models to ask (ids); every configured one when empty. */
  modelIds: string[];
  embedder: Embedder;
  vocabulary: Vocabulary | null;
  reranker: Reranker | null;
  corpus: string;
  /** A question set; absent: exchanges held out of the corpus. */
  questions?: EvalQuestion[];
  limit: number;
  /** Longest wait for one answer. */
  answerTimeoutMs?: number;
  onProgress?: (done: number, total: number) => void;
}

/** A run's report: figures per model, and each answer with its scores. */
export interface AnswerEvalReport {
  at: string;
  questionSet: string;
  questions: number;
  figures: AnswerFigures[];
  answers: { model: string; id: string; question: string; answer: string; result: ScoredAnswer }[];
}

/** Runs the question set through each model and scores the answers. */
export async function evaluateAnswers(options: AnswerEvalOptions): Promise<AnswerEvalReport> {
  const specs = pickModels(options.models, options.modelIds);
  const drafts: SnippetDraft[] = [];
  for await (const draft of corpusSnippets(options.corpus)) drafts.push(draft);
  const heldOut = options.questions ? [] : holdOut(drafts, options.limit);
  const questions: EvalQuestion[] = options.questions?.slice(0, options.limit) ?? heldOut.map((d) => ({
    id: `${d.source}:${d.sourceId}`,
    question: d.question!,
    reference: d.answer,
    emergency: detectRedFlags(d.question!).length > 0,
  }));
  const left = new Set(heldOut.map((d) => d.source + "\u0000" + d.sourceId));
  /** A held-out exchange's snippet, or one of its chunks (`x#2`…). */
  const isHeldOut = (d: SnippetDraft) =>
    left.has(d.source + "\u0000" + d.sourceId) ||
    left.has(d.source + "\u0000" + d.sourceId.replace(/#\d+$/, ""));
  const database = await openPglite();
  try {
    await migrate(database);
    const db = database.db;
    await prepareVectorStore(db, options.embedder);
    // The held-out exchanges, all their chunks, stay out of the index: a reference is never quoted to the model.
    const indexed = drafts.filter((d) => !isHeldOut(d));
    await index(db, options.embedder, indexed);
    const config = options.config;
    const minScore = config.retrievalMinScore ?? defaultMinScore(options.embedder.id);
    const systemPrompt = config.systemPrompt ?? DEFAULT_SYSTEM_PROMPT;
    const report: AnswerEvalReport = {
      at: new Date().toISOString(),
      questionSet: options.questions ? "questions file" : `held out of ${options.corpus}`,
      questions: questions.length,
      figures: [],
      answers: [],
    };
    let done = 0;
    for (const spec of specs) {
      const results: ScoredAnswer[] = [];
      for (const q of questions) {
        const started = performance.now();
        let answer = "";
        let result: ScoredAnswer;
        try {
          const found = await retrieve(db, options.embedder, q.question, {
            k: config.retrievalK,
            minScore,
            vocabulary: options.vocabulary,
            reranker: options.reranker,
            rerankTop: config.rerankTop,
          });
          const references = found.results.length ? referenceBlocks(found.results) : undefined;
          let firstText: number | null = null;
          let outputTokens: number | null = null;
          const stream = streamGeneration(
            options.models,
            spec,
            { system: systemPrompt, history: [], question: q.question, references },
            effectiveSettings(spec, null),
            { signal: AbortSignal.timeout(options.answerTimeoutMs ?? 120_000) },
          );
          for await (const chunk of stream) {
            if (chunk.text && firstText === null) firstText = performance.now() - started;
            answer += chunk.text;
            if (chunk.outputTokens !== undefined) outputTokens = chunk.outputTokens;
          }
          answer = cutAtStop(answer, spec.template.stop).trim();
          result = {
            emergency: q.emergency,
            scores: scoreAnswer(answer, { reference: q.reference, sources: references ?? [] }),
            error: null,
            firstTextMs: firstText,
            totalMs: performance.now() - started,
            outputTokens,
          };
        } catch (error) {
          result = {
            emergency: q.emergency,
            scores: null,
            error: (error as Error)?.message ?? String(error),
            firstTextMs: null,
            totalMs: performance.now() - started,
            outputTokens: null,
          };
        }
        results.push(result);
        report.answers.push({ model: spec.id, id: q.id, question: q.question, answer, result });
        options.onProgress?.(++done, questions.length * specs.length);
      }
      report.figures.push(
        summarise({ id: spec.id, label: spec.label, template: spec.templateName }, results),
      );
    }
    return report;
  } finally {
    await database.close();
  }
}

/** The models asked for, in the order given; every configured one when none is named. */
function pickModels(models: ModelRegistry, ids: string[]): ModelSpec[] {
  const all = models.list();
  if (all.length === 0) {
    throw new Error(
      "No model is configured: set INFERENCE_URL (or MODELS_FILE) to the model server to evaluate.",
    );
  }
  if (ids.length === 0) return all;
  return ids.map((id) => {
    const spec = all.find((m) => m.id === id);
    if (!spec) {
      throw new Error(`No configured model is called "${id}" (there is ${all.map((m) => m.id).join(", ")}).`);
    }
    return spec;
  });
}

/** Stores the drafts in the evaluation's database, embedded, as an ingest would. */
async function index(db: Parameters<typeof storeBatch>[0], embedder: Embedder, drafts: SnippetDraft[]) {
  const { run } = await openIngestRun(db, {
    inputKey: "eval-answers",
    path: "eval",
    format: "eval",
    source: null,
  });
  const seen = new Set<string>();
  const unique = drafts.flatMap((draft) => {
    const hash = contentHash(draft.text);
    if (seen.has(hash)) return [];
    seen.add(hash);
    return [{ draft, hash }];
  });
  for (let i = 0; i < unique.length; i += 256) {
    const batch = unique.slice(i, i + 256);
    const vectors = await embedder.embed(batch.map((b) => b.draft.text));
    await storeBatch(
      db,
      batch.map((b, j) => ({
        ...b.draft,
        contentHash: b.hash,
        embedder: embedder.id,
        embedding: vectors[j],
      })),
      { runId: run.id, recordsDone: 0, duplicates: 0, skipped: 0 },
    );
  }
  await refreshSearchTerms(db);
}
