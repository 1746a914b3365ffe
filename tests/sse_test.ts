import assert from "node:assert/strict";
import { formatSse, sseResponse } from "../routes/sse.ts";
import { readAll, streamedText } from "./support/sse_client.ts";

Deno.test("sse: a data line that starts with a space keeps it (parsers drop one)", () => {
  assert.equal(formatSse({ id: "a", data: " word\nnext" }), "id:a\ndata:  word\ndata:next\n\n");
  assert.equal(formatSse({ id: "end", event: "done", data: "" }), "id:end\nevent:done\ndata:\n\n");
});

Deno.test("sse: a reader that falls behind gets the waiting deltas merged, with the last id", async () => {
  const pieces = Array.from({ length: 200 }, (_, i) => ` p${i}`);
  const response = sseResponse(new Request("http://x/"), (sse) => {
    pieces.forEach((piece, i) => sse.send({ id: String(i), data: piece, appends: true }));
    sse.send({ id: "end", event: "done", data: "" });
    sse.close();
  });
  // Nobody reads until everything was sent: the stream holds two chunks, the rest waits and merges.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const events = await readAll(response);
  assert.ok(events.length < 10, `${events.length} messages for 200 deltas`);
  assert.equal(streamedText(events.filter((e) => e.event !== "done")), pieces.join(""));
  assert.equal(events.at(-2)!.id, "199", "the merged message carries the newest id");
  assert.deepEqual(
    [events.at(-1)!.event, events.at(-1)!.id],
    ["done", "end"],
    "named events are never merged",
  );
});

Deno.test("sse: a reader that keeps up gets every message on its own", async () => {
  const response = sseResponse(new Request("http://x/"), async (sse) => {
    for (let i = 0; i < 20; i++) {
      sse.send({ id: String(i), data: `m${i}`, appends: true });
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    sse.close();
  });
  const events = await readAll(response);
  assert.equal(events.length, 20);
  assert.deepEqual(events.map((e) => e.id), Array.from({ length: 20 }, (_, i) => String(i)));
});

Deno.test("sse: gzip when accepted; every flush is decodable on its own and the whole round-trips", async () => {
  const request = new Request("http://x/", { headers: { "accept-encoding": "gzip, deflate" } });
  let release = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const response = sseResponse(request, async (sse) => {
    sse.send({ id: "1", data: "first <b>escaped elsewhere</b>", appends: true });
    await gate;
    sse.send({ id: "2", data: " second", appends: true });
    sse.close();
  });
  assert.equal(response.headers.get("content-encoding"), "gzip");
  const reader = response.body!.pipeThrough(
    new DecompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>,
  )
    .pipeThrough(new TextDecoderStream()).getReader();
  // The first message decodes before the second exists: the flush really flushed.
  let text = "";
  while (!text.includes("\n\n")) text += (await reader.read()).value;
  assert.equal(text, "id:1\ndata:first <b>escaped elsewhere</b>\n\n");
  release();
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
  assert.equal(text, "id:1\ndata:first <b>escaped elsewhere</b>\n\nid:2\ndata:  second\n\n");
});
