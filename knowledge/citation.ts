/**
 * How a snippet is named where it is cited: a dataset by its source ("MedDialog"), an uploaded document by its
 * title and page ("Chest pain pathway, p. 12") or section ("Antibiotic formulary, Cellulitis").
 */

/** The fields a citation is made from. */
export interface Citable {
  source: string;
  sourceId: string;
  title: string | null;
  question: string | null;
  documentId?: string | null;
  page?: number | null;
}

/** The name a source list, a prompt's reference and an export give a snippet. */
export function citationLabel(snippet: Citable): string {
  if (!isDocumentPassage(snippet)) return snippet.source;
  const title = snippet.title ?? snippet.source;
  if (snippet.page) return `${title}, p. ${snippet.page}`;
  const section = snippet.sourceId.replace(/#\d+$/, "");
  return /^part \d+$/.test(section) || section === title ? title : `${title}, ${section}`;
}

/** The detail after a citation's name: a dataset's record id; nothing more for a document (its name says where). */
export function citationDetail(snippet: Citable): string | null {
  return isDocumentPassage(snippet) ? null : snippet.sourceId;
}

/** A passage of an uploaded document (a page or section), not a question-and-answer row of an uploaded table. */
export function isDocumentPassage(snippet: Citable): boolean {
  return Boolean(snippet.documentId) && snippet.question === null &&
    (snippet.page != null || snippet.title !== null);
}
