/** Snippets a test stores straight from plain texts. */
import type { NewSnippet } from "../../db/snippets.ts";
import { lexicalVector } from "../../knowledge/lexical_embedder.ts";

/**
 * One snippet per text, with the built-in lexical embedder's vector: source `source`, ids `${key}#n` and content
 * hashes `${key}-n`, numbered from `first`.
 */
export function lexicalSnippets(texts: string[], source: string, key: string, first = 0): NewSnippet[] {
  return texts.map((text, i) => ({
    source,
    sourceId: `${key}#${first + i}`,
    url: null,
    specialty: null,
    title: null,
    question: null,
    answer: text,
    text,
    contentHash: `${key}-${first + i}`,
    embedder: "lexical-hash-v1",
    embedding: lexicalVector(text),
  }));
}
