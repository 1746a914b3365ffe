/**
 * htmlparser2's parser with a limit on nesting. It keeps its open elements with Array.unshift, so a file of a
 * few hundred thousand unclosed tags takes minutes of one core (500,000 in a 60 MB styles.xml: 60 s here);
 * real documents, web pages and PubMed XML nest tens of levels deep. Past MAX_NESTING the parse stops with an
 * {@link UnreadableFileError}.
 */
import { type Handler, Parser, type ParserOptions } from "htmlparser2";
import { UnreadableFileError } from "./records.ts";

/** Deepest nesting of elements read. */
export const MAX_NESTING = 1000;

/** A parser whose handlers see elements at most MAX_NESTING deep; deeper, it throws. */
export function depthLimitedParser(
  handlers: Partial<Handler>,
  options: ParserOptions,
  fileName: string,
): Parser {
  let depth = 0;
  return new Parser({
    ...handlers,
    onopentag(name, attributes, implied) {
      if (++depth > MAX_NESTING) {
        throw new UnreadableFileError(
          `${fileName} nests its elements more than ${MAX_NESTING} levels deep: not a document Rounds can read. ` +
            `Nothing after that point was read.`,
        );
      }
      handlers.onopentag?.(name, attributes, implied);
    },
    onclosetag(name, implied) {
      depth = Math.max(0, depth - 1);
      handlers.onclosetag?.(name, implied);
    },
  }, options);
}
