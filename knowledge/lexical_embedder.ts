/**
 * The embedded default embedder: feature hashing of normalised words and word pairs into 384 signed buckets,
 * sublinear term weights, unit length. Deterministic, offline, and fast; it matches words, not meanings, and
 * says so wherever it is named.
 */
import type { Embedder } from "./embedder.ts";

/** Id recorded with the vectors it makes. Change it whenever the features change. */
export const LEXICAL_EMBEDDER_ID = "lexical-hash-v1";

/** Buckets the features hash into: part of the features, so a change needs a new LEXICAL_EMBEDDER_ID. */
export const LEXICAL_DIMENSIONS = 384;

const STOPWORDS = new Set(
  ("a about above after again all also am an and any are as at be because been before being below between " +
    "both but by can could did do does doing down during each few for from further had has have having he her " +
    "here hers him his how i if in into is it its itself just me more most my no nor not now of off on once " +
    "only or other our ours out over own same she should so some such than that the their them then there these " +
    "they this those through to too under until up very was we were what when where which while who whom why " +
    "will with would you your yours hi hello doctor dear thanks thank please regards").split(" "),
);

const BIGRAM_WEIGHT = 0.5;

/** Lowercase, accent-free, stop-word-free, lightly stemmed words of a text. */
export function lexicalTerms(text: string): string[] {
  const words = text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "").match(/[a-z0-9]+/g) ??
    [];
  const terms: string[] = [];
  for (const word of words) {
    if (STOPWORDS.has(word) || (word.length === 1 && !/[0-9]/.test(word))) continue;
    terms.push(stem(word));
  }
  return terms;
}

/** A light suffix stripper: enough that "coughs", "coughing" and "coughed" meet; never below 3 letters. */
function stem(word: string): string {
  if (word.length <= 3 || /[0-9]/.test(word)) return word;
  if (word.endsWith("ies") && word.length > 4) return word.slice(0, -3) + "y";
  if (word.endsWith("ing") && word.length > 5) return word.slice(0, -3);
  if (word.endsWith("ed") && word.length > 4) return word.slice(0, -2);
  if (word.endsWith("es") && word.length > 4 && /(ch|sh|x|ss)es$/.test(word)) return word.slice(0, -2);
  if (word.endsWith("s") && !word.endsWith("ss") && !word.endsWith("us") && !word.endsWith("is")) {
    return word.slice(0, -1);
  }
  return word;
}

/** 32-bit FNV-1a over UTF-16 code units. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The unit vector of one text. A text with no words gets a fixed vector, so cosine distance stays defined. */
export function lexicalVector(text: string): Float32Array {
  const terms = lexicalTerms(text);
  const counts = new Map<string, number>();
  for (let i = 0; i < terms.length; i++) {
    counts.set(terms[i], (counts.get(terms[i]) ?? 0) + 1);
    if (i > 0) {
      const pair = terms[i - 1] + " " + terms[i];
      counts.set(pair, (counts.get(pair) ?? 0) + BIGRAM_WEIGHT);
    }
  }
  const vector = new Float32Array(LEXICAL_DIMENSIONS);
  for (const [feature, count] of counts) {
    const hash = fnv1a(feature);
    const weight = (1 + Math.log(count / (feature.includes(" ") ? BIGRAM_WEIGHT : 1))) *
      (feature.includes(" ") ? BIGRAM_WEIGHT : 1);
    vector[hash % LEXICAL_DIMENSIONS] += hash & 0x80000000 ? -weight : weight;
  }
  let norm = 0;
  for (let i = 0; i < vector.length; i++) norm += vector[i] * vector[i];
  if (norm === 0) {
    vector[0] = 1;
    return vector;
  }
  norm = Math.sqrt(norm);
  for (let i = 0; i < vector.length; i++) vector[i] /= norm;
  return vector;
}

/** The built-in embedder. */
export function createLexicalEmbedder(): Embedder {
  return {
    id: LEXICAL_EMBEDDER_ID,
    description:
      `built-in lexical embedder (feature hashing of words and word pairs, ${LEXICAL_DIMENSIONS} ` +
      "dimensions, offline; matches words, not meanings)",
    dimensions: LEXICAL_DIMENSIONS,
    batchSize: 256,
    wordsOnly: true,
    local: true,
    embed: (texts) => Promise.resolve(texts.map(lexicalVector)),
  };
}
