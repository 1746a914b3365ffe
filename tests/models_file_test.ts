/**
 * MODELS_FILE (inference/models_file.ts): a good file becomes the models operators expect, and a bad one is
 * refused at start with every problem named by model and field, unknown (misspelt) fields included.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../config.ts";
import { loadModels, ModelsError } from "../inference/models.ts";

async function load(file: unknown, env: Record<string, string> = {}) {
  const text = typeof file === "string" ? file : JSON.stringify(file);
  return await loadModels(loadConfig({ MODELS_FILE: "/srv/rounds/models.json" }), {
    readTextFile: (path) =>
      path === "/srv/rounds/models.json" ? Promise.resolve(text) : Promise.reject(new Error(`no ${path}`)),
    env,
  });
}

async function problems(file: unknown): Promise<string[]> {
  const error = await load(file).then(() => null, (e) => e);
  assert.ok(error instanceof ModelsError, `expected a ModelsError, got ${error}`);
  return error.problems.map((p: string) => p.replace("MODELS_FILE /srv/rounds/models.json: ", ""));
}

Deno.test("models file: entries become models with their defaults, limits, tokens and servers", async () => {
  const registry = await load({
    models: [
      {
        id: "meddialog-7b",
        label: "MedDialog 7B",
        url: "https://x.example/v1/",
        template: "llama2-meddialog",
        server: "llama-server",
        context_size: 4096,
        tokenizer: "llama2",
        defaults: { temperature: 0.2, max_new_tokens: 700 },
        adapter_id: "org/lora",
        token_env: "LORA_TOKEN",
      },
      { id: "provider", model: "meta-llama/Llama-2-7b-chat-hf", label: "", tokenizer: "tok/tokenizer.json" },
    ],
  }, { LORA_TOKEN: " secret " });
  const [first, second] = registry.list();
  assert.equal(first.label, "MedDialog 7B");
  assert.equal(first.target.url, "https://x.example/v1");
  assert.equal(first.target.server, "llama.cpp");
  assert.equal(first.target.token, "secret");
  assert.equal(first.target.adapterId, "org/lora");
  assert.deepEqual(first.defaults, { temperature: 0.2, topP: 0.95, maxNewTokens: 700 });
  assert.equal(first.maxNewTokensLimit, 2048, "half the context, or the default when larger");
  assert.equal(first.tokenizer, "llama2");
  assert.equal(second.label, "provider", "an empty label falls back to the id");
  assert.equal(second.templateName, "chat", "a model without url talks through the chat API");
  assert.equal(second.target.url, null);
  assert.equal(second.target.token, null);
  assert.equal(second.contextSize, null, "taken from the server when not configured");
  assert.equal(second.tokenizer, "/srv/rounds/tok/tokenizer.json", "paths are relative to the file");
});

Deno.test("models file: every problem is named by model and field, misspelt fields included", async () => {
  assert.deepEqual(
    await problems({
      models: [
        { id: "a b", url: "ftp://x", temprature: 0.3, defaults: { top_p: 3, topk: 5 } },
        { id: "b", api: "grpc", context_size: 100, server: "triton", token_env: "lower" },
        { id: "c", template: "chat", model: 7 },
        { label: "no id", model: "m", template: "mistral" },
        {
          id: "d",
          url: "http://d",
          context_size: 1024,
          defaults: { max_new_tokens: 900 },
          max_new_tokens_limit: 800,
        },
        { id: "d", url: "http://d2" },
        "not an object",
      ],
    }),
    [
      'models[0].id must be letters, digits, ".", "_" or "-", got "a b"',
      'models[0].url must be an http:// or https:// URL, got "ftp://x"',
      "models[0].defaults.top_p must be a number between 0.01 and 1, got 3",
      'models[0].defaults has unknown field "topk" (known: temperature, top_p, max_new_tokens)',
      `models[0] has unknown field "temprature" (known: id, label, url, model, template, api, server, ` +
      `context_size, tokenizer, defaults, max_new_tokens_limit, adapter_id, token_env)`,
      'models[1].api must be one of openai, tgi, got "grpc"',
      'models[1].server must be one of llama.cpp, vllm, sglang, tgi, ollama, openai (or absent, to ask the server), got "triton"',
      "models[1].context_size must be an integer between 256 and 1048576, got 100",
      'models[1].token_env must name an environment variable, got "lower"',
      "models[2].model must be a string, got 7",
      "models[3].id is required",
      "models[4].max_new_tokens_limit (800) is below defaults.max_new_tokens (900)",
      'models[5].id "d" is used by an earlier model',
      'models[6] must be an object, got "not an object"',
    ],
  );
});
