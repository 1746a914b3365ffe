/**
 * Counting tokens as the model does: the server's own `/tokenize` (llama.cpp, TGI, vLLM), a local tokenizer the
 * operator names (Llama-2's vocabulary through llama-tokenizer-js, or any `tokenizer.json` through
 * @huggingface/tokenizers), and, only where neither exists, an estimate that errs high. Prompt fitting uses it
 * (inference/completion.ts); an undercount overflows the context, so the estimate never undercounts the texts
 * it was measured on (`deno task eval tokens`).
 */
import { dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import llamaTokenizer from "llama-tokenizer-js";
import { errorDetail } from "./server.ts";

/** Counts tokens as a model's tokenizer does. */
export interface TokenCounter {
  /** For logs: "llama.cpp /tokenize at http://…", "Llama-2 tokenizer (llama-tokenizer-js)", "estimate (errs high)". */
  readonly description: string;
  /** False for the estimate. */
  readonly exact: boolean;
  /** Tokens in each text, with no BOS/EOS added; control-token strings in the text are counted as the server parses them. */
  count(texts: string[], signal?: AbortSignal): Promise<number[]>;
}

/** Characters per token the estimate allows a lower-case or capitalised word (measured: see eval_tokens.ts). */
const LETTERS_PER_TOKEN = 2.5;
/** Characters per token of an all-capitals run (abbreviations split finely). */
const CAPITALS_PER_TOKEN = 1.5;

/**
 * Tokens in a text, counted high for Llama-style tokenizers: every digit, punctuation mark and space not
 * before a word is a token, every non-ASCII character as many tokens as it has UTF-8 bytes (byte fallback), and
 * words by their letters. Against Llama-2's tokenizer on the project's 4,856 texts and its messy clinical
 * messages it never undercounts (median 2.0× on short texts; see `deno task eval tokens`).
 */
export function estimateTokens(text: string): number {
  let n = 0;
  // deno-lint-ignore no-control-regex -- every ASCII character, control characters included, is a token
  for (const m of text.matchAll(/( ?[A-Za-z]+)|([0-9])|( )|([\x00-\x7f])|([^\x00-\x7f])/gsu)) {
    if (m[1]) {
      for (const segment of m[1].trimStart().match(/[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[A-Z]/g) ?? []) {
        n += /^[A-Z]{2,}$/.test(segment)
          ? Math.ceil(segment.length / CAPITALS_PER_TOKEN)
          : Math.ceil(segment.length / LETTERS_PER_TOKEN);
      }
    } else if (m[5]) {
      const code = m[5].codePointAt(0)!;
      n += code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    } else n += 1;
  }
  return Math.ceil(n * 1.05) + 2;
}

/** The estimate as a counter: the last resort where the model's tokenizer is not available. */
export function estimateCounter(): TokenCounter {
  return {
    description: "an estimate that errs high (no tokenizer available)",
    exact: false,
    count: (texts) => Promise.resolve(texts.map(estimateTokens)),
  };
}

/** Where a server's tokenizer is. */
export interface ServerTokenizerTarget {
  url: string;
  token: string | null;
  model: string | null;
  family: "llama.cpp" | "tgi" | "vllm";
}

/** Requests to the tokenizer route in flight at once. */
const CONCURRENCY = 4;
/** A tokenizer route slower than this is skipped for the call: the estimate stands in. */
const TIMEOUT_MS = 2000;

/**
 * The server's own tokenizer: llama.cpp `POST /tokenize {content}`, TGI `POST /tokenize {inputs}`, vLLM
 * `POST /tokenize {model, prompt}`. A failure never fails the caller: that call is estimated, one line is
 * logged (at most once a minute), and the server is asked again next time.
 */
export function serverTokenCounter(
  target: ServerTokenizerTarget,
  options: { fetch?: typeof fetch } = {},
): TokenCounter {
  const fetchFn = options.fetch ?? fetch;
  const root = target.url.replace(/\/+$/, "").replace(/\/v1$/, "");
  let lastLog = -Infinity;
  const headers: HeadersInit = {
    "content-type": "application/json",
    ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
  };

  async function countOne(text: string, signal?: AbortSignal): Promise<number> {
    const body = target.family === "llama.cpp"
      ? { content: text, add_special: false, parse_special: true }
      : target.family === "tgi"
      ? { inputs: text }
      : { ...(target.model ? { model: target.model } : {}), prompt: text, add_special_tokens: false };
    const timeout = AbortSignal.timeout(TIMEOUT_MS);
    const response = await fetchFn(`${root}/tokenize`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const text_ = await response.text();
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${errorDetail(text_)}`);
    const json = JSON.parse(text_);
    if (target.family === "llama.cpp" && Array.isArray(json.tokens)) return json.tokens.length;
    if (target.family === "vllm" && typeof json.count === "number") return json.count;
    if (target.family === "tgi" && Array.isArray(json)) {
      // TGI adds the tokenizer's specials (BOS): they cover no text (start === stop).
      return json.filter((t: { start?: number; stop?: number }) => t.start !== t.stop).length;
    }
    throw new Error(`unexpected answer ${text_.slice(0, 80)}`);
  }

  return {
    description: `${target.family} /tokenize at ${root}`,
    exact: true,
    async count(texts, signal) {
      const counts = new Array<number>(texts.length);
      let next = 0;
      try {
        await Promise.all(Array.from({ length: Math.min(CONCURRENCY, texts.length) }, async () => {
          while (next < texts.length) {
            const index = next++;
            counts[index] = await countOne(texts[index], signal);
          }
        }));
        return counts;
      } catch (error) {
        signal?.throwIfAborted();
        if (performance.now() - lastLog > 60_000) {
          lastLog = performance.now();
          console.error(
            `tokens: ${root}/tokenize failed (${
              (error as Error).message
            }); counting with an estimate that errs high`,
          );
        }
        return texts.map(estimateTokens);
      }
    },
  };
}

/**
 * A tokenizer that runs here: "llama2" (Llama-2's vocabulary, shipped in llama-tokenizer-js), or the path of a
 * model's `tokenizer.json` (its `tokenizer_config.json` beside it is read when present).
 */
export async function localTokenCounter(
  name: string,
  io: { readTextFile(path: string): Promise<string> },
): Promise<TokenCounter> {
  if (name === "llama2") {
    return {
      description: "the Llama-2 tokenizer (llama-tokenizer-js)",
      exact: true,
      count: (texts) => Promise.resolve(texts.map((t) => countLlama2(t))),
    };
  }
  let json: object;
  try {
    json = JSON.parse(await io.readTextFile(name));
  } catch (error) {
    throw new Error(`Cannot read the tokenizer ${name}: ${(error as Error).message}`);
  }
  const config = await io.readTextFile(join(dirname(name), "tokenizer_config.json"))
    .then((text) => JSON.parse(text), () => ({}));
  const tokenizer = new Tokenizer(json, config);
  return {
    description: `the tokenizer in ${name}`,
    exact: true,
    count: (texts) =>
      Promise.resolve(texts.map((t) => tokenizer.encode(t, { add_special_tokens: false }).ids.length)),
  };
}

/** Llama-2's count of a text, with `<s>` / `</s>` strings as the single control tokens a server parses them into. */
function countLlama2(text: string): number {
  let n = 0;
  for (const part of text.split(/(<\/?s>)/)) {
    if (part === "<s>" || part === "</s>") n += 1;
    else if (part) n += llamaTokenizer.encode(part, false, false).length;
  }
  return n;
}
