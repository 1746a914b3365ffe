/**
 * Clinical vocabulary for search: groups of terms that mean the same thing (abbreviations, drug classes and their
 * drugs, medical terms and the words patients use, British and American spellings), so that a question in one
 * register finds dialogues written in the other. Data, in data/vocabulary/clinical.txt (format documented
 * there); an operator adds groups with a file of the same format (CLINICAL_VOCABULARY).
 *
 * Expansion adds, for each term of a group found in the question, the group's other terms (a few at most), after
 * the question: the question's own words stay first and count as they did.
 */

/** Groups of equivalent terms, and an index from each term to its groups. */
export interface Vocabulary {
  groups: string[][];
  /** Lower-case terms matched in any case, by their first word. */
  byFirstWord: Map<string, { term: string; words: string[]; group: number }[]>;
  /** Terms written in capitals, matched exactly. */
  exact: Map<string, number[]>;
}

/** The vocabulary shipped with Rounds. */
export const CLINICAL_VOCABULARY = new URL("../data/vocabulary/clinical.txt", import.meta.url);

/** At most this many words are added for one group found, and this many in all. */
const PER_GROUP_WORDS = 4;
const MAX_ADDED_WORDS = 12;

// Words; a hyphen ends one, so "CCB-induced" holds "CCB" and "GLP-1" is one term found as "GLP" "1".
const WORD_RE = /[\p{L}\p{N}][\p{L}\p{N}'’]*/gu;

/** Reads vocabulary text: one group per line, terms separated by " | ", # comments. */
export function parseVocabulary(text: string, into?: Vocabulary): Vocabulary {
  const vocabulary: Vocabulary = into ?? { groups: [], byFirstWord: new Map(), exact: new Map() };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const terms = line.split("|").map((t) => t.trim()).filter(Boolean);
    if (terms.length < 2) continue;
    const group = vocabulary.groups.push(terms) - 1;
    for (const term of terms) {
      if (/^[\p{Lu}\p{N}-]+$/u.test(term) && /\p{Lu}/u.test(term)) {
        vocabulary.exact.set(term, [...(vocabulary.exact.get(term) ?? []), group]);
        continue;
      }
      const words = term.toLowerCase().match(WORD_RE) ?? [];
      const first = words[0];
      if (first === undefined) continue;
      const list = vocabulary.byFirstWord.get(first) ?? [];
      list.push({ term, words, group });
      vocabulary.byFirstWord.set(first, list);
    }
  }
  return vocabulary;
}

let shipped: Vocabulary | null = null;

/** The shipped vocabulary, with an operator's file added when one is given. */
export async function loadVocabulary(extra: string | null = null): Promise<Vocabulary> {
  shipped ??= parseVocabulary(await Deno.readTextFile(CLINICAL_VOCABULARY));
  if (!extra) return shipped;
  const merged = parseVocabulary(await Deno.readTextFile(CLINICAL_VOCABULARY));
  return parseVocabulary(await Deno.readTextFile(extra), merged);
}

/** The groups whose terms a text holds, in the order they appear, with the term found. */
function groupsIn(text: string, vocabulary: Vocabulary): { group: number; found: string }[] {
  const found: { group: number; found: string }[] = [];
  const tokens = [...text.matchAll(WORD_RE)].map((m) => m[0]);
  const lower = tokens.map((t) => t.toLowerCase());
  for (let i = 0; i < tokens.length; i++) {
    for (const group of vocabulary.exact.get(tokens[i]) ?? []) found.push({ group, found: tokens[i] });
    for (const entry of vocabulary.byFirstWord.get(lower[i]) ?? []) {
      if (entry.words.every((w, k) => lower[i + k] === w)) {
        found.push({ group: entry.group, found: entry.term });
      }
    }
  }
  return found;
}

/**
 * The question with the other terms of each group it mentions added after it (eight words per group, 24 in all),
 * or the question unchanged when it mentions none.
 */
export function expandQuery(question: string, vocabulary: Vocabulary): string {
  const present = question.toLowerCase();
  const added: string[] = [];
  let words = 0;
  const seenGroups = new Set<number>();
  for (const { group, found } of groupsIn(question, vocabulary)) {
    if (seenGroups.has(group)) continue;
    // Only a clinician's word is expanded (a group's first term, or an abbreviation): everyday words a patient
    // writes already match the dialogues patients wrote, and expanding them only dilutes the question.
    if (found !== vocabulary.groups[group][0] && !/^[\p{Lu}\p{N}]+$/u.test(found)) continue;
    seenGroups.add(group);
    let groupWords = 0;
    for (const term of vocabulary.groups[group]) {
      if (present.includes(term.toLowerCase()) || added.includes(term)) continue;
      const n = term.split(/\s+/).length;
      if (groupWords + n > PER_GROUP_WORDS || words + n > MAX_ADDED_WORDS) continue;
      added.push(term);
      words += n;
      groupWords += n;
    }
    if (words >= MAX_ADDED_WORDS) break;
  }
  return added.length ? `${question}\n${added.join("; ")}` : question;
}

/**
 * The text with abbreviations and everyday phrases written as their group's name ("AF" → "atrial fibrillation",
 * "water infection" → "urinary tract infection"): the words a literature search indexes. A single word (a
 * drug's name) is kept, being more precise than its class, and no term becomes an abbreviation.
 */
export function withGroupNames(text: string, vocabulary: Vocabulary): string {
  let out = text;
  for (const { group, found } of groupsIn(text, vocabulary)) {
    const name = vocabulary.groups[group][0];
    const exact = /^[\p{Lu}\p{N}-]+$/u.test(found);
    if (found.toLowerCase() === name.toLowerCase() || /^[\p{Lu}\p{N}-]+$/u.test(name)) continue;
    if (!exact && !/\s/.test(found)) continue;
    const escaped = found.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    out = out.replace(
      new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, exact ? "u" : "iu"),
      name,
    );
  }
  return out;
}
