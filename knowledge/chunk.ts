/**
 * Sentence splitting and chunking for long passages: a chunk is a run of whole sentences no longer than the
 * limit, so a retrieved snippet never starts or ends mid-sentence unless one sentence is longer than a chunk.
 */

/** Options for {@link chunkText}. */
export interface ChunkOptions {
  /** Longest chunk, in UTF-16 code units (string length). Default 1200. */
  maxChars?: number;
}

/** Words that never end a sentence, whatever follows ("Dr. Smith", "e.g. Aspirin", "vs. Placebo"). */
const NEVER_FINAL = new Set([
  "dr",
  "drs",
  "mr",
  "mrs",
  "ms",
  "prof",
  "sr",
  "jr",
  "st",
  "vs",
  "e.g",
  "i.e",
  "cf",
  "viz",
  "approx",
  "incl",
  "esp",
]);

/** Words that do not end a sentence before a number ("Fig. 2", "No. 5", "pp. 10"). */
const BEFORE_NUMBER = new Set([
  "no",
  "nos",
  "fig",
  "figs",
  "vol",
  "p",
  "pp",
  "eq",
  "ref",
  "refs",
  "tab",
  "ch",
]);

/**
 * Words that do not end a sentence before a lower-case word ("5 mg. daily", "etc. and", "et al. found"),
 * though they do before a capital ("Take 5 mg. Then…").
 */
const BEFORE_LOWER = new Set([
  "mg",
  "mcg",
  "µg",
  "ug",
  "g",
  "kg",
  "ml",
  "l",
  "cm",
  "mm",
  "km",
  "h",
  "hr",
  "hrs",
  "min",
  "mins",
  "sec",
  "wk",
  "wks",
  "mo",
  "mos",
  "yr",
  "yrs",
  "tab",
  "tabs",
  "cap",
  "caps",
  "tsp",
  "tbsp",
  "etc",
  "al",
  "dept",
  "approx",
]);

/** A run of sentence-final punctuation, any closing quotes or brackets, then the whitespace after it. */
const TERMINAL = /([.!?…]+)(["'”’)\]]*)(\s+)/g;
const PARAGRAPH_BREAK = /\n[ \t]*\n\s*/;
const UPPER = /\p{Lu}/u;
const LOWER = /\p{Ll}/u;
const DIGIT = /\d/;
const OPENER = /["'“‘(\[]/;

/** Splits text into sentences, keeping abbreviations ("Dr.", "e.g.", "5 mg. daily"), decimals and ellipses. */
export function splitSentences(text: string): string[] {
  const sentences: string[] = [];
  for (const paragraph of text.split(PARAGRAPH_BREAK)) {
    let start = 0;
    for (const match of paragraph.matchAll(TERMINAL)) {
      const next = match.index + match[0].length;
      if (next >= paragraph.length) break;
      if (!endsSentence(paragraph, match.index, match[1], paragraph[next])) continue;
      pushTrimmed(sentences, paragraph.slice(start, match.index + match[1].length + match[2].length));
      start = next;
    }
    pushTrimmed(sentences, paragraph.slice(start));
  }
  return sentences;
}

/** Splits text into chunks of at most `maxChars`, on sentence boundaries, on whitespace when one sentence is too long. */
export function chunkText(text: string, options: ChunkOptions = {}): string[] {
  const maxChars = options.maxChars ?? 1200;
  if (!Number.isInteger(maxChars) || maxChars < 1) {
    throw new RangeError(`maxChars must be a positive integer, got ${maxChars}`);
  }
  const trimmed = text.trim();
  if (trimmed.length <= maxChars) return trimmed ? [trimmed] : [];

  const chunks: string[] = [];
  let current = "";
  for (const sentence of splitSentences(trimmed)) {
    const pieces = sentence.length <= maxChars ? [sentence] : splitOnWhitespace(sentence, maxChars);
    for (const piece of pieces) {
      if (!current) current = piece;
      else if (current.length + 1 + piece.length <= maxChars) current += " " + piece;
      else {
        chunks.push(current);
        current = piece;
      }
    }
  }
  if (current) chunks.push(current);
  return chunks;
}

/** Whether the punctuation at `at` ends a sentence, judged by the word before it and the character after. */
function endsSentence(text: string, at: number, terminal: string, next: string): boolean {
  if (terminal.includes("?") || terminal.includes("!")) return true;
  const lower = LOWER.test(next);
  // An ellipsis trails off mid-sentence unless a new sentence visibly starts after it.
  if (terminal !== ".") return !lower;
  if (!lower && !UPPER.test(next) && !DIGIT.test(next) && !OPENER.test(next)) return false;

  const word = wordBefore(text, at);
  if (NEVER_FINAL.has(word)) return false;
  if (DIGIT.test(next)) return !BEFORE_NUMBER.has(word);
  // Initials, list letters and dotted abbreviations ("u.s.") before a lower-case word are not sentence ends.
  if (lower) {
    return !(BEFORE_LOWER.has(word) || BEFORE_NUMBER.has(word) || word.length <= 1 || word.includes("."));
  }
  return true;
}

/** The lower-cased word that ends at `end`, without leading quotes or brackets. */
function wordBefore(text: string, end: number): string {
  let start = end;
  while (start > 0 && !/\s/.test(text[start - 1])) start--;
  return text.slice(start, end).replace(/^["'“‘(\[]+/, "").toLowerCase();
}

/** Splits an over-long sentence between words; a single word longer than the limit is cut. */
function splitOnWhitespace(sentence: string, maxChars: number): string[] {
  const pieces: string[] = [];
  let current = "";
  for (let word of sentence.split(/\s+/)) {
    while (word.length > maxChars) {
      if (current) {
        pieces.push(current);
        current = "";
      }
      // Never cut between the two halves of a surrogate pair.
      const cut = isHighSurrogate(word.charCodeAt(maxChars - 1)) ? maxChars - 1 : maxChars;
      pieces.push(word.slice(0, cut));
      word = word.slice(cut);
    }
    if (!word) continue;
    if (!current) current = word;
    else if (current.length + 1 + word.length <= maxChars) current += " " + word;
    else {
      pieces.push(current);
      current = word;
    }
  }
  if (current) pieces.push(current);
  return pieces;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function pushTrimmed(into: string[], text: string): void {
  const trimmed = text.trim();
  if (trimmed) into.push(trimmed);
}
