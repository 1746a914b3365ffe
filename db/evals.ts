/**
 * Answer evaluations (`deno task eval answers`): each run's figures per model, for the admin page. No question
 * or answer text is stored.
 */
import { desc } from "drizzle-orm";
import type { AnswerFigures } from "../chat/answer_scores.ts";
import type { Db } from "./client.ts";
import { answerEvals } from "./schema.ts";

/** A stored run. */
export type AnswerEvalRun = typeof answerEvals.$inferSelect;

/** Stores a run's figures. */
export async function saveAnswerEval(
  db: Db,
  run: { questionSet: string; questions: number; figures: AnswerFigures[] },
): Promise<AnswerEvalRun> {
  const [row] = await db.insert(answerEvals).values(run).returning();
  return row;
}

/** The latest runs, newest first. */
export async function latestAnswerEvals(db: Db, limit = 20): Promise<AnswerEvalRun[]> {
  return await db.select().from(answerEvals).orderBy(desc(answerEvals.createdAt)).limit(limit);
}
