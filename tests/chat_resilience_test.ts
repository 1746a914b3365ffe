import assert from "node:assert/strict";
import { listAudit } from "../db/audit.ts";
import { eq, sql } from "drizzle-orm";
import {
  checkpointMany,
  finishMessage,
  getMessage,
  listMessages,
  startExchange,
  turnsBefore,
  turnsOf,
} from "../db/messages.ts";
import { messages } from "../db/schema.ts";
import { createChat, getChat } from "../db/chats.ts";
import { addTokensForUser, messageRateKey, peekEvents } from "../db/limits.ts";
import { createTestApp, DRIVER, freePort } from "./support/test_app.ts";
import { HX, withChat } from "./support/chat_helpers.ts";
import { readAll, sseReader, streamedText, unescapeText } from "./support/sse_client.ts";
import { DEFAULT_TOKENS } from "./support/endpoint_stub.ts";

const slow = (n: number, delayMs = 40) => ({
  tokens: Array.from({ length: n }, (_, i) => ` t${i}`),
  delayMs,
});

Deno.test(`stop [${DRIVER}]: Stop aborts the upstream request within 1 s and keeps the partial reply`, async () => {
  await withChat(async ({ t, stub, session, send, post }) => {
    stub.enqueue(slow(200, 50));
    const id = await session();
    const reader = sseReader(await send(id, "Long answer"));
    await reader.next();
    await reader.next();
    await reader.next(); // two deltas arrived
    const stopped = await post(`/sessions/${id}/stop`, {}, HX);
    assert.equal(stopped.status, 204);
    const at = performance.timeOrigin + performance.now();
    await stub.waitFor((r) => r[0].abortedAt !== null, 1000);
    assert.ok(stub.requests[0].abortedAt! - at < 1000, "the endpoint saw its connection close within 1 s");
    const rest: string[] = [];
    let last;
    for (let e = await reader.next(); e; e = await reader.next()) {
      rest.push(e.event ?? e.data);
      last = e;
    }
    assert.equal(last?.event, "done");
    const reply = (await listMessages(t.database.db, id))[1];
    assert.equal(reply.status, "stopped");
    assert.equal(reply.finishReason, "user");
    assert.ok(reply.content.startsWith(" t0 t1"), reply.content);
    assert.ok(reply.content.length < 200 * 4);
    assert.match(rest.join(""), /badge-stopped">Stopped</);
  });
});

Deno.test(`grace [${DRIVER}]: a browser that leaves is given the grace period, then the GPU is freed`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue(slow(400, 20));
    const id = await session();
    const reader = sseReader(await send(id, "Then I close the tab"));
    await reader.next();
    await reader.next();
    const left = performance.now();
    await reader.cancel();
    await stub.waitFor((r) => r[0].abortedAt !== null, 3000);
    assert.ok(performance.now() - left >= 250, "not before the grace period (300 ms in tests)");
    await t.lifecycle.drain(2000);
    const reply = (await listMessages(t.database.db, id))[1];
    assert.equal(reply.status, "interrupted");
    assert.equal(reply.finishReason, "client_disconnected");
    assert.match(reply.error ?? "", /did not come back within/);
    assert.ok(reply.content.length > 0, "the text written so far is kept");
  }, { runner: { graceMs: 300 } });
});

Deno.test(`resume [${DRIVER}]: a dropped stream reattaches with Last-Event-ID: nothing lost, nothing repeated`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    const tokens = Array.from({ length: 60 }, (_, i) => ` w${i}`);
    stub.enqueue({ tokens, delayMs: 15 });
    const id = await session();
    const first = sseReader(await send(id, "Resume me"));
    const seen: string[] = [];
    let lastId = "";
    await first.next(); // head
    for (let i = 0; i < 10; i++) {
      const e = (await first.next())!;
      seen.push(unescapeText(e.data));
      lastId = e.id!;
    }
    await first.cancel();
    const reply = (await listMessages(t.database.db, id))[1];
    const resumed = await t.request(`/sessions/${id}/messages/${reply.id}/stream`, {
      headers: { ...HX, "last-event-id": lastId },
    });
    const events = await readAll(resumed);
    assert.equal(events.at(-1)!.event, "done");
    assert.equal(seen.join("") + streamedText(events), tokens.join(""));
    assert.equal(stub.requests[0].abortedAt, null, "reattaching in time kept the generation running");
  }, { runner: { graceMs: 2000 } });
});

Deno.test(`resume [${DRIVER}]: the composer's reconnect re-POSTs with the same client_id and Last-Event-ID`, async () => {
  await withChat(async ({ stub, session, send }) => {
    const tokens = Array.from({ length: 40 }, (_, i) => ` r${i}`);
    stub.enqueue({ tokens, delayMs: 15 });
    const id = await session();
    const first = sseReader(await send(id, "Flaky wifi", { clientId: "retry-key-0001" }));
    await first.next();
    const parts: string[] = [];
    let lastId = "";
    for (let i = 0; i < 5; i++) {
      const e = (await first.next())!;
      parts.push(unescapeText(e.data));
      lastId = e.id!;
    }
    await first.cancel();
    const again = await readAll(
      await send(id, "Flaky wifi", { clientId: "retry-key-0001", headers: { "last-event-id": lastId } }),
    );
    assert.ok(!again[0].data.includes("msg user"), "the question is not shown twice");
    assert.equal(parts.join("") + streamedText(again), tokens.join(""));
    assert.equal(stub.requests.length, 1);
  }, { runner: { graceMs: 2000 } });
});

Deno.test(`stream [${DRIVER}]: GET .../stream of a finished reply ends at once with the stored reply and done`, async () => {
  await withChat(async ({ t, session, send }) => {
    const id = await session();
    await readAll(await send(id, "Q"));
    const reply = (await listMessages(t.database.db, id))[1];
    const events = await readAll(
      await t.request(`/sessions/${id}/messages/${reply.id}/stream`, { headers: HX }),
    );
    assert.deepEqual(events.map((e) => [e.id, e.event]), [["end", null], ["end", "done"]]);
    assert.match(events[0].data, /Consider a viral cause first/);
    const seenEnd = await readAll(
      await t.request(`/sessions/${id}/messages/${reply.id}/stream`, { headers: { "last-event-id": "end" } }),
    );
    assert.deepEqual(seenEnd.map((e) => e.event), ["done"]);
    assert.equal((await t.request(`/sessions/${id}/messages/${crypto.randomUUID()}/stream`)).status, 404);
  });
});

Deno.test(`retry [${DRIVER}]: 429 with Retry-After before the first token is retried after the wait`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue({ failWith: { status: 429, retryAfter: "1", body: { error: "Too many requests" } } }, {});
    const id = await session();
    const events = await readAll(await send(id, "Busy endpoint"));
    assert.equal(stub.requests.length, 2);
    const gap = stub.requests[1].receivedAt - stub.requests[0].receivedAt;
    assert.ok(gap >= 950, `waited ${gap.toFixed(0)} ms, Retry-After said 1 s`);
    assert.ok(
      events.some((e) =>
        /rate limiting requests \(HTTP 429\)\. Trying again in 1 s \(attempt 2 of 4\)/.test(e.data)
      ),
    );
    const reply = (await listMessages(t.database.db, id))[1];
    assert.equal(reply.status, "completed");
    assert.equal(reply.content, DEFAULT_TOKENS.join(""));
  });
});

Deno.test(`retry [${DRIVER}]: a model that stays asleep is waited for (the clinician told so), then a stored error`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    // A scaled-to-zero endpoint answers 503 while its GPU starts: Rounds waits up to coldStartMs (3 s here,
    // 10 minutes in production) instead of giving up after a few quick tries.
    stub.defaultScript = { failWith: { status: 503, body: { error: "Model is loading" } } };
    const id = await session();
    const started = performance.now();
    const events = await readAll(await send(id, "Anyone?"));
    const waited = performance.now() - started;
    assert.ok(waited >= 2900 && waited < 8000, `waited ${waited.toFixed(0)} ms for the cold start`);
    assert.ok(stub.requests.length > 4, `kept asking (${stub.requests.length} requests)`);
    assert.ok(
      events.some((e) => /The model is waking up or loading[^<]*a few minutes to start/.test(e.data)),
      "the clinician is told the model is waking up",
    );
    assert.equal(events.at(-1)!.event, "done");
    const reply = (await listMessages(t.database.db, id))[1];
    assert.equal(reply.status, "error");
    assert.match(reply.error!, /The model is waking up \(HTTP 503: Model is loading\)/);
    assert.match(events.at(-2)!.data, /badge-error">Failed</);
  });
});

Deno.test(`retry [${DRIVER}]: connection refused ends in an error naming the problem`, async () => {
  await withChat(async ({ t, session, send }) => {
    const id = await session();
    await readAll(await send(id, "Hello?"));
    const reply = (await listMessages(t.database.db, id))[1];
    assert.equal(reply.status, "error");
    assert.match(reply.error!, /Cannot connect to the model endpoint/);
    // The request was answered 200 when streaming began; the failure has its own audit entry.
    const failed = await listAudit(t.database.db, { action: "message.failed" });
    assert.deepEqual(failed.map((e) => [e.objectId, e.outcome, e.actor]), [[
      reply.id,
      "failed",
      t.user.email,
    ]]);
  }, { env: { INFERENCE_URL: `http://127.0.0.1:${freePort()}` } });
});

Deno.test(`failure [${DRIVER}]: an error mid-stream keeps the partial text as interrupted, and Continue finishes it`, async () => {
  await withChat(async ({ t, stub, session, send, post }) => {
    stub.enqueue({ tokens: ["Start", " of", " answer", " lost"], errorAfter: 3 }, {
      tokens: [" and", " the", " rest."],
    });
    const id = await session();
    await readAll(await send(id, "Explain"));
    let reply = (await listMessages(t.database.db, id))[1];
    assert.equal(reply.status, "interrupted");
    assert.equal(reply.content, "Start of answer");
    assert.equal((await listAudit(t.database.db, { action: "message.failed" }))[0]?.outcome, "broke off");
    assert.match(reply.error!, /CUDA out of memory.*use Continue to finish it/);

    const events = await readAll(
      await post(`/sessions/${id}/messages/${reply.id}/continue`, { client_id: "cont-key-0001" }, HX),
    );
    assert.equal(stub.requests[1].body.prompt, "[INST]Explain[/INST]\nStart of answer");
    assert.match(events[0].data, /hx-target="#live-body" hx-swap="innerHTML">Start of answer</);
    assert.equal(events[0].id, (15).toString(36), "event ids continue from the existing text");
    reply = (await getMessage(t.database.db, id, reply.id))!;
    assert.equal(reply.content, "Start of answer and the rest.");
    assert.equal(reply.status, "completed");
    assert.equal((await listMessages(t.database.db, id)).length, 2, "continued in place");
  });
});

Deno.test(`failure [${DRIVER}]: a dropped connection or malformed chunk mid-stream is interrupted, not lost`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue({ tokens: ["one", " two", " three"], dropAfter: 2 }, {
      tokens: ["uno", " dos", " tres"],
      malformedAfter: 2,
    });
    const id = await session();
    await readAll(await send(id, "Drop"));
    await readAll(await send(id, "Garble"));
    const [, dropped, , garbled] = await listMessages(t.database.db, id);
    assert.deepEqual([dropped.status, dropped.content], ["interrupted", "one two"]);
    assert.deepEqual([garbled.status, garbled.content], ["interrupted", "uno dos"]);
    assert.match(garbled.error!, /malformed/);
  });
});

Deno.test(`length [${DRIVER}]: a reply cut at the length limit says so and offers Continue`, async () => {
  await withChat(async ({ t, stub, session, send, post }) => {
    stub.enqueue({ tokens: ["Cut", " here"], finishReason: "length" });
    const id = await session();
    const events = await readAll(await send(id, "Long"));
    assert.match(events.at(-2)!.data, /Cut off at the length limit/);
    assert.match(events.at(-2)!.data, /formaction="[^"]+\/continue"/);
    const reply = (await listMessages(t.database.db, id))[1];
    assert.deepEqual([reply.status, reply.finishReason], ["completed", "length"]);
    stub.enqueue({ tokens: [" and", " on"] });
    await readAll(await post(`/sessions/${id}/messages/${reply.id}/continue`, {}, HX));
    assert.equal((await getMessage(t.database.db, id, reply.id))!.content, "Cut here and on");
    const again = await post(`/sessions/${id}/messages/${reply.id}/continue`, {}, HX);
    assert.equal(again.status, 409);
    assert.match(await again.text(), /only a reply cut short can be continued/);
  });
});

Deno.test(`regenerate [${DRIVER}]: a new reply to the same question; the old one is kept as an earlier version`, async () => {
  await withChat(async ({ t, stub, session, send, post }) => {
    stub.enqueue({ tokens: ["First", " try"] }, { tokens: ["Second", " try"] });
    const id = await session();
    await readAll(await send(id, "Differential for cough?"));
    const first = (await listMessages(t.database.db, id))[1];
    const events = await readAll(
      await post(`/sessions/${id}/messages/${first.id}/regenerate`, { client_id: "regen-key-0001" }, HX),
    );
    assert.match(events[0].data, /Earlier version of the reply below/);
    assert.equal(stub.requests[1].body.prompt, stub.requests[0].body.prompt, "same question, same prompt");
    const all = await listMessages(t.database.db, id);
    assert.equal(all.length, 3);
    assert.deepEqual(all.map((m) => [m.content, m.superseded]), [
      ["Differential for cough?", false],
      ["First try", true],
      ["Second try", false],
    ]);
    const html = await (await t.request(`/sessions/${id}`)).text();
    assert.match(html, /<details class="earlier-version"[^>]*><summary>Earlier version/);
    // Repeating the request (a reconnect, a double click) follows the reply it started.
    await readAll(
      await post(`/sessions/${id}/messages/${first.id}/regenerate`, { client_id: "regen-key-0001" }, HX),
    );
    assert.equal(stub.requests.length, 2);
    // Only the latest reply can be regenerated.
    const old = await post(
      `/sessions/${id}/messages/${first.id}/regenerate`,
      { client_id: "regen-key-0002" },
      HX,
    );
    assert.equal(old.status, 404);
    await old.body?.cancel();
  });
});

Deno.test(`stop sequences [${DRIVER}]: text after a stop sequence never reaches the reader, even split across tokens`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue({ tokens: ["Hydrate", " well.", " [IN", "ST] fake", " turn"] });
    const id = await session();
    const events = await readAll(await send(id, "Q"));
    assert.equal(streamedText(events), "Hydrate well. ");
    const reply = (await listMessages(t.database.db, id))[1];
    assert.deepEqual([reply.content, reply.finishReason, reply.status], [
      "Hydrate well. ",
      "stop_sequence",
      "completed",
    ]);
    assert.ok(!streamedText(events).includes("[IN"));
  });
});

Deno.test(`surrogates [${DRIVER}]: an emoji split between tokens is rejoined; an unpaired half is replaced, not fatal`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    // "😀" is the pair \ud83d\ude00; an endpoint that cuts tokens by UTF-16 code unit sends the halves apart.
    stub.enqueue({ tokens: ["Smile \ud83d", "\ude00 then", " a stray \udc00 and \ud800", " end"] });
    const id = await session();
    const events = await readAll(await send(id, "Q"));
    const expected = "Smile 😀 then a stray \ufffd and \ufffd end";
    assert.equal(streamedText(events), expected);
    assert.equal(events.at(-1)?.event, "done");
    const reply = (await listMessages(t.database.db, id))[1];
    assert.deepEqual([reply.content, reply.status], [expected, "completed"]);
    // Once a bug: Postgres refused the unpaired half, the reply stayed "streaming" and the session took no more.
    stub.enqueue({ tokens: ["Next."] });
    assert.equal(streamedText(await readAll(await send(id, "And then?"))), "Next.");
  });
});

Deno.test(`context [${DRIVER}]: history is trimmed oldest first to fit the model's context`, async () => {
  await withChat(async ({ stub, session, send }) => {
    const id = await session();
    for (let i = 0; i < 6; i++) {
      stub.enqueue({ tokens: [`Answer ${i} `.repeat(40)] });
      await readAll(await send(id, `Question ${i} ${"detail ".repeat(40)}`));
    }
    stub.enqueue({});
    await readAll(await send(id, "Final question"));
    const prompt = String(stub.requests.at(-1)!.body.prompt);
    assert.ok(prompt.endsWith("Current question: Final question[/INST]\n"), prompt.slice(-80));
    assert.ok(!prompt.includes("Question 0 "), "the oldest turn went first");
    assert.ok(prompt.includes("Question 5 "), "the newest turn stayed");
    assert.ok(Math.ceil(new TextEncoder().encode(prompt).length / 3) <= 1024 - 256);
  }, { env: { INFERENCE_CONTEXT_SIZE: "1024", INFERENCE_MAX_NEW_TOKENS: "256" } });
});

Deno.test(`models [${DRIVER}]: MODELS_FILE models each use their own endpoint, API, template and adapter`, async () => {
  await withChat(async ({ stub, session, send }) => {
    const chatSession = await session({ model: "chat-model" });
    await readAll(await send(chatSession, "Via chat"));
    const tgiSession = await session({ model: "meddialog-lora" });
    await readAll(await send(tgiSession, "Via TGI"));
    assert.equal(stub.requests[0].path, "/v1/chat/completions");
    assert.equal(stub.requests[0].body.model, "org/chat-model");
    assert.equal(stub.requests[1].path, "/generate_stream");
    assert.equal(stub.requests[1].body.inputs, "[INST]Via TGI[/INST]\n");
    assert.equal((stub.requests[1].body.parameters as Record<string, unknown>).adapter_id, "meddialog-lora");
    assert.equal(stub.requests[1].headers.authorization, "Bearer secret-for-lora");
  }, {
    noModel: true,
    env: { MODELS_FILE: "models.json", LORA_TOKEN: "secret-for-lora" },
    files: {
      "models.json": JSON.stringify({
        models: [
          { id: "chat-model", label: "Chat model", url: "STUB", model: "org/chat-model", template: "chat" },
          {
            id: "meddialog-lora",
            label: "MedDialog LoRA",
            url: "STUB",
            api: "tgi",
            template: "llama2-meddialog",
            adapter_id: "meddialog-lora",
            token_env: "LORA_TOKEN",
          },
        ],
      }),
    },
  });
});

Deno.test(`instances [${DRIVER}]: another instance follows a reply through the checkpoints and can stop it`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue(slow(300, 20));
    // A second app on the same database: another instance of Rounds.
    const other = await createTestApp({
      database: t.database,
      env: { INFERENCE_URL: stub.url },
      runner: { followPollMs: 50 },
    });
    const id = await session();
    const reader = sseReader(await send(id, "Watched from elsewhere"));
    await reader.next();
    await reader.next();
    const reply = (await listMessages(t.database.db, id))[1];
    const follower = sseReader(
      await other.request(`/sessions/${id}/messages/${reply.id}/stream`, { headers: HX }),
    );
    const followed: string[] = [];
    for (let i = 0; i < 3; i++) followed.push((await follower.next())!.data);
    assert.ok(followed.join("").includes(" t0"), "the follower sees the stored text");
    // Stop from the other instance: the running one sees the flag at its next checkpoint.
    assert.equal((await other.request(`/sessions/${id}/stop`, { method: "POST", headers: HX })).status, 204);
    await stub.waitFor((r) => r[0].abortedAt !== null, 2500);
    let last;
    for (let e = await follower.next(); e; e = await follower.next()) last = e;
    assert.equal(last?.event, "done");
    assert.equal((await getMessage(t.database.db, id, reply.id))!.status, "stopped");
    await reader.cancel();
  }, { runner: { followPollMs: 50 } });
});

Deno.test(`exchange [${DRIVER}]: a stored question comes back with the conversation before it, in one round trip`, async () => {
  const t = await createTestApp();
  try {
    const db = t.database.db;
    const chat = await createChat(db, { ownerId: null });
    const ask = (content: string) =>
      startExchange(db, { sessionId: chat.id, content, clientId: null, model: null });
    const answer = (id: string, content: string) =>
      finishMessage(db, id, {
        content,
        outputTokens: 1,
        status: "completed",
        finishReason: "stop",
        error: null,
      });
    const first = await ask("Toux sèche depuis ١٤ jours\u00a0? 咳嗽");
    assert.equal(first.kind, "created");
    if (first.kind !== "created") return;
    assert.deepEqual(first.earlier, []);
    // While its reply is being written, the chat takes no other question, and nothing comes back.
    assert.equal((await ask("And at night?")).kind, "busy");
    await answer(first.assistant.id, "Consider a viral cause. </script>");
    const second = await ask("And at night?");
    assert.equal(second.kind, "created");
    if (second.kind !== "created") return;
    assert.deepEqual(second.earlier, [
      { id: first.user.id, seq: first.user.seq, role: "user", content: first.user.content, replyTo: null },
      {
        id: first.assistant.id,
        seq: first.assistant.seq,
        role: "assistant",
        content: "Consider a viral cause. </script>",
        replyTo: first.user.id,
      },
    ]);
    // The same turns a read of the stored conversation makes; a superseded reply is left out.
    assert.deepEqual(
      turnsOf(second.earlier, second.user.seq),
      await turnsBefore(db, chat.id, second.user.seq),
    );
    await answer(second.assistant.id, "Worse when lying down?");
    await db.update(messages).set({ superseded: true }).where(eq(messages.id, first.assistant.id));
    const third = await ask("Thanks.");
    assert.equal(third.kind, "created");
    if (third.kind !== "created") return;
    assert.deepEqual(third.earlier.map((row) => row.id), [
      first.user.id,
      second.user.id,
      second.assistant.id,
    ]);
    assert.deepEqual(turnsOf(third.earlier, third.user.seq), [
      { user: "And at night?", assistant: "Worse when lying down?" },
    ]);
  } finally {
    await t.close();
  }
});

Deno.test(`finish [${DRIVER}]: a reply's end comes back as a read of it would, and its chat's last activity moves`, async () => {
  const t = await createTestApp();
  try {
    const db = t.database.db;
    const chat = await createChat(db, { ownerId: null });
    const started = await startExchange(db, {
      sessionId: chat.id,
      content: "Toux sèche depuis ١٤ jours\u00a0?",
      clientId: null,
      model: "stub",
    });
    assert.equal(started.kind, "created");
    if (started.kind !== "created") return;
    const before = (await getChat(db, chat.id))!.updatedAt;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const finished = await finishMessage(db, started.assistant.id, {
      content: "Consider a viral cause [1]. </script> 咳嗽 😀",
      outputTokens: 12,
      status: "interrupted",
      finishReason: "error",
      error: "The model endpoint call failed.",
    });
    const read = await getMessage(db, chat.id, started.assistant.id);
    assert.deepEqual(finished, read);
    assert.ok(finished.updatedAt instanceof Date && finished.createdAt instanceof Date);
    assert.equal(finished.content, "Consider a viral cause [1]. </script> 咳嗽 😀");
    assert.equal(finished.status, "interrupted");
    assert.equal(finished.stopRequested, false);
    assert.ok((await getChat(db, chat.id))!.updatedAt > before, "the chat moves up the list");
    await assert.rejects(
      () => finishMessage(db, crypto.randomUUID(), { ...finished, status: "completed" }),
      /not stored/,
    );
  } finally {
    await t.close();
  }
});

Deno.test(`checkpoints [${DRIVER}]: many live replies are stored in one write; ended ones are left alone`, async () => {
  const t = await createTestApp();
  try {
    const db = t.database.db;
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      const session = await createChat(db, { ownerId: null });
      const started = await startExchange(db, {
        sessionId: session.id,
        content: `Q${i}`,
        clientId: null,
        model: null,
      });
      assert.equal(started.kind, "created");
      if (started.kind === "created") replies.push(started.assistant.id);
    }
    const [a, b, c] = replies;
    await finishMessage(db, c, {
      content: "done",
      outputTokens: 1,
      status: "completed",
      finishReason: "stop",
      error: null,
    });
    await db.update(messages).set({ stopRequested: true }).where(eq(messages.id, b));
    const stored = await checkpointMany(db, [
      { messageId: a, content: "text of a ✓ 😀 \\ \" ' </script>", outputTokens: 7 },
      { messageId: b, content: "text of b", outputTokens: 3 },
      { messageId: c, content: "late text for c", outputTokens: 9 },
    ]);
    assert.deepEqual(
      [...stored].sort(),
      [[a, { stopRequested: false }], [b, { stopRequested: true }]].sort(),
    );
    const [ra, rb, rc] = await Promise.all(
      replies.map((id) => db.select().from(messages).where(eq(messages.id, id))),
    );
    assert.deepEqual([ra[0].content, ra[0].outputTokens, ra[0].status], [
      "text of a ✓ 😀 \\ \" ' </script>",
      7,
      "streaming",
    ]);
    assert.deepEqual([rb[0].content, rb[0].status], ["text of b", "streaming"]);
    assert.deepEqual([rc[0].content, rc[0].outputTokens, rc[0].status], ["done", 1, "completed"]);
    assert.equal((await checkpointMany(db, [])).size, 0);
  } finally {
    await t.close();
  }
});

Deno.test(`checkpoints [${DRIVER}]: the stored text trails the stream by at most about a second`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue(slow(200, 20));
    const id = await session();
    const reader = sseReader(await send(id, "Checkpoint me"));
    await reader.next();
    const reply = (await listMessages(t.database.db, id))[1];
    await stub.waitFor((r) => (r[0]?.sentAt.length ?? 0) >= 50, 5000);
    const sentBy = stub.requests[0].sentAt.length;
    // Everything sent more than a second ago must be stored within the next 1.2 s.
    const deadline = Date.now() + 1200;
    let stored = "";
    while (Date.now() < deadline) {
      stored = (await getMessage(t.database.db, id, reply.id))!.content;
      if (stored.length >= ` t0`.length * (sentBy - 45)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(stored.length > 0, "checkpointed while streaming");
    assert.equal((await getMessage(t.database.db, id, reply.id))!.status, "streaming");
    await t.runner.stop(id);
    await reader.cancel();
  }, { runner: { checkpointMs: 1000 } });
});

Deno.test(`checkpoints [${DRIVER}]: the first comes a second after the reply began, so a short reply is written once`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue(slow(8, 100));
    const id = await session();
    const reader = sseReader(await send(id, "Checkpoint me later"));
    const reply = (await listMessages(t.database.db, id))[1];
    // Three pieces out, about 0.3 s in: nothing stored yet (a write at the first token cost a statement that a
    // reply ending within the second never needed).
    await stub.waitFor((r) => (r[0]?.sentAt.length ?? 0) >= 3, 5000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const early = (await getMessage(t.database.db, id, reply.id))!;
    assert.deepEqual([early.status, early.content], ["pending", ""]);
    for (let e = await reader.next(); e && e.event !== "done"; e = await reader.next());
    const ended = (await getMessage(t.database.db, id, reply.id))!;
    assert.deepEqual([ended.status, ended.content], ["completed", slow(8).tokens.join("")]);
  }, { runner: { checkpointMs: 1000 } });
});

Deno.test(`sweep [${DRIVER}]: replies left streaming by a dead process are marked interrupted at start-up`, async () => {
  await withChat(async ({ t, session }) => {
    const id = await session();
    await t.database.db.execute(
      sql`insert into messages (session_id, role, content, status) values (${id}, 'user', 'q', 'completed')`,
    );
    await t.database.db.execute(sql`
      insert into messages (session_id, role, content, status, updated_at)
      values (${id}, 'assistant', 'half a rep', 'streaming', now() - interval '1 minute')`);
    assert.equal(await t.runner.sweep(30_000), 1);
    const reply = (await listMessages(t.database.db, id))[1];
    assert.deepEqual([reply.status, reply.finishReason, reply.content], [
      "interrupted",
      "server_restart",
      "half a rep",
    ]);
    assert.match(reply.error!, /use Continue to finish it/);
    const html = await (await t.request(`/sessions/${id}`)).text();
    assert.match(html, /badge-interrupted/);
  });
});

Deno.test(`retry [${DRIVER}]: a model silent at first (a proxy holding the request while a GPU starts) is said to be starting`, async () => {
  await withChat(async ({ t, stub, session, send }) => {
    stub.enqueue({ tokens: ["Late", " but", " here."], firstTokenDelayMs: 700 });
    const id = await session();
    const events = await readAll(await send(id, "Anyone there?"));
    assert.ok(
      events.some((e) => /Waiting for the model to start answering \(\d+ s so far\)/.test(e.data)),
      "the clinician is told the model is starting",
    );
    const reply = (await listMessages(t.database.db, id))[1];
    assert.equal(reply.status, "completed");
    assert.equal(reply.content, "Late but here.");
  }, { runner: { slowStartMs: 200 } });
});

Deno.test(`exchange [${DRIVER}]: storing a question answers created, repeat, busy, limited or gone, and stores only the first`, async () => {
  const t = await createTestApp();
  try {
    const db = t.database.db;
    const owner = t.user.id;
    const [first, second] = [
      await createChat(db, { ownerId: owner }),
      await createChat(db, { ownerId: owner }),
    ];
    const ask = (sessionId: string, clientId: string | null, maxActive?: number) =>
      startExchange(db, {
        sessionId,
        content: "Ankle oedema on amlodipine?",
        clientId,
        model: null,
        maxActive,
      });
    const created = await ask(first.id, "client-0001", 2);
    assert.equal(created.kind, "created");
    assert.ok(created.kind === "created" && created.assistant.replyTo === created.user.id);
    const again = await ask(first.id, "client-0001", 2);
    assert.equal(again.kind, "duplicate", "the same client id is the same message");
    assert.ok(again.kind === "duplicate" && created.kind === "created" && again.user.id === created.user.id);
    assert.equal(
      (await ask(first.id, "client-0002", 2)).kind,
      "busy",
      "a reply is still pending in this chat",
    );
    assert.equal(
      (await ask(second.id, "client-0003", 1)).kind,
      "limited",
      "one reply of the owner's is pending",
    );
    assert.equal((await ask(crypto.randomUUID(), "client-0004", 2)).kind, "no_session");
    assert.equal((await listMessages(db, second.id)).length, 0, "nothing stored for a refused question");
    assert.equal(
      (await listMessages(db, first.id)).length,
      2,
      "the first question and its pending reply only",
    );
    const room = await ask(second.id, "client-0005", 2);
    assert.equal(room.kind, "created", "two at once are allowed under a cap of two");
  } finally {
    await t.close();
  }
});

Deno.test(`exchange [${DRIVER}]: the budget and the rate are checked in the same round trip; only stored or rate-refused messages count`, async () => {
  const t = await createTestApp();
  try {
    const db = t.database.db;
    const owner = t.user.id;
    const key = messageRateKey(owner);
    const counted = () => peekEvents(db, key, 60_000);
    const chats = await Promise.all([0, 1, 2, 3].map(() => createChat(db, { ownerId: owner })));
    const ask = (sessionId: string, clientId: string, limits: { dailyTokens: number; max: number }) =>
      startExchange(db, {
        sessionId,
        content: "Is 40\u00a0mg of atorvastatin too much at 82?",
        clientId,
        model: null,
        maxActive: 5,
        limits: { dailyTokens: limits.dailyTokens, rate: { key, windowMs: 60_000, max: limits.max } },
      });
    const first = await ask(chats[0].id, "client-1001", { dailyTokens: 1000, max: 2 });
    assert.equal(first.kind, "created");
    assert.equal(await counted(), 1);
    assert.equal((await ask(chats[0].id, "client-1002", { dailyTokens: 1000, max: 2 })).kind, "busy");
    assert.equal(await counted(), 1, "a busy chat's refusal is not counted");
    const second = await ask(chats[1].id, "client-1003", { dailyTokens: 1000, max: 2 });
    assert.equal(second.kind, "created");
    const third = await ask(chats[2].id, "client-1004", { dailyTokens: 1000, max: 2 });
    assert.equal(third.kind, "rate_limited");
    assert.ok(third.kind === "rate_limited" && third.count === 3 && third.resetInSeconds >= 1);
    assert.ok(third.kind === "rate_limited" && third.resetInSeconds <= 60);
    assert.equal((await listMessages(db, chats[2].id)).length, 0, "nothing stored past the rate");
    assert.equal(await counted(), 3, "a message past the rate is counted (it was sent)");
    // A repeat is answered with what it started, whatever the limits say now, and is not counted.
    const again = await ask(chats[0].id, "client-1001", { dailyTokens: 1000, max: 0 });
    assert.equal(again.kind, "duplicate");
    assert.ok(again.kind === "duplicate" && first.kind === "created" && again.user.id === first.user.id);
    assert.equal(await counted(), 3);
    await addTokensForUser(db, owner, 1000);
    const over = await ask(chats[3].id, "client-1005", { dailyTokens: 1000, max: 100 });
    assert.equal(over.kind, "over_budget");
    assert.ok(over.kind === "over_budget" && over.tokensToday === 1000);
    assert.equal(await counted(), 3, "a message over the budget is refused before it is counted");
    const unlimited = await ask(chats[3].id, "client-1006", { dailyTokens: 0, max: 100 });
    assert.equal(unlimited.kind, "created", "a budget of 0 is no budget");
    assert.ok(unlimited.kind === "created" && unlimited.user.content.includes("40\u00a0mg"));
    assert.ok(unlimited.kind === "created");
    // The rows are built from what the function returns, not read back: they must equal what was stored.
    assert.deepEqual(await getMessage(db, chats[3].id, unlimited.user.id), unlimited.user);
    assert.deepEqual(await getMessage(db, chats[3].id, unlimited.assistant.id), unlimited.assistant);
  } finally {
    await t.close();
  }
});
