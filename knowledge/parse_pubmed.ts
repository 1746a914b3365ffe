/**
 * PubMed/MEDLINE XML (efetch `retmode=xml`, the annual baseline files): one record per `<PubmedArticle>`, one
 * snippet per abstract section. Parsed with htmlparser2's streaming parser, chunk by chunk.
 */
import { depthLimitedParser } from "./xml_parser.ts";
import type { ParseEvent, ParseOptions, SnippetDraft } from "./records.ts";
import { buildSnippets, cleanText, recordEvent, RecordSkip, sourceNameFor } from "./snippets.ts";
import { decodeText, MAX_RECORD_CHARS } from "./text_stream.ts";

/** MeSH descriptor patterns and the specialty they point to; the first match wins, so narrower ones come first. */
const MESH_SPECIALTIES: [RegExp, string][] = [
  [/neoplasm|cancer|carcinoma|tumou?r|lymphoma|leukemia|melanoma|sarcoma/i, "Oncology"],
  [
    /cerebrovascular|stroke|brain|epilep|seizure|migraine|headache|parkinson|alzheimer|dementia|multiple sclerosis|neuro/i,
    "Neurology",
  ],
  [/asthma|lung|pulmonary|respiratory|bronch|pneumon|sleep apnea/i, "Pulmonology"],
  [/cardi|heart|coronary|myocard|atrial|hypertension|blood pressure|arrhythm|vascular|angina/i, "Cardiology"],
  [/diabet|thyroid|insulin|endocrin|adrenal|pituitar|glycated/i, "Endocrinology"],
  [
    /gastro|intestin|colon|colitis|crohn|liver|hepat|bowel|esophag|pancrea|celiac|peptic/i,
    "Gastroenterology",
  ],
  [/kidney|renal|nephr|dialysis/i, "Nephrology"],
  [/skin|dermat|psoria|eczema|acne|urticaria/i, "Dermatology"],
  [/depress|anxiety|mental|psychiatr|psycho|schizophren|bipolar/i, "Psychiatry"],
  [/arthritis|lupus|gout|rheumat|spondyl/i, "Rheumatology"],
  [/pregnan|obstetric|gynec|menstrua|uter|ovar|contracept/i, "Obstetrics and Gynecology"],
  [/infection|bacterial|viral|virus|hiv|tubercul|covid|sars-cov|sepsis|antibiotic/i, "Infectious Diseases"],
  [/\beye|retin|glaucoma|cataract|macular/i, "Ophthalmology"],
  [/otitis|\bear\b|hearing|sinusitis|tonsil|pharyng/i, "Otolaryngology"],
];

/** A specialty from an article's MeSH descriptor names (major topics first), or null when none maps. */
export function specialtyFromMesh(descriptors: { name: string; major: boolean }[]): string | null {
  const ordered = [...descriptors.filter((d) => d.major), ...descriptors.filter((d) => !d.major)];
  for (const { name } of ordered) {
    for (const [pattern, specialty] of MESH_SPECIALTIES) if (pattern.test(name)) return specialty;
  }
  return null;
}

const TRUNCATED = "the file ends inside this article (truncated XML)";

/** What is collected of one `<PubmedArticle>` while it streams past. */
interface Article {
  pmid: string;
  title: string;
  /** The journal's abbreviation (ISOAbbreviation), else its title, and the year of the issue. */
  journal: string;
  year: string;
  sections: { label: string | null; text: string }[];
  mesh: { name: string; major: boolean }[];
  sawAbstract: boolean;
  /** Characters of text collected, to give up on (not buffer) an article that never ends. */
  chars: number;
}

/** Where captured text goes: an element whose text (inline markup included) is collected until it closes. */
interface Capture {
  tag: string;
  depth: number;
  parts: string[];
  done: (text: string) => void;
}

/** Parses PubMed XML (`<PubmedArticleSet>`): one snippet per abstract section, titled by the article title. */
export async function* parsePubmed(
  stream: ReadableStream<Uint8Array>,
  options: ParseOptions,
): AsyncGenerator<ParseEvent> {
  const source = sourceNameFor(options, "PubMed");
  const events: ParseEvent[] = [];
  const stack: string[] = [];
  let index = 0;
  let article: Article | null = null;
  let inBook = false;
  let capture: Capture | null = null;
  let headingMajor = false;
  let heading: { name: string; major: boolean } | null = null;
  let ending = false;

  const emit = (build: () => SnippetDraft[]) => {
    const current = index++;
    events.push(recordEvent(current, `${options.fileName} record ${current + 1}`, build));
  };
  const emitSkip = (reason: string) =>
    emit(() => {
      throw new RecordSkip(reason);
    });
  const parent = (level = 1) => stack[stack.length - 1 - level];
  const startCapture = (tag: string, done: (text: string) => void) => {
    capture = { tag, depth: stack.length, parts: [], done };
  };

  const parser = depthLimitedParser(
    {
      onopentag(name, attributes) {
        stack.push(name);
        if (capture) return;
        if (name === "PubmedArticle") {
          article = {
            pmid: "",
            title: "",
            journal: "",
            year: "",
            sections: [],
            mesh: [],
            sawAbstract: false,
            chars: 0,
          };
          return;
        }
        if (name === "PubmedBookArticle") {
          inBook = true;
          return;
        }
        const current: Article | null = article;
        if (!current) return;
        if (name === "PMID" && parent() === "MedlineCitation" && !current.pmid) {
          startCapture(name, (text) => current.pmid = text);
        } else if (name === "ArticleTitle" && parent() === "Article") {
          startCapture(name, (text) => current.title = text);
        } else if (name === "ISOAbbreviation" && parent() === "Journal") {
          startCapture(name, (text) => current.journal = text);
        } else if (name === "Title" && parent() === "Journal") {
          startCapture(name, (text) => current.journal ||= text);
        } else if ((name === "Year" || name === "MedlineDate") && parent() === "PubDate" && !current.year) {
          startCapture(name, (text) => current.year = text.match(/\d{4}/)?.[0] ?? "");
        } else if (name === "Abstract" && parent() === "Article") {
          current.sawAbstract = true;
        } else if (name === "AbstractText" && parent() === "Abstract" && parent(2) === "Article") {
          const label = cleanText(attributes.Label ?? "") || null;
          startCapture(name, (text) => current.sections.push({ label, text }));
        } else if (name === "MeshHeading") {
          headingMajor = false;
          heading = null;
        } else if ((name === "DescriptorName" || name === "QualifierName") && parent() === "MeshHeading") {
          const major = attributes.MajorTopicYN === "Y";
          headingMajor ||= major;
          if (name === "DescriptorName") startCapture(name, (text) => heading = { name: text, major });
        }
      },
      ontext(text) {
        if (!capture) return;
        if (article && (article.chars += text.length) > MAX_RECORD_CHARS) capture.parts = [];
        else capture.parts.push(text);
      },
      onclosetag(name, implied) {
        const depth = stack.length;
        stack.pop();
        const open: Capture | null = capture;
        if (open) {
          if (name !== open.tag || depth !== open.depth) return;
          capture = null;
          open.done(cleanText(open.parts.join("")));
          return;
        }
        const current: Article | null = article;
        if (name === "MeshHeading" && current) {
          if (heading?.name) current.mesh.push({ name: heading.name, major: heading.major || headingMajor });
        } else if (name === "PubmedArticle" && current) {
          article = null;
          // An implied close means the closing tag never came: the file ended, or the markup is broken.
          if (implied) emitSkip(ending ? TRUNCATED : "<PubmedArticle> is never closed");
          else emit(() => articleSnippets(current, source, options.specialty ?? null));
        } else if (name === "PubmedBookArticle" && inBook) {
          inBook = false;
          emitSkip(implied && ending ? TRUNCATED : "book articles (PubmedBookArticle) are not supported");
        }
      },
    },
    { xmlMode: true, decodeEntities: true },
    options.fileName,
  );

  for await (const chunk of decodeText(stream)) {
    parser.write(chunk);
    if (events.length) yield* events.splice(0);
  }
  ending = true;
  parser.end();
  yield* events;
}

/** One snippet per abstract section (chunked when long); throws {@link RecordSkip} for an unusable article. */
function articleSnippets(article: Article, source: string, defaultSpecialty: string | null): SnippetDraft[] {
  if (article.chars > MAX_RECORD_CHARS) {
    throw new RecordSkip(`article is larger than ${MAX_RECORD_CHARS / (1024 * 1024)} MB of text`);
  }
  if (!article.pmid) throw new RecordSkip("missing PMID");
  if (!article.sawAbstract) throw new RecordSkip("no abstract");
  const sections = mergeSections(article.sections);
  if (sections.length === 0) throw new RecordSkip("empty abstract");
  const specialty = specialtyFromMesh(article.mesh) ?? defaultSpecialty;
  const url = `https://pubmed.ncbi.nlm.nih.gov/${article.pmid}/`;
  return sections.flatMap(({ key, label, text }) =>
    buildSnippets({
      source,
      sourceId: `PMID:${article.pmid}#${key}`,
      url,
      specialty,
      title: citationTitle(article),
      question: null,
      answer: text,
      questionLabel: null,
      answerLabel: label,
    })
  );
}

/**
 * The article's title as a citation names it: "Title. J Abbrev. 2021." when the journal and year are known (a
 * source cited from PubMed says where and when it was published), else the title alone.
 */
function citationTitle(article: Article): string | null {
  const title = article.title;
  if (!title) return null;
  if (!article.journal || !article.year) return title;
  const ended = /[.?!]$/.test(title) ? title : `${title}.`;
  return `${ended} ${article.journal.replace(/\.$/, "")}. ${article.year}.`;
}

/** Abstract sections with text, keyed for ids: sections sharing a label (or all unlabelled ones) are joined. */
function mergeSections(
  sections: { label: string | null; text: string }[],
): { key: string; label: string | null; text: string }[] {
  const merged = new Map<string, { key: string; label: string | null; text: string }>();
  for (const { label, text } of sections) {
    if (!text) continue;
    const key = label?.toUpperCase().replace(/[^A-Z0-9]+/g, "_").replace(/^_+|_+$/g, "") || "ABSTRACT";
    const existing = merged.get(key);
    if (existing) existing.text += " " + text;
    else merged.set(key, { key, label, text });
  }
  return [...merged.values()];
}
