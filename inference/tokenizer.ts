/**
 * Counting tokens as the model does: the server's own `/tokenize` (llama.cpp, TGI, vLLM), a local tokenizer the
 * operator names (Llama-2's vocabulary through llama-tokenizer-js, or any `tokenizer.json` through
 * @huggingface/tokenizers), and only where neither is available an estimate that errs high. An undercount
 * overflows the model's context, so the estimate is measured against Llama-2's tokenizer on every text the
 * project ships and on messy clinical messages (`deno task eval tokens`), and never undercounts one of them.
 */
import { dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import llamaTokenizer from "llama-tokenizer-js";
import { describeConnectionError, errorDetail, serverRoot } from "./server.ts";
import { inSlices, piecesOf } from "../slices.ts";

/** Counts tokens as a model's tokenizer does. */
export interface TokenCounter {
  /** For logs: "llama.cpp /tokenize at http://…", "Llama-2 tokenizer (llama-tokenizer-js)", "estimate (errs high)". */
  readonly description: string;
  /** False for the estimate. */
  readonly exact: boolean;
  /**
   * Tokens in each text, with no BOS/EOS added, special-token strings in the text ("<s>", "[INST]") parsed as
   * the server would. Rejects only when `signal` aborts.
   */
  count(texts: string[], signal?: AbortSignal): Promise<number[]>;
}

// The estimate. Llama-2's SentencePiece vocabulary (32,000 pieces, byte fallback) is the reference: it splits
// finer than the larger vocabularies of newer models, and every figure below was measured against it.

/** Lower-case words the estimate counts as one token after a space: one Llama-2 token each (tested). */
export const ONE_TOKEN_WORDS: ReadonlySet<string> = new Set(
  ("that this with have your from they will what when there which been were would could should about after " +
    "before other than then these those them their also more some only very just like well into over such " +
    "because while where being does each much many most need take taking feel feeling pain blood doctor " +
    "patient years days weeks hours months daily since still please thank thanks hello dear good know think " +
    "want said first last same both here time year week month night back left right body normal high below " +
    "above under again further once during through until ever every never always often sometimes usually " +
    "already another around without within between against among make made help even going done given found " +
    "used using treatment history").split(" "),
);
/** Letters per token of a lower-case word of 4–9 letters; longer words are rarer and split finer. */
const LETTERS_PER_TOKEN = 3.5;
/** Letters per token of a lower-case word of 10 letters or more (Llama-2 averages 2.6 at 15–16 letters). */
const LONG_WORD_LETTERS_PER_TOKEN = 2.5;
/** Letters per token of a capitalised word: names and drug brands split finely. */
const CAPITALISED_LETTERS_PER_TOKEN = 2;
/** Letters per token of capitals, of letters glued to digits or other letters (codes, base64), of non-words. */
const DENSE_LETTERS_PER_TOKEN = 1.5;
/** Headroom over the sum: with SLACK, no measured text below the byte bound is estimated under 1.14× its count. */
const MARGIN = 1.15;
/** Tokens added to every estimate: short texts, whose few words may all be rare, need it most. */
const SLACK = 3;

/** A word of four letters or more with none of these is not a word ("hmmm", "pfft"): it splits like a code. */
const VOWEL = /[aeiouyAEIOUY]/;
/** A word (a space before it included), a run of capitals, one non-ASCII character, or one of anything else. */
const PIECES = /( ?)(?:([A-Z]?[a-z]+)|([A-Z]+)(?![a-z]))|(\P{ASCII})|[^]/gu;

/**
 * Tokens in a text, counted high: every digit, punctuation mark and space not before a word is a token, every
 * other non-ASCII character as many tokens as its UTF-8 bytes (byte fallback), words by their letters, and never
 * more than the UTF-8 bytes + 1, a hard bound for any byte-fallback or byte-level tokenizer (+1: SentencePiece's
 * leading space). Against Llama-2 it undercounts none of 4,778 texts (median 1.6×; `deno task eval tokens`).
 */
export function estimateTokens(text: string): number {
  if (text === "") return 0;
  let n = 0;
  let bytes = 0;
  for (const m of text.matchAll(PIECES)) {
    const [piece, space, word, capitals, wide] = m;
    if (wide) {
      const size = wide.length === 2 ? 4 : wide.charCodeAt(0) < 0x800 ? 2 : 3;
      n += size;
      bytes += size;
      continue;
    }
    bytes += piece.length;
    if (word) {
      const glued = !space && m.index > 0 && /[A-Za-z0-9]/.test(text[m.index - 1]);
      if (glued || (word.length > 3 && !VOWEL.test(word))) {
        n += Math.ceil(word.length / DENSE_LETTERS_PER_TOKEN);
      } else if (word.charCodeAt(0) < 0x61) n += Math.ceil(word.length / CAPITALISED_LETTERS_PER_TOKEN);
      else if (word.length <= 3 || (space && ONE_TOKEN_WORDS.has(word))) n += 1;
      else if (word.length < 10) n += Math.ceil(word.length / LETTERS_PER_TOKEN);
      else n += Math.ceil(word.length / LONG_WORD_LETTERS_PER_TOKEN);
    } else if (capitals) n += Math.ceil(capitals.length / DENSE_LETTERS_PER_TOKEN);
    else n += 1;
  }
  return Math.min(bytes + 1, Math.ceil(n * MARGIN) + SLACK);
}

/** The estimate as a counter: the last resort where neither the server nor a local tokenizer can count. */
export function estimateCounter(): TokenCounter {
  return {
    description: "estimate (errs high)",
    exact: false,
    count: inPieces(estimateTokens, 0),
  };
}

/** A server whose `/tokenize` counts: where it is, the key it takes and the model it serves. */
export interface ServerTokenizerTarget {
  /** The endpoint's base URL; a trailing `/v1` is dropped (the tokenize routes are at the server root). */
  url: string;
  token: string | null;
  /** vLLM's model name; null sends none (vLLM then uses the one it serves). */
  model: string | null;
  family: "llama.cpp" | "tgi" | "vllm";
}

/** Requests to `/tokenize` in flight at once (llama.cpp and TGI take one text per request). */
const IN_FLIGHT = 4;
/** A `/tokenize` request slower than this counts as failed: that call is estimated. */
const TOKENIZE_TIMEOUT_MS = 2000;
/** At most one log line per counter this often while its server keeps failing. */
const LOG_EVERY_MS = 60_000;

/**
 * The server's own tokenizer: llama.cpp `POST /tokenize {content, add_special: false, parse_special: true}`, TGI
 * `POST /tokenize {inputs}` (its BOS taken off), vLLM `POST /tokenize {model, prompt, add_special_tokens: false}`.
 * A failure (refused, 404, 5xx, slower than 2 s, an answer it cannot read) never fails the caller: the texts not
 * yet counted are estimated, one line is logged at most once a minute, and the next call asks the server again.
 */
export function serverTokenCounter(
  target: ServerTokenizerTarget,
  options: { fetch?: typeof fetch } = {},
): TokenCounter {
  const fetchFn = options.fetch ?? fetch;
  const root = serverRoot(target.url);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  let loggedAt = -Infinity;

  async function countOne(text: string, signal: AbortSignal): Promise<number> {
    const body = target.family === "llama.cpp"
      ? { content: text, add_special: false, parse_special: true }
      : target.family === "tgi"
      ? { inputs: text }
      : { ...(target.model ? { model: target.model } : {}), prompt: text, add_special_tokens: false };
    const response = await fetchFn(`${root}/tokenize`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, AbortSignal.timeout(TOKENIZE_TIMEOUT_MS)]),
    });
    const answer = await response.text();
    if (!response.ok) throw new TokenizeRefusal(`HTTP ${response.status}: ${errorDetail(answer)}`);
    const count = tokensIn(target.family, JSON.parse(answer));
    if (count === null) {
      throw new TokenizeRefusal(`an answer not in ${target.family}'s shape: ${answer.slice(0, 120)}`);
    }
    return count;
  }

  return {
    description: `${target.family} /tokenize at ${root}`,
    exact: true,
    async count(texts, signal) {
      signal?.throwIfAborted();
      const counts: (number | undefined)[] = texts.map(() => undefined);
      // One failure stops the call: the requests still in flight are cancelled, the rest are estimated.
      const stop = new AbortController();
      const abort = () => stop.abort(signal?.reason);
      signal?.addEventListener("abort", abort, { once: true });
      let failure: unknown = null;
      let next = 0;
      const worker = async () => {
        while (next < texts.length && failure === null) {
          const index = next++;
          try {
            counts[index] = await countOne(texts[index], stop.signal);
          } catch (error) {
            failure ??= error;
            stop.abort();
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, texts.length) }, worker));
      } finally {
        signal?.removeEventListener("abort", abort);
      }
      signal?.throwIfAborted();
      if (failure !== null && performance.now() - loggedAt >= LOG_EVERY_MS) {
        loggedAt = performance.now();
        console.warn(
          `tokens: ${target.family} ${root}/tokenize failed (${describe(failure)}); ` +
            `counting with an estimate that errs high until it answers`,
        );
      }
      return counts.map((count, i) => count ?? estimateTokens(texts[i]));
    },
  };
}

/** The token count in a `/tokenize` answer, or null when it is not the family's shape. */
function tokensIn(family: ServerTokenizerTarget["family"], json: unknown): number | null {
  if (family === "llama.cpp") {
    const tokens = (json as { tokens?: unknown } | null)?.tokens;
    return Array.isArray(tokens) ? tokens.length : null;
  }
  if (family === "vllm") {
    const count = (json as { count?: unknown } | null)?.count;
    return typeof count === "number" ? count : null;
  }
  if (!Array.isArray(json)) return null;
  // TGI tokenizes with the tokenizer's specials added and gives no switch for it. A BOS or EOS it added covers
  // no text (start === stop); one at either end is dropped. An answer with no offsets at all (every span empty)
  // is counted whole: one token high at most.
  const spans = json as { start?: number; stop?: number }[];
  const empty = (t: { start?: number; stop?: number } | undefined) => !!t && t.start === t.stop;
  if (spans.every(empty)) return spans.length;
  return spans.length - (empty(spans[0]) ? 1 : 0) - (spans.length > 1 && empty(spans.at(-1)) ? 1 : 0);
}

/** A /tokenize answer that cannot be counted (an error status, or a body in another shape). */
class TokenizeRefusal extends Error {}

function describe(error: unknown): string {
  if (error instanceof TokenizeRefusal) return error.message;
  if (error instanceof SyntaxError) return `an answer that is not JSON (${error.message})`;
  return describeConnectionError(error);
}

/** How a local tokenizer reads its files. */
export interface TokenizerFiles {
  readTextFile(path: string): Promise<string>;
}

/**
 * A tokenizer that runs here: "llama2" (Llama-2's vocabulary, shipped in llama-tokenizer-js), or the path of a
 * model's `tokenizer.json` (read with the `tokenizer_config.json` beside it, when there is one).
 */
export async function localTokenCounter(name: string, io: TokenizerFiles): Promise<TokenCounter> {
  if (name === "llama2") {
    return {
      description: "Llama-2 tokenizer (llama-tokenizer-js)",
      exact: true,
      count: inPieces(countLlama2, 1),
    };
  }
  let json: object;
  try {
    json = JSON.parse(await io.readTextFile(name));
  } catch (error) {
    throw new Error(`Cannot read the tokenizer ${name}: ${(error as Error).message}`);
  }
  // The config beside it is optional; one that is there must parse.
  const configPath = join(dirname(name), "tokenizer_config.json");
  const configText = await io.readTextFile(configPath).catch(() => null);
  let config: object = {};
  try {
    if (configText !== null) config = JSON.parse(configText);
  } catch (error) {
    throw new Error(`Cannot read ${configPath} beside the tokenizer: ${(error as Error).message}`);
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (error) {
    throw new Error(`Cannot use the tokenizer ${name}: ${(error as Error).message}`);
  }
  return {
    description: `tokenizer.json at ${name} (@huggingface/tokenizers)`,
    exact: true,
    count: inPieces((text) => tokenizer.encode(text, { add_special_tokens: false }).ids.length, 1),
  };
}

/** The longest text counted in one go: a longer one is counted in pieces, with other requests served between. */
const PIECE_CHARS = 16_000;

/**
 * A local count made asynchronous in the way that matters: long texts are counted in pieces cut at whitespace,
 * and the event loop serves other requests between pieces. `perCut` tokens are added for each cut (a piece
 * after a cut may gain the leading space SentencePiece adds): the count errs high, never low.
 */
function inPieces(countOne: (text: string) => number, perCut: number) {
  return async (texts: string[]): Promise<number[]> => {
    const counts = new Array<number>(texts.length).fill(0);
    const jobs = texts.flatMap((text, i) =>
      piecesOf(text, PIECE_CHARS).map((piece, j) => ({ i, piece, cut: j > 0 }))
    );
    await inSlices(jobs.length, (k) => {
      const { i, piece, cut } = jobs[k];
      counts[i] += countOne(piece) + (cut ? perCut : 0);
    });
    return counts;
  };
}

/** Llama-2's control tokens, which llama.cpp and Hugging Face's tokenizer take as one token each in a text. */
const LLAMA2_CONTROL = /(<s>|<\/s>|<unk>)/;

/**
 * Llama-2's count as llama.cpp's `/tokenize` gives it (parse_special, no BOS): each control-token string is one
 * token, and each stretch of text between them gets SentencePiece's leading space.
 */
function countLlama2(text: string): number {
  let n = 0;
  for (const part of text.split(LLAMA2_CONTROL)) {
    if (part === "<s>" || part === "</s>" || part === "<unk>") n += 1;
    else if (part) n += llamaTokenizer.encode(part, false, true).length;
  }
  return n;
}
