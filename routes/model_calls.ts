/**
 * The per-user limits on model work that is not a chat reply: a case generation (up to three model calls) and
 * a practice debrief. The same limits as chat messages (issue 19, item 10): they count against the user's
 * messages per minute, their generated tokens against the daily budget, and together with the user's replies
 * being written they are capped at MAX_CONCURRENT_STREAMS.
 *
 * The minute and the budget are counted in the database (any instance); generations and debriefs running are
 * counted by this instance, beside the replies the database says are being written.
 */
import { HTTPException } from "hono/http-exception";
import type { Db } from "../db/client.ts";
import { addTokensForUser, sendAllowance } from "../db/limits.ts";
import type { SecurityConfig } from "../config.ts";

/** One piece of model work under way for a user: charge what it generated, then end it. */
export interface ModelCall {
  /** Adds generated tokens to the user's count for today. */
  charge(tokens: number): Promise<void>;
  /** Frees the slot (idempotent). */
  end(): void;
}

/** Starts model work for a user, or refuses it with a 429 in plain words. */
export interface ModelCallLimiter {
  begin(userId: string, what: string): Promise<ModelCall>;
  /** Generations and debriefs the user has running on this instance (chat replies count them too). */
  running(userId: string): number;
}

/** A limiter over the configured limits. */
export function createModelCallLimiter(
  db: Db,
  security: Pick<SecurityConfig, "messagesPerMinute" | "dailyTokenBudget" | "maxConcurrentStreams">,
): ModelCallLimiter {
  const running = new Map<string, number>();
  const release = (userId: string) => {
    const n = (running.get(userId) ?? 1) - 1;
    if (n > 0) running.set(userId, n);
    else running.delete(userId);
  };
  return {
    running: (userId) => running.get(userId) ?? 0,
    async begin(userId, what) {
      // The slot is taken before the database is asked, so two requests at once cannot both see room.
      const mine = (running.get(userId) ?? 0) + 1;
      running.set(userId, mine);
      try {
        const max = security.maxConcurrentStreams;
        const allowance = await sendAllowance(db, userId, {
          maxActive: Math.max(0, max - (mine - 1)),
          dailyTokens: security.dailyTokenBudget,
          windowMs: 60_000,
        });
        if (allowance.active + mine > max) {
          throw refusal(
            `${max} of your replies, case generations or debriefs are running already. Wait for one to ` +
              `finish, then ${what} again.`,
          );
        }
        if (security.dailyTokenBudget > 0 && allowance.tokensToday >= security.dailyTokenBudget) {
          throw refusal(
            `You have used today's budget of ${security.dailyTokenBudget.toLocaleString("en")} generated ` +
              `tokens. It renews at midnight UTC; your Rounds administrator can raise it.`,
          );
        }
        const rate = allowance.rate!;
        if (rate.count > security.messagesPerMinute) {
          throw refusal(
            `You have asked the model ${security.messagesPerMinute} times this minute, the most Rounds ` +
              `allows. Wait ${rate.resetInSeconds} s, then ${what} again.`,
          );
        }
      } catch (error) {
        release(userId);
        throw error;
      }
      let ended = false;
      return {
        charge: async (tokens) => {
          if (tokens > 0) await addTokensForUser(db, userId, tokens);
        },
        end: () => {
          if (ended) return;
          ended = true;
          release(userId);
        },
      };
    },
  };
}

function refusal(message: string): HTTPException {
  return new HTTPException(429, { message });
}
