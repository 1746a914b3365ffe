/**
 * Practice with a simulated patient: starting from a case, and ending with a debrief. The conversation itself
 * is a chat session (routes/chats.ts) whose runner plays the patient.
 */
import { type Context, Hono } from "hono";
import { signedInUser } from "./auth.ts";
import { guardedChat, type Guards } from "./guards.ts";
import { HTTPException } from "hono/http-exception";
import { endPractice, practiceCaseVisible, startPractice } from "../cases/practice_session.ts";
import type { Db } from "../db/client.ts";
import type { ModelRegistry } from "../inference/models.ts";
import type { Lifecycle } from "../lifecycle.ts";
import type { PageContext } from "../views/page.ts";
import { debriefPage } from "../views/practice.tsx";
import type { ModelCallLimiter } from "./model_calls.ts";

/** What the practice routes need. */
export interface PracticeDeps {
  db: Db;
  models: ModelRegistry;
  lifecycle: Lifecycle;
  pageContext: (c: Context, path?: string) => PageContext;
  guards: Guards;
  /** Replace identifiers in the transcript the debrief sends to the model (as the chat does). */
  redactPhi: boolean;
  /** The user's limits on model work (a debrief counts as one model call). */
  modelCalls: ModelCallLimiter;
}

/** The practice routes. */
export function practiceRoutes(deps: PracticeDeps): Hono {
  const app = new Hono();
  const { db } = deps;
  const { audit, ownChat, caseFor } = deps.guards;
  const onChat = { type: "session", param: "id" } as const;

  app.post(
    "/cases/:id/practice",
    audit("practice.start", { type: "case", param: "id" }),
    caseFor("read"),
    async (c) => {
      const chat = await startPractice(db, c.req.param("id"), signedInUser(c).id);
      if (!chat) {
        throw new HTTPException(404, {
          message: "This case is not in the library. It may have been deleted.",
        });
      }
      return c.redirect(`/sessions/${chat.id}`, 303);
    },
  );

  app.post("/sessions/:id/debrief", audit("practice.debrief", onChat), ownChat, async (c) => {
    const id = c.req.param("id");
    // Feedback is a model call, under the user's limits; without a model the debrief is only the score.
    const call = deps.models.get(null)
      ? await deps.modelCalls.begin(signedInUser(c).id, "end the practice")
      : null;
    const debrief = await deps.lifecycle.run((shutdown) =>
      endPractice(db, deps.models, id, AbortSignal.any([c.req.raw.signal, shutdown]), {
        redactPhi: deps.redactPhi,
        onTokens: (tokens) => call?.charge(tokens),
      })
    ).finally(() => call?.end());
    if (!debrief) {
      throw new HTTPException(404, {
        message:
          "There is no practice session here to debrief, or the case it was started from was deleted or " +
          "is no longer shared with you.",
      });
    }
    return c.redirect(`/sessions/${id}/debrief`, 303);
  });

  app.get("/sessions/:id/debrief", audit("practice.read", onChat), ownChat, async (c) => {
    const id = c.req.param("id");
    const chat = guardedChat(c);
    if (chat.kind !== "practice") {
      throw new HTTPException(404, { message: "There is no practice session here." });
    }
    if (!chat.debrief) {
      throw new HTTPException(404, {
        message: "This practice session has not been ended yet: use End and debrief.",
      });
    }
    // The debrief quotes the case's checklist and diagnosis: it goes with the case when it is unshared.
    if (!(await practiceCaseVisible(db, chat))) {
      throw new HTTPException(404, {
        message:
          "The case this practice was started from was deleted or is no longer shared with you, so its " +
          "debrief is no longer shown. Your own messages are still in the session.",
      });
    }
    return c.html(debriefPage(deps.pageContext(c), {
      sessionId: id,
      caseId: chat.caseId,
      debrief: chat.debrief,
    }));
  });

  return app;
}
