/**
 * The chat: sessions, messages streamed as server-sent events, Stop, regenerate / continue, feedback, settings.
 */
import type { ModelCallLimiter } from "./model_calls.ts";
import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Db } from "../db/client.ts";
import { getMessage, isTerminal, listMessages, type Message, setFeedback } from "../db/messages.ts";
import {
  type Chat,
  clearChat,
  createChat,
  DEFAULT_TITLE,
  deleteChat,
  getChat,
  listChats,
  renameChat,
  updateChatSettings,
} from "../db/chats.ts";
import { sourcesOfMessages } from "../db/snippets.ts";
import type { ModelRegistry } from "../inference/models.ts";
import type { GenerationRunner } from "../inference/runner.ts";
import type { Lifecycle } from "../lifecycle.ts";
import { MAX_CORRECTION_CHARS, MAX_MESSAGE_CHARS, stripControlCharacters } from "../safety/limits.ts";
import {
  chatHomePage,
  emptyTranscriptFragment,
  escapeText,
  feedbackFragment,
  type ModelOption,
  sessionPage,
  type SettingsFormState,
  settingsFragment,
  streamFinal,
  streamHead,
  streamReasoning,
  streamStatus,
} from "../views/chat.tsx";
import type { PageContext } from "../views/page.ts";
import { sseResponse, type SseWriter } from "./sse.ts";
import { revocableStream, signedInUser, type StreamGuard } from "./auth.ts";
import { guardedChat, type Guards } from "./guards.ts";
import type { SecurityConfig } from "../config.ts";
import { readSettings } from "../chat/settings.ts";
import { conversationMarkdown, exportConversation } from "../chat/export.ts";
import { conversationPrintPage } from "../views/chat_export.tsx";
import { ChatRefusal, type IntakeDeps, modelFor, restartReply, takeMessage } from "../chat/intake.ts";

/** What the chat routes need. */
export interface ChatDeps {
  db: Db;
  runner: GenerationRunner;
  models: ModelRegistry;
  lifecycle: Pick<Lifecycle, "draining">;
  pageContext: (c: Context, path?: string) => PageContext;
  guard: StreamGuard;
  guards: Guards;
  security: Pick<
    SecurityConfig,
    "messagesPerMinute" | "dailyTokenBudget" | "maxConcurrentStreams" | "phiRedaction"
  >;
  /** Case generations and debriefs: replies share the concurrency cap with them. */
  modelCalls?: Pick<ModelCallLimiter, "running">;
  /** Begins an answer while its message is stored (chat/answer.ts:beginAnswer). */
  beginAnswer?: IntakeDeps["beginAnswer"];
}

type Form = Record<string, string | File | (string | File)[]>;

function text(form: Form, name: string): string {
  const value = form[name];
  return typeof value === "string" ? value : "";
}

function isHtmx(c: Context): boolean {
  return c.req.header("hx-request") === "true";
}

function modelOptions(models: ModelRegistry): ModelOption[] {
  return models.list().map((m) => ({
    id: m.id,
    label: m.label,
    defaults: m.defaults,
    maxNewTokensLimit: m.maxNewTokensLimit,
  }));
}

function settingsState(models: ModelRegistry, chat: Chat): SettingsFormState {
  const spec = modelFor(models, chat);
  const defaults = spec?.defaults ?? { temperature: 0.7, topP: 0.95, maxNewTokens: 512 };
  return {
    values: {
      model: spec?.id ?? "",
      temperature: String(chat.temperature ?? defaults.temperature),
      topP: String(chat.topP ?? defaults.topP),
      maxNewTokens: String(chat.maxNewTokens ?? defaults.maxNewTokens),
    },
    errors: {},
  };
}

/** Event ids are the reply's length in characters (base 36) after the message; `end` after the last. */
function eventId(offset: number): string {
  return offset.toString(36);
}

/** The offset a Last-Event-ID names; "end" when the client saw the end; null when absent or unreadable. */
function parseEventId(value: string | undefined): number | "end" | null {
  if (value === undefined) return null;
  if (value === "end") return "end";
  return /^[0-9a-z]{1,10}$/.test(value) ? parseInt(value, 36) : null;
}

/** The chat routes. */
export function chatRoutes(deps: ChatDeps): Hono {
  const app = new Hono();
  const { db, runner, models } = deps;
  const { audit, ownChat } = deps.guards;
  const onChat = { type: "session", param: "id" } as const;
  const onMessage = { type: "message", param: "messageId" } as const;

  const intake: IntakeDeps = {
    db,
    models,
    security: deps.security,
    draining: () => deps.lifecycle.draining,
    otherModelWork: deps.modelCalls?.running,
    beginAnswer: deps.beginAnswer,
  };

  /** Runs a step of the chat, turning its refusal into the HTTP answer (with Retry-After where it says). */
  async function refusalsAsHttp<T>(c: Context, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof ChatRefusal)) throw error;
      if (error.retryAfterS !== null) c.header("Retry-After", String(error.retryAfterS));
      throw new HTTPException(error.status, { message: error.message });
    }
  }

  /** Sends a reply's text from offset on, then its stored end and `done`; closes the stream. */
  async function streamReply(
    sse: SseWriter,
    chat: Chat,
    messageId: string,
    from: number,
  ): Promise<void> {
    const sessionId = chat.id;
    let offset = from;
    let ended: Message | null = null;
    await runner.follow(sessionId, messageId, offset, (event) => {
      if (event.type === "delta") {
        offset = event.offset;
        sse.send({ id: eventId(offset), data: escapeText(event.text), appends: true });
      } else if (event.type === "reasoning") {
        sse.send({ id: eventId(offset), data: streamReasoning(event.text, event.total) });
      } else if (event.type === "status") {
        sse.send({ id: eventId(offset), data: streamStatus(event.message) });
      } else {
        ended = event.message;
      }
    }, sse.signal);
    if (ended) await sendFinal(sse, chat, ended);
    sse.close();
  }

  /** The stored reply with its sources replaces the live slot; `done` ends the stream. */
  async function sendFinal(sse: SseWriter, chat: Chat, message: Message): Promise<void> {
    const sources = (await sourcesOfMessages(db, [message.id])).get(message.id) ?? [];
    const practice = chat.kind === "practice";
    sse.send({
      id: "end",
      data: streamFinal({ sessionId: chat.id, message, latest: true, sources, practice }),
    });
    sse.send({ id: "end", event: "done", data: "" });
  }

  /** Streams a reply as SSE (htmx), or waits for it and redirects to the session page (plain form post). */
  async function respondWithReply(
    c: Context,
    data: {
      chat: Chat;
      user: Message;
      assistant: Message;
      kind: "answer" | "regenerate" | "continue";
      previous?: Message;
    },
  ): Promise<Response> {
    const { chat, assistant } = data;
    if (!isHtmx(c)) {
      // Without JavaScript there is nothing to stream to: wait for the reply, then show the page.
      await runner.follow(chat.id, assistant.id, assistant.content.length, () => {}, c.req.raw.signal);
      return c.redirect(`/sessions/${chat.id}#m-${assistant.id}`, 303);
    }
    const resume = parseEventId(c.req.header("last-event-id"));
    const startOffset = data.kind === "continue" ? (data.previous?.content.length ?? 0) : 0;
    // Only a chat's first question titles it (db/messages.ts:startExchange): read it back only then, so that the
    // stream's head (the question echoed) waits for no statement after the reply has started.
    const title = chat.title === DEFAULT_TITLE
      ? (await getChat(db, chat.id))?.title ?? chat.title
      : chat.title;
    return sseResponse(c.req.raw, async (sse) => {
      if (resume === "end") {
        sse.send({ id: "end", event: "done", data: "" });
        return sse.close();
      }
      const offset = resume ?? startOffset;
      if (resume === null) {
        sse.send({
          id: eventId(offset),
          data: streamHead({
            sessionId: chat.id,
            user: data.user,
            title,
            kind: data.kind,
            previous: data.previous,
            practice: chat.kind === "practice",
          }),
        });
      }
      await streamReply(sse, chat, assistant.id, offset);
    }, revocableStream(c, deps.guard));
  }

  async function homePage(
    c: Context,
    refused?: { draft: string; message: string },
    search = "",
  ): Promise<string> {
    return chatHomePage(deps.pageContext(c, "/"), {
      search,
      sessions: await listChats(db, { ownerId: signedInUser(c).id, search }),
      models: modelOptions(models),
      modelLabel: models.get(null)?.label ?? null,
      maxMessageChars: MAX_MESSAGE_CHARS,
      refused,
    });
  }

  app.get("/", async (c) => c.html(await homePage(c)));
  // Searched by POST: clinicians search by patient names, which must not land in URLs, history or proxy logs.
  app.post("/sessions/search", audit("session.search"), async (c) => {
    const search = stripControlCharacters(text(await c.req.parseBody(), "q")).trim().slice(0, 200);
    return c.html(await homePage(c, undefined, search));
  });

  // A new session, empty or (from the home page's composer) with its first question, whose reply starts here
  // and streams on the session's page. A refused question leaves no session behind and keeps its text.
  app.post("/sessions", audit("session.create", { type: "session" }), async (c) => {
    const form = await c.req.parseBody();
    const modelId = text(form, "model").trim() || null;
    if (modelId !== null && !models.get(modelId)) {
      throw new HTTPException(422, { message: `There is no model "${modelId}" on this server` });
    }
    const title = stripControlCharacters(text(form, "title"));
    const ownerId = signedInUser(c).id;
    const chat = await createChat(db, { ownerId, title, model: modelId });
    const content = text(form, "content");
    if (content.trim()) {
      try {
        const exchange = await takeMessage(intake, {
          chat,
          userId: ownerId,
          content,
          clientId: text(form, "client_id"),
        });
        if (exchange.job) runner.start(exchange.job);
        await deps.guards.record(c, {
          action: "message.create",
          objectType: "session",
          objectId: chat.id,
          outcome: "201",
        });
      } catch (error) {
        if (!(error instanceof ChatRefusal)) throw error;
        await deleteChat(db, chat.id);
        if (error.retryAfterS !== null) c.header("Retry-After", String(error.retryAfterS));
        return c.html(await homePage(c, { draft: content, message: error.message }), error.status);
      }
    }
    return c.redirect(`/sessions/${chat.id}`, 303);
  });

  // A conversation leaves with its identifiers replaced, as Markdown or as a page to print or save as PDF.
  async function exported(chat: Chat) {
    const messages = await listMessages(db, chat.id);
    const ids = messages.filter((m) => m.role === "assistant").map((m) => m.id);
    return exportConversation(chat, messages, await sourcesOfMessages(db, ids));
  }
  app.get("/sessions/:id/export.md", audit("session.export", onChat), ownChat, async (c) => {
    const conversation = await exported(guardedChat(c));
    const name =
      conversation.title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60) ||
      "conversation";
    c.header("content-type", "text/markdown; charset=utf-8");
    c.header("content-disposition", `attachment; filename="rounds-${name}.md"`);
    c.header("cache-control", "no-store");
    return c.body(conversationMarkdown(conversation));
  });
  app.get("/sessions/:id/export", audit("session.export", onChat), ownChat, async (c) => {
    const chat = guardedChat(c);
    c.header("cache-control", "no-store");
    return c.html(conversationPrintPage(deps.pageContext(c), chat.id, await exported(chat)));
  });

  app.get("/sessions/:id", audit("session.read", onChat), ownChat, async (c) => {
    const chat = guardedChat(c);
    const [messages, chats] = await Promise.all([
      listMessages(db, chat.id),
      listChats(db, {
        ownerId: signedInUser(c).id,
      }),
    ]);
    const sources = await sourcesOfMessages(
      db,
      messages.filter((m) => m.role === "assistant").map((m) => m.id),
    );
    return c.html(sessionPage(deps.pageContext(c), {
      session: chat,
      sessions: chats,
      messages,
      sources,
      models: modelOptions(models),
      modelLabel: modelFor(models, chat)?.label ?? null,
      settings: settingsState(models, chat),
      maxMessageChars: MAX_MESSAGE_CHARS,
    }));
  });

  app.post("/sessions/:id/messages", audit("message.create", onChat), ownChat, async (c) => {
    const chat = guardedChat(c);
    const form = await c.req.parseBody();
    const exchange = await refusalsAsHttp(c, () =>
      takeMessage(intake, {
        chat,
        userId: signedInUser(c).id,
        content: text(form, "content"),
        clientId: text(form, "client_id"),
      }));
    if (exchange.job) runner.start(exchange.job);
    return await respondWithReply(c, { chat, ...exchange, kind: "answer" });
  });

  async function restart(c: Context, kind: "regenerate" | "continue"): Promise<Response> {
    const chat = guardedChat(c);
    const form = await c.req.parseBody();
    const exchange = await refusalsAsHttp(c, () =>
      restartReply(intake, {
        chat,
        userId: signedInUser(c).id,
        messageId: c.req.param("messageId") ?? "",
        kind,
        clientId: text(form, "client_id"),
        reconnecting: c.req.header("last-event-id") !== undefined,
      }));
    if (exchange.job) runner.start(exchange.job);
    return await respondWithReply(c, { chat, ...exchange, kind });
  }

  app.post(
    "/sessions/:id/messages/:messageId/regenerate",
    audit("message.regenerate", onMessage),
    ownChat,
    (c) => restart(c, "regenerate"),
  );
  app.post(
    "/sessions/:id/messages/:messageId/continue",
    audit("message.continue", onMessage),
    ownChat,
    (c) => restart(c, "continue"),
  );

  app.get(
    "/sessions/:id/messages/:messageId/stream",
    audit("message.read", onMessage),
    ownChat,
    async (c) => {
      const chat = guardedChat(c);
      const message = await getMessage(db, chat.id, c.req.param("messageId"));
      if (!message || message.role !== "assistant") {
        throw new HTTPException(404, { message: "This reply does not exist." });
      }
      const resume = parseEventId(c.req.header("last-event-id"));
      const fromQuery = Number(c.req.query("offset") ?? "0");
      const offset = resume === null || resume === "end"
        ? (Number.isSafeInteger(fromQuery) && fromQuery >= 0 ? fromQuery : 0)
        : resume;
      return sseResponse(c.req.raw, async (sse) => {
        if (resume === "end" || isTerminal(message) && !runner.isLive(message.id)) {
          const stored = (await getMessage(db, chat.id, message.id)) ?? message;
          if (resume !== "end") await sendFinal(sse, chat, stored);
          else sse.send({ id: "end", event: "done", data: "" });
          return sse.close();
        }
        await streamReply(sse, chat, message.id, offset);
      }, revocableStream(c, deps.guard));
    },
  );

  app.post("/sessions/:id/stop", audit("session.stop", onChat), ownChat, async (c) => {
    const chat = guardedChat(c);
    const stopped = await runner.stop(chat.id);
    if (isHtmx(c)) return c.body(null, 204);
    return stopped
      ? c.redirect(`/sessions/${chat.id}`, 303)
      : c.text("Nothing was being generated in this session.", 200);
  });

  app.post(
    "/sessions/:id/messages/:messageId/feedback",
    audit("message.feedback", onMessage),
    ownChat,
    async (c) => {
      const chat = guardedChat(c);
      const form = await c.req.parseBody();
      const rating = text(form, "rating");
      if (!["up", "down", "none", ""].includes(rating)) {
        throw new HTTPException(422, { message: 'rating must be "up", "down" or "none"' });
      }
      const correction = stripControlCharacters(text(form, "correction")).trim();
      if (correction.length > MAX_CORRECTION_CHARS) {
        throw new HTTPException(413, {
          message: `A correction may be at most ${MAX_CORRECTION_CHARS} characters.`,
        });
      }
      const message = await setFeedback(db, {
        sessionId: chat.id,
        messageId: c.req.param("messageId"),
        feedback: rating === "up" ? 1 : rating === "down" ? -1 : null,
        correction: correction || null,
      });
      if (!message) throw new HTTPException(404, { message: "This reply does not exist." });
      if (!isHtmx(c)) return c.redirect(`/sessions/${chat.id}#m-${message.id}`, 303);
      return c.html(feedbackFragment(message, chat.id));
    },
  );

  app.post("/sessions/:id/settings", audit("session.settings", onChat), ownChat, async (c) => {
    const chat = guardedChat(c);
    const { values, settings, errors } = readSettings(models, await c.req.parseBody());
    const state: SettingsFormState = { values, errors };
    const options = modelOptions(models);
    if (!settings) {
      if (!isHtmx(c)) throw new HTTPException(422, { message: Object.values(errors).join("; ") });
      return c.html(settingsFragment(chat.id, options, state), 422);
    }
    await updateChatSettings(db, chat.id, settings);
    if (!isHtmx(c)) return c.redirect(`/sessions/${chat.id}`, 303);
    return c.html(settingsFragment(chat.id, options, { ...state, saved: true }));
  });

  app.post("/sessions/:id/rename", audit("session.rename", onChat), ownChat, async (c) => {
    const chat = guardedChat(c);
    const title = stripControlCharacters(text(await c.req.parseBody(), "title")).trim();
    if (!title) throw new HTTPException(422, { message: "A session needs a title." });
    await renameChat(db, chat.id, title);
    return c.redirect(`/sessions/${chat.id}`, 303);
  });

  app.post("/sessions/:id/clear", audit("session.clear", onChat), ownChat, async (c) => {
    const chat = guardedChat(c);
    if ((await listMessages(db, chat.id)).some((m) => !isTerminal(m))) {
      throw new HTTPException(409, { message: "Stop the reply being written before clearing the chat." });
    }
    await clearChat(db, chat.id);
    if (!isHtmx(c)) return c.redirect(`/sessions/${chat.id}`, 303);
    return c.html(emptyTranscriptFragment(chat.id));
  });

  const remove = async (c: Context) => {
    const chat = guardedChat(c);
    await runner.stop(chat.id);
    await deleteChat(db, chat.id);
    if (isHtmx(c)) {
      c.header("HX-Redirect", "/");
      return c.body("", 200);
    }
    return c.redirect("/", 303);
  };
  app.post("/sessions/:id/delete", audit("session.delete", onChat), ownChat, remove);
  app.delete("/sessions/:id", audit("session.delete", onChat), ownChat, remove);

  return app;
}
