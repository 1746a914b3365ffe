/**
 * deno task eval retrieval [--corpus DIR|FILE] [--source S]… [--json PATH]
 *
 * Retrieval quality on held-out exchanges: every snippet that pairs a question with an answer is indexed by its
 * answer alone (question and title removed), then its question is asked; the hit is the snippet's own answer
 * (for MASHQA, its answer sentences). Literature snippets stay in the index whole, as distractors. Prints
 * recall@1/5/10 and MRR per source for hybrid, vector-only and full-text-only retrieval, and how a minimum
 * similarity separates real matches from questions the corpus cannot answer. Runs on an in-memory PGlite with
 * the configured embedder, so it never touches the app's data.
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { loadConfig } from "../config.ts";
import { openPglite } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import {
  openIngestRun,
  refreshSearchTerms,
  storeBatch,
  textCandidates,
  vectorCandidates,
} from "../db/snippets.ts";
import { createEmbedder } from "../inference/embeddings.ts";
import { createConfiguredReranker } from "../inference/rerank.ts";
import { prepareVectorStore, vectorLiteral } from "../knowledge/embedder.ts";
import { contentHash, corpusSnippets, SAMPLE_CORPUS } from "../knowledge/ingest.ts";
import type { SnippetDraft } from "../knowledge/records.ts";
import { defaultMinScore, retrieve } from "../knowledge/retrieve.ts";
import { expandQuery, loadVocabulary } from "../knowledge/vocabulary.ts";
import { parseTaskArgs, runTask, TaskExit } from "./cli.ts";
import { type Progress, startProgress } from "./progress.ts";
import { evaluatePhi, formatPhiReport } from "./eval_phi.ts";
import { evaluateRedFlags, formatRedFlagReport } from "./eval_red_flags.ts";
import { evaluateTokens, formatTokenReport } from "./eval_tokens.ts";
import { evaluateFollowUps, formatFollowUpReport } from "./eval_follow_ups.ts";
import { retrievalQuery } from "../chat/follow_up.ts";
import { formatFigures } from "../chat/answer_scores.ts";
import { loadModels, ModelsError } from "../inference/models.ts";
import {
  AnswerEvalError,
  type EvalQuestion,
  evaluateAnswers,
  parseQuestions,
  storeAnswerEval,
} from "./eval_answers.ts";

const USAGE = `Usage: deno task eval retrieval [--corpus DIR|FILE] [--source S]… [--json PATH]
       deno task eval redflags [FILE…] [--json PATH]   red-flag recall and false-positive rate
       deno task eval phi [FILE…] [--json PATH]        PHI redaction precision and recall
       deno task eval tokens [--json PATH]             token estimates against Llama-2's tokenizer
       deno task eval followups [FILE…] [--json PATH]  follow-ups found, topic switches kept new
       deno task eval answers [--corpus DIR|FILE] [--questions FILE.jsonl] [--model ID]… [--limit N] [--json PATH]
                                                       answers of each model through the whole pipeline, scored

  --corpus   dataset file or directory (default: the sample corpus, data/corpus)
  --source   evaluate only questions from this source (repeatable; the index always holds everything)
  --json     where to write the figures (default: .data/eval/<what>.json)
  --questions  answers: a JSONL question set ({"question", "reference"?, "emergency"?} per line) instead of
               exchanges held out of the corpus
  --model      answers: a configured model's id (repeatable; default: every configured model)
  --limit      answers: questions at most (default 40)`;

/** Questions no snippet of a clinical corpus should answer: they show where the minimum similarity belongs. */
const OFF_TOPIC = [
  "How do I change a flat tyre on a bicycle?",
  "What is the capital city of Australia?",
  "Best way to cook rice without it sticking",
  "How many players are on a football team?",
  "Can you recommend a good science fiction novel?",
  "How do I reset my wifi router password?",
  "What time does the sun set in winter?",
  "How to plant tomatoes on a balcony",
  "Explain how compound interest works",
  "Which programming language should I learn first?",
  "How long should I boil an egg for a soft yolk?",
  "What is the difference between a violin and a viola?",
];

const MODES = ["hybrid", "vector", "text"] as const;
type Mode = typeof MODES[number];

interface Query {
  source: string;
  question: string;
  target: string;
  /** The patient's earlier questions in the same dialogue, oldest first (what chat would have before it). */
  earlier: string[];
  /** Every snippet of the question's own answer (a long answer is stored in parts). */
  answer: Set<string>;
  /** Its dialogue: source and dialogue id ("Sample dialogues|1021"). */
  dialogue: string;
}

async function main(): Promise<number> {
  const parsed = parseTaskArgs(() =>
    parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        corpus: { type: "string" },
        source: { type: "string", multiple: true },
        json: { type: "string" },
        questions: { type: "string" },
        model: { type: "string", multiple: true },
        limit: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }), USAGE);
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals[0] === "redflags" || positionals[0] === "phi") {
    const files = positionals.slice(1);
    const report = positionals[0] === "phi"
      ? await evaluatePhi(files.length ? files : undefined)
      : await evaluateRedFlags(files.length ? files : undefined);
    console.log(
      positionals[0] === "phi"
        ? formatPhiReport(report as Awaited<ReturnType<typeof evaluatePhi>>)
        : formatRedFlagReport(report as Awaited<ReturnType<typeof evaluateRedFlags>>),
    );
    const out = values.json ?? `.data/eval/${positionals[0]}.json`;
    await Deno.mkdir(dirname(out), { recursive: true });
    await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
    console.log(`\nfigures written to ${out}`);
    return 0;
  }
  if (positionals[0] === "followups") {
    const files = positionals.slice(1);
    const reports = await evaluateFollowUps(files.length ? files : undefined);
    console.log(formatFollowUpReport(reports));
    const out = values.json ?? ".data/eval/followups.json";
    await Deno.mkdir(dirname(out), { recursive: true });
    await Deno.writeTextFile(out, JSON.stringify(reports, null, 2) + "\n");
    console.log(`figures written to ${out}`);
    return 0;
  }
  if (positionals[0] === "answers") return await runAnswers(values);
  if (positionals[0] === "tokens") {
    const figures = await evaluateTokens();
    console.log(formatTokenReport(figures));
    const out = values.json ?? ".data/eval/tokens.json";
    await Deno.mkdir(dirname(out), { recursive: true });
    await Deno.writeTextFile(
      out,
      JSON.stringify({ task: "tokens", at: new Date().toISOString(), figures }, null, 2) + "\n",
    );
    console.log(`\nfigures written to ${out}`);
    return 0;
  }
  if (positionals[0] !== "retrieval") {
    console.error(
      `Name what to evaluate: retrieval, answers, redflags, phi, tokens or followups.\n\n${USAGE}`,
    );
    return 2;
  }
  const config = loadConfig(Deno.env.toObject());
  const corpus = values.corpus ?? SAMPLE_CORPUS.pathname;
  const outPath = values.json ?? ".data/eval/retrieval.json";
  const embedder = await createEmbedder(config);
  // With RERANK_URL, the hybrid is also asked through the reranker (the rows "+ reranker").
  const reranker = await createConfiguredReranker(config);
  const minScore = config.retrievalMinScore ?? defaultMinScore(embedder.id);

  // 1. Read the corpus; every question-answer snippet becomes a held-out query.
  const drafts: SnippetDraft[] = [];
  for await (const snippet of corpusSnippets(corpus)) drafts.push(snippet);
  const database = await openPglite();
  try {
    await migrate(database);
    const db = database.db;
    await prepareVectorStore(db, embedder); // a fresh database takes the embedder's dimension
    const { run } = await openIngestRun(db, { inputKey: "eval", path: corpus, format: "eval", source: null });
    const queries: Query[] = [];
    const seen = new Set<string>();
    const indexed = drafts.flatMap((draft) => {
      const heldOut = draft.question !== null && draft.question.trim() !== "";
      const text = heldOut ? draft.answer : draft.text;
      const hash = contentHash(text);
      if (seen.has(hash)) return [];
      seen.add(hash);
      return [{ draft, text, hash, heldOut }];
    });
    const progress = startProgress("indexing", { unit: "snippets", total: indexed.length });
    for (let i = 0; i < indexed.length; i += 256) {
      const batch = indexed.slice(i, i + 256);
      const vectors = await embedder.embed(batch.map((b) => b.text));
      await storeBatch(
        db,
        batch.map((b, j) => ({
          ...b.draft,
          text: b.text,
          title: b.heldOut ? null : b.draft.title,
          question: null,
          contentHash: b.hash,
          embedder: embedder.id,
          embedding: vectors[j],
        })),
        { runId: run.id, recordsDone: 0, duplicates: 0, skipped: 0 },
      );
      progress.update(Math.min(i + 256, indexed.length));
    }
    progress.finish();
    // As after `deno task ingest`: full-text search ranks by the rarer terms, counted here.
    await refreshSearchTerms(db);
    const stored = await database.client.query("select id, content_hash from snippets");
    const idOf = new Map(
      (stored.rows as { id: string; content_hash: string }[]).map((r) => [r.content_hash, r.id]),
    );
    // A dialogue's questions in order ("12#1", "12#2"…; a part of a long answer repeats its question).
    const dialogues = new Map<string, string[]>();
    const parts = new Map<string, Set<string>>();
    for (const item of indexed) {
      if (!item.heldOut) continue;
      const dialogue = `${item.draft.source}|${item.draft.sourceId.split("#")[0]}`;
      const asked = dialogues.get(dialogue) ?? [];
      dialogues.set(dialogue, asked);
      if (!asked.includes(item.draft.question!)) asked.push(item.draft.question!);
      const exchange = `${dialogue}|${item.draft.question}`;
      parts.set(exchange, (parts.get(exchange) ?? new Set()).add(idOf.get(item.hash)!));
    }
    for (const item of indexed) {
      if (!item.heldOut) continue;
      if (values.source?.length && !values.source.includes(item.draft.source)) continue;
      const dialogue = `${item.draft.source}|${item.draft.sourceId.split("#")[0]}`;
      const asked = dialogues.get(dialogue)!;
      queries.push({
        source: item.draft.source,
        question: item.draft.question!,
        target: idOf.get(item.hash)!,
        earlier: asked.slice(0, asked.indexOf(item.draft.question!)),
        answer: parts.get(`${dialogue}|${item.draft.question}`)!,
        dialogue,
      });
    }
    if (queries.length === 0) {
      console.error(
        `No question-answer snippets to evaluate${values.source ? ` for ${values.source.join(", ")}` : ""}.`,
      );
      return 1;
    }

    // 2. Ask every question in every mode.
    const ranks: Record<Mode, number[]> = { hybrid: [], vector: [], text: [] };
    const topScores: number[] = [];
    /** Every held-out question's first source: its similarity, and whether it is the question's own answer. */
    const firstSources: { score: number; correct: boolean }[] = [];
    const ask = startProgress("asking", { unit: "questions", total: queries.length });
    for (const [i, q] of queries.entries()) {
      const hybrid = await retrieve(db, embedder, q.question, { k: 10, minScore: 0 });
      const hit = hybrid.results.findIndex((r) => r.snippet.id === q.target);
      ranks.hybrid.push(hit === -1 ? 0 : hit + 1);
      if (hit === 0) topScores.push(hybrid.results[0].score);
      if (hybrid.results.length) firstSources.push({ score: hybrid.results[0].score, correct: hit === 0 });
      const [vector] = await embedder.embed([q.question]);
      const byVector = await vectorCandidates(db, vectorLiteral(vector), { limit: 10 });
      ranks.vector.push(byVector.findIndex((c) => c.id === q.target) + 1);
      const byText = await textCandidates(db, q.question, { limit: 10 });
      ranks.text.push(byText.findIndex((c) => c.id === q.target) + 1);
      ask.update(i + 1);
    }
    ask.finish();
    // 2b. Paraphrased questions: a clinician's words for a dialogue written in a patient's (and the other way),
    // each mode with and without the clinical vocabulary.
    const vocabulary = await loadVocabulary(config.clinicalVocabulary);
    const paraphrases = values.source?.length ? [] : await readParaphrases(queries);
    const paraphraseRanks: Record<string, number[]> = {};
    for (const withVocabulary of [false, true]) {
      for (const mode of MODES) paraphraseRanks[`${mode}${withVocabulary ? " + vocabulary" : ""}`] = [];
      for (const p of paraphrases) {
        const question = withVocabulary ? expandQuery(p.question, vocabulary) : p.question;
        const suffix = withVocabulary ? " + vocabulary" : "";
        const rankOf = (ids: string[]) => ids.findIndex((id) => p.targets.has(id)) + 1;
        const hybrid = await retrieve(db, embedder, question, { k: 10, minScore: 0 });
        paraphraseRanks[`hybrid${suffix}`].push(rankOf(hybrid.results.map((r) => r.snippet.id)));
        const [vector] = await embedder.embed([question]);
        const byVector = await vectorCandidates(db, vectorLiteral(vector), { limit: 10 });
        paraphraseRanks[`vector${suffix}`].push(rankOf(byVector.map((c) => c.id)));
        const byText = await textCandidates(db, question, { limit: 10 });
        paraphraseRanks[`text${suffix}`].push(rankOf(byText.map((c) => c.id)));
        if (reranker && withVocabulary) {
          const reranked = await retrieve(db, embedder, p.question, {
            k: 10,
            minScore: 0,
            vocabulary,
            reranker,
            rerankTop: config.rerankTop,
          });
          (paraphraseRanks["hybrid + vocabulary + reranker"] ??= []).push(
            rankOf(reranked.results.map((r) => r.snippet.id)),
          );
        }
      }
    }
    // The held-out questions again with the vocabulary, in every mode: it must not cost them. And as chat asks
    // them: within their dialogue (a follow-up carries the questions it continues, chat/follow_up.ts), any part of
    // the question's own answer counting as found.
    const heldOutWithVocabulary: Record<Mode, number[]> = { hybrid: [], vector: [], text: [] };
    const heldOutReranked: number[] = [];
    const inConversation: number[] = [];
    let followUps = 0;
    /** Follow-ups whose first source is from their own dialogue (their own answer, or an earlier exchange's). */
    let followUpsDialogueFirst = 0;
    /** Follow-ups whose own answer is among the first five. */
    let followUpsFound = 0;
    for (const q of queries) {
      const query = retrievalQuery(q.question, q.earlier);
      const asked = await retrieve(db, embedder, query, {
        k: 10,
        minScore: 0,
        vocabulary,
        followUp: query !== q.question,
      });
      inConversation.push(asked.results.findIndex((r) => q.answer.has(r.snippet.id)) + 1);
      if (query === q.question) continue;
      followUps++;
      const first = asked.results[0]?.snippet;
      if (first && `${first.source}|${first.sourceId.split("#")[0]}` === q.dialogue) followUpsDialogueFirst++;
      const found = inConversation.at(-1)!;
      if (found > 0 && found <= 5) followUpsFound++;
    }
    for (const q of queries) {
      const rankOf = (ids: string[]) => ids.indexOf(q.target) + 1;
      const hybrid = await retrieve(db, embedder, q.question, { k: 10, minScore: 0, vocabulary });
      heldOutWithVocabulary.hybrid.push(rankOf(hybrid.results.map((r) => r.snippet.id)));
      if (reranker) {
        const reranked = await retrieve(db, embedder, q.question, {
          k: 10,
          minScore: 0,
          vocabulary,
          reranker,
          rerankTop: config.rerankTop,
        });
        heldOutReranked.push(rankOf(reranked.results.map((r) => r.snippet.id)));
      }
      const expanded = expandQuery(q.question, vocabulary);
      const [vector] = await embedder.embed([expanded]);
      heldOutWithVocabulary.vector.push(
        rankOf((await vectorCandidates(db, vectorLiteral(vector), { limit: 10 })).map((c) => c.id)),
      );
      heldOutWithVocabulary.text.push(
        rankOf((await textCandidates(db, expanded, { limit: 10 })).map((c) => c.id)),
      );
    }
    // Topic switches: each paraphrased question asked right after another dialogue's, as chat asks it (the
    // previous question joins only a follow-up; chat/follow_up.ts). An error is a switch whose query carried
    // the previous question, or whose first source is the previous question's dialogue.
    const switchRanks: Record<Mode, number[]> = { hybrid: [], vector: [], text: [] };
    let switchesCarried = 0;
    let previousFirst = 0;
    const switches = paraphrases.flatMap((p, i) => {
      const previous = paraphrases[(i + SWITCH_OFFSET) % paraphrases.length];
      return [...previous.targets].some((id) => p.targets.has(id)) ? [] : [{ ...p, previous }];
    });
    for (const s of switches) {
      const query = retrievalQuery(s.question, [s.previous.question]);
      if (query !== s.question) switchesCarried++;
      const rankOf = (ids: string[]) => ids.findIndex((id) => s.targets.has(id)) + 1;
      const hybrid = await retrieve(db, embedder, query, {
        k: 10,
        minScore: 0,
        vocabulary,
        followUp: query !== s.question,
      });
      const ids = hybrid.results.map((r) => r.snippet.id);
      if (ids.length && s.previous.targets.has(ids[0])) previousFirst++;
      switchRanks.hybrid.push(rankOf(ids));
      const expanded = expandQuery(query, vocabulary);
      const [vector] = await embedder.embed([expanded]);
      switchRanks.vector.push(
        rankOf((await vectorCandidates(db, vectorLiteral(vector), { limit: 10 })).map((c) => c.id)),
      );
      switchRanks.text.push(rankOf((await textCandidates(db, expanded, { limit: 10 })).map((c) => c.id)));
    }

    const offTopic: number[] = [];
    for (const question of OFF_TOPIC) {
      const result = await retrieve(db, embedder, question, { k: 1, minScore: 0 });
      offTopic.push(result.bestScore ?? 0);
    }

    // 3. Report.
    const sources = [...new Set(queries.map((q) => q.source))].sort();
    const rows: Record<string, unknown>[] = [];
    const line = (cells: string[]) =>
      console.log(cells.map((c, i) => i === 0 ? c.padEnd(36) : c.padStart(8)).join(" "));
    console.log(
      `\nRetrieval on held-out exchanges · ${drafts.length} snippets parsed, ${indexed.length} indexed · ` +
        `embedder ${embedder.id}${reranker ? ` · ${reranker.description}` : ""}\n`,
    );
    line(["source / mode", "queries", "R@1", "R@5", "R@10", "MRR"]);
    for (const source of [...sources, "all"]) {
      for (const mode of MODES) {
        const picked = ranks[mode].filter((_, i) => source === "all" || queries[i].source === source);
        const figures = metrics(picked);
        rows.push({ source, mode, queries: picked.length, ...figures });
        line([
          `${source} · ${mode}`,
          String(picked.length),
          figures.recallAt1.toFixed(3),
          figures.recallAt5.toFixed(3),
          figures.recallAt10.toFixed(3),
          figures.mrr.toFixed(3),
        ]);
      }
    }
    const heldOutRows: [string, number[]][] = MODES.map((
      mode,
    ) => [`${mode} + vocabulary`, heldOutWithVocabulary[mode]]);
    if (reranker) heldOutRows.push(["hybrid + vocabulary + reranker", heldOutReranked]);
    heldOutRows.push(["as chat asks (in its dialogue)", inConversation]);
    for (const [mode, picked] of heldOutRows) {
      const figures = metrics(picked);
      rows.push({ source: "all", mode, queries: queries.length, ...figures });
      line([
        `all · ${mode}`,
        String(queries.length),
        figures.recallAt1.toFixed(3),
        figures.recallAt5.toFixed(3),
        figures.recallAt10.toFixed(3),
        figures.mrr.toFixed(3),
      ]);
    }
    console.log(
      `  as chat asks: hybrid + vocabulary; ${followUps} of ${queries.length} questions read as follow-ups carried ` +
        `their dialogue's earlier question (${followUpsDialogueFirst} of them get their own dialogue first, ` +
        `${followUpsFound} their own answer in the first five); a ` +
        `part of the question's own answer counts as found`,
    );
    const paraphraseRows: Record<string, unknown>[] = [];
    if (paraphrases.length) {
      console.log(
        `\nParaphrased questions (${PARAPHRASES.pathname.split("/").pop()}, ${paraphrases.length})\n`,
      );
      line(["mode", "queries", "R@1", "R@5", "R@10", "MRR"]);
      for (const [mode, picked] of Object.entries(paraphraseRanks)) {
        const figures = metrics(picked);
        paraphraseRows.push({ mode, queries: picked.length, ...figures });
        line([
          mode,
          String(picked.length),
          figures.recallAt1.toFixed(3),
          figures.recallAt5.toFixed(3),
          figures.recallAt10.toFixed(3),
          figures.mrr.toFixed(3),
        ]);
      }
    }
    const switchRows: Record<string, unknown>[] = [];
    if (switches.length) {
      console.log(
        `\nTopic switches (each paraphrased question after another dialogue's, ${switches.length}; ` +
          `with the vocabulary, as chat asks)\n`,
      );
      line(["mode", "queries", "R@1", "R@5", "R@10", "MRR"]);
      for (const mode of MODES) {
        const figures = metrics(switchRanks[mode]);
        switchRows.push({ mode, queries: switches.length, ...figures });
        line([
          mode,
          String(switches.length),
          figures.recallAt1.toFixed(3),
          figures.recallAt5.toFixed(3),
          figures.recallAt10.toFixed(3),
          figures.mrr.toFixed(3),
        ]);
      }
      console.log(
        `  topic-switch errors: ${switchesCarried + previousFirst} (previous question carried into the ` +
          `search ${switchesCarried}, previous dialogue first ${previousFirst})`,
      );
    }
    // The threshold's trade-off: recall is the share of held-out questions whose own answer comes first and is
    // kept; precision the share of first sources kept (held-out and off-topic questions alike) that are the
    // question's own answer. Another dialogue on the same subject counts as wrong, so precision is a lower bound.
    const correct = firstSources.filter((f) => f.correct).length;
    const thresholds = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5].map((t) => {
      const keptCorrect = firstSources.filter((f) => f.correct && f.score >= t).length;
      const kept = firstSources.filter((f) => f.score >= t).length + offTopic.filter((s) => s >= t).length;
      const recall = correct ? keptCorrect / correct : 0;
      const precision = kept ? keptCorrect / kept : 0;
      return {
        threshold: t,
        correctTopHitsKept: share(topScores, (s) => s >= t),
        offTopicRejected: share(offTopic, (s) => s < t),
        precision,
        recall,
        f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
      };
    });
    const best = thresholds.reduce((a, b) => (b.f1 > a.f1 ? b : a));
    console.log(
      `\nMinimum similarity (current ${minScore}): precision and recall of the first source, off-topic questions ` +
        `rejected (${OFF_TOPIC.length})`,
    );
    for (const t of thresholds) {
      const pct = (n: number) => `${(n * 100).toFixed(1).padStart(5)}%`;
      console.log(
        `  ${t.threshold.toFixed(2)}  precision ${pct(t.precision)}  recall ${pct(t.recall)}  F1 ${
          t.f1.toFixed(3)
        }  off-topic rejected ${pct(t.offTopicRejected)}` +
          (t.threshold === minScore ? "  ← current" : "") + (t === best ? "  ← best F1" : ""),
      );
    }
    const report = {
      task: "retrieval",
      at: new Date().toISOString(),
      corpus,
      embedder: embedder.id,
      snippetsParsed: drafts.length,
      snippetsIndexed: indexed.length,
      minScore,
      results: rows,
      paraphrases: paraphraseRows,
      topicSwitches: { results: switchRows, carried: switchesCarried, previousFirst },
      followUps: {
        carried: followUps,
        ownDialogueFirst: followUpsDialogueFirst,
        ownAnswerInFive: followUpsFound,
      },
      thresholds,
      bestF1Threshold: best.threshold,
      offTopicBestScores: offTopic,
    };
    await Deno.mkdir(dirname(outPath), { recursive: true });
    await Deno.writeTextFile(outPath, JSON.stringify(report, null, 2) + "\n");
    console.log(`\nWritten to ${outPath}`);
    return 0;
  } finally {
    await database.close();
  }
}

/** Paraphrased questions, each naming its dialogue by words of that dialogue's own question. */
const PARAPHRASES = new URL("../data/eval/retrieval_paraphrase.jsonl", import.meta.url);
/** Each topic switch's previous question is the paraphrase this many lines further on (another dialogue). */
const SWITCH_OFFSET = 7;

/** The paraphrase set with, for each question, the held-out snippets of the dialogue it means. */
async function readParaphrases(queries: Query[]): Promise<{ question: string; targets: Set<string> }[]> {
  const lines = (await Deno.readTextFile(PARAPHRASES)).split("\n").filter((l) => l.trim());
  return lines.map((raw, i) => {
    const { question, target } = JSON.parse(raw) as { question: string; target: string };
    const targets = new Set(queries.filter((q) => q.question.includes(target)).map((q) => q.target));
    if (!targets.size) throw new Error(`${PARAPHRASES.pathname} line ${i + 1}: no dialogue asks "${target}"`);
    return { question, targets };
  });
}

function metrics(ranks: number[]): { recallAt1: number; recallAt5: number; recallAt10: number; mrr: number } {
  const n = ranks.length || 1;
  return {
    recallAt1: ranks.filter((r) => r === 1).length / n,
    recallAt5: ranks.filter((r) => r >= 1 && r <= 5).length / n,
    recallAt10: ranks.filter((r) => r >= 1 && r <= 10).length / n,
    mrr: ranks.reduce((sum, r) => sum + (r > 0 ? 1 / r : 0), 0) / n,
  };
}

function share(values: number[], test: (v: number) => boolean): number {
  return values.length ? values.filter(test).length / values.length : 0;
}

/** `deno task eval answers`: every configured (or named) model answers the question set; figures side by side. */
async function runAnswers(values: {
  corpus?: string;
  json?: string;
  questions?: string;
  model?: string[];
  limit?: string;
}): Promise<number> {
  const limit = Number(values.limit ?? 40);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new TaskExit(2, `--limit must be a whole number from 1 to 10000, got ${values.limit}`);
  }
  const config = loadConfig(Deno.env.toObject());
  const models = await loadModels(config, { readTextFile: Deno.readTextFile, env: Deno.env.toObject() })
    .catch((error) => {
      throw error instanceof ModelsError ? new TaskExit(1, error.message) : error;
    });
  let questions: EvalQuestion[] | undefined;
  if (values.questions) {
    const text = await Deno.readTextFile(values.questions).catch(() => {
      throw new TaskExit(1, `Cannot read the question set ${values.questions}`);
    });
    try {
      questions = parseQuestions(text, values.questions);
    } catch (error) {
      throw new TaskExit(1, (error as Error).message);
    }
    if (questions.length === 0) throw new TaskExit(1, `${values.questions} holds no questions.`);
  }
  let progress: Progress | null = null;
  let report;
  try {
    report = await evaluateAnswers({
      config,
      models,
      modelIds: values.model ?? [],
      embedder: await createEmbedder(config),
      vocabulary: await loadVocabulary(config.clinicalVocabulary),
      reranker: await createConfiguredReranker(config),
      corpus: values.corpus ?? SAMPLE_CORPUS.pathname,
      questions,
      limit,
      onProgress: (done, total) => {
        progress ??= startProgress("answering", { unit: "answers", total });
        progress.update(done);
      },
    });
  } catch (error) {
    if (error instanceof AnswerEvalError) throw new TaskExit(1, error.message);
    throw error;
  } finally {
    (progress as Progress | null)?.finish();
  }
  console.log(`${report.questions} questions (${report.questionSet})\n`);
  console.log(formatFigures(report.figures));
  const errors = report.answers.filter((a) => a.result.error);
  if (errors.length) console.log(`\nfirst error: ${errors[0].result.error}`);
  const out = values.json ?? ".data/eval/answers.json";
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify({ task: "answers", ...report }, null, 2) + "\n");
  console.log(`\nfigures and answers written to ${out}`);
  console.log(await storeAnswerEval(config, report));
  return 0;
}

if (import.meta.main) Deno.exit(await runTask(main));
