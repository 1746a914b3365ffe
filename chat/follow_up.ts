/**
 * Whether a question continues the one before it ("and the dose?", "is it safe in pregnancy?") or starts a
 * subject of its own ("dry cough after a cold"), and so what the knowledge base is searched with: a follow-up
 * carries the earlier question's subject; a new subject starts clean, so its sources are not the last topic's.
 *
 * Rules, measured on data/eval/follow_ups.jsonl (`deno task eval followups`): a question is a follow-up when it
 * opens like one ("and…", "what about…", "what if…"), leans on an earlier subject (it, this, they…) with at most
 * one subject word of its own, has no subject word at all ("how long?", "side effects?"), reports a result of a
 * test already named ("The CT came back negative"), or thanks for the last answer before asking on with a few
 * subject words ("Thanks. If paracetamol is not enough…"); "different question" or "new patient" never
 * continues. Subject words are what is left once question words, everyday words and the generic words of a
 * follow-up (dose, safe, children, pregnancy, side effects…) are taken out.
 */

/** Openings that continue the conversation whatever follows them. */
const CONTINUES =
  /^\s*(?:and|also|but|plus|or|so|then|what about|how about|what if|and if|and what|what else|anything else|any other|is there another|same (?:for|question)|ok(?:ay)?,? (?:and|so|what|how)|thanks?,? (?:and|what|how|but))\b/i;

/** Words that are no subject: question words, function words, and what follow-ups ask about any subject. */
const NOT_SUBJECT = new Set(
  ("a an the of for in on at to with without about from by into over under after before during since until " +
    "and or but if so as than then also too very more most less least much many some any all each every " +
    "i me my we us our you your he him his she her they them their it its this that these those there here " +
    "is are was were be been being am do does did done have has had having can could should would will shall " +
    "may might must need needs needed ok okay please thanks thank yes no not what which who whom whose when " +
    "where why how whether else other another same such instead either well just still again now today " +
    "dose doses dosage dosing dosages amount much often long frequency how many times daily " +
    "side effect effects risk risks danger dangerous safe safety serious normal bad worse better best ok " +
    "treatment treatments treat treated treating therapy option options alternative alternatives choice " +
    "cause causes caused causing reason reasons why work works working help helps helpful useful " +
    "children child kids kid baby babies infant infants adult adults elderly older teenager teenagers " +
    "pregnancy pregnant breastfeeding nursing women men woman man patient patients someone person people " +
    "take taking took give giving given use using used start starting stop stopping continue increase " +
    "decrease reduce change switch combine mix together with alcohol food " +
    "maximum max minimum min first second next last week weeks day days month months year years hour hours " +
    "minute minutes time times long short later soon early late " +
    "test tests testing check checked checking scan scans follow up review see refer referral worry " +
    "worried concerned mean means meaning sign signs symptom symptoms expect expected happen happens " +
    "mg ml mcg g kg tablet tablets pill pills dose one two three four five six seven eight nine ten " +
    "doctor gp nurse specialist hospital clinic home advice recommend recommended suggest guideline " +
    "guidelines evidence study studies okay fine good right wrong true false possible likely unlikely " +
    "everyone everybody step steps course add added count level levels value values number result results " +
    "reading readings reasonable enough appropriate indicated necessary required needed urgent urgently")
    .split(
      " ",
    ),
);

/**
 * An opening that acknowledges the last answer before asking on ("Thanks.", "Thank you, that is reassuring.",
 * "Okay."): what follows continues the conversation unless it brings a subject of its own.
 */
const ACKNOWLEDGEMENT = "(?:ok(?:ay)?|great|right|i see|got it|understood|many thanks|" +
  "thanks?(?: you)?(?: (?:so|very) much| for that)?|that(?: is|'s) (?:reassuring|helpful|clear|useful|good to know))";
/** One or more acknowledgements closed by punctuation: "Right knee pain" and "Great toe" acknowledge nothing. */
const ACKNOWLEDGES = new RegExp(
  `^\\s*${ACKNOWLEDGEMENT}(?:[\\s,]+${ACKNOWLEDGEMENT})*\\s*[,.!;:–—-]+\\s*`,
  "i",
);

/** Words that announce a new subject whatever came before ("Different question:", "New patient,"). */
const NEW_SUBJECT = new RegExp(
  "\\b(?:new|another|different|separate|unrelated|other) (?:question|patient|case|topic|subject|issue|one)\\b|" +
    "\\bunrelated\\b|\\bchang(?:e|ing) (?:the )?subject\\b",
  "i",
);

/**
 * A result of something already under discussion ("The CTPA came back negative", "The scan showed…", "The chest
 * X-ray was normal"): "the" names a test the conversation already has.
 */
const RESULT_OF_BEFORE = new RegExp(
  "^\\s*the (?:[\\p{L}\\d-]+ ){0,2}?[\\p{L}\\d-]+ (?:came back|has come back|showed|shows|confirmed|" +
    "(?:was|were|is|are) (?:positive|negative|normal|abnormal|clear|inconclusive|fine|borderline|raised|high|low))\\b",
  "iu",
);

/** Asking what comes after what was said ("What now?", "What usually happens next?"). */
const WHAT_NEXT = /\bwhat (?:usually |normally )?(?:happens |comes |should (?:i|we) do )?(?:next|now)\b/i;

/** The words of a question that can name a subject. */
function subjectWords(question: string): string[] {
  return (question.toLowerCase().replace(/\b(?:first|second|third)[- ]line\b/g, " ").match(
    /\p{L}[\p{L}'’-]*/gu,
  ) ?? [])
    .map((w) => w.replace(/['’]s$/, ""))
    .filter((w) => w.length >= 3 && !NOT_SUBJECT.has(w));
}

/** Words that point back at something said before. */
const BACK_WORD =
  /^(?:it|its|it's|this|that|these|those|they|them|their|theirs|he|him|his|she|her|hers|same|such|everyone|everybody)$/;

/** A preposition with a pronoun ("for that", "with it"): about what was said before, wherever it stands. */
const ABOUT_BEFORE =
  /\b(?:for|with|in|on|about|of|from|after|before) (?:it|that|this|them|those|these|him|her|everyone|everybody|all of them)\b/i;

/** A question that ends by adding to the one before ("…too?", "…as well?", "…instead?"). */
const ADDS_TO_BEFORE = /\b(?:too|as well|also|instead|either)\s*[?.!]*\s*$/i;

/** What a question about managing something already named asks: a dose, a choice, a step, a threshold. */
const MANAGEMENT =
  /\b(?:dose|doses|dosage|dosing|first[- ]line|first|next|step|steps|how to use|how do (?:i|you) use|red flags?|cut[- ]?off|threshold|target|monitoring|monitor|option|options|alternative|alternatives|start|stop|switch|needed|necessary|indicated|required|how (?:long|many|much|often)| or )\b/i;

/** At most this many subject words after an acknowledgement, and the question still continues. */
const ACKNOWLEDGED_SUBJECT_WORDS = 4;

/** True when a question continues the previous one rather than starting a subject of its own. */
export function isFollowUp(question: string): boolean {
  const text = question.trim();
  if (!text) return false;
  if (CONTINUES.test(text)) return true;
  if (NEW_SUBJECT.test(text)) return false;
  if (RESULT_OF_BEFORE.test(text)) return true;
  const rest = text.replace(ACKNOWLEDGES, "");
  // After "Thanks.", a question with a few subject words of its own still continues ("Thanks. If paracetamol is
  // not enough, how long could I use ibuprofen?"); a whole new presentation does not.
  if (rest !== text && rest && subjectWords(rest).length <= ACKNOWLEDGED_SUBJECT_WORDS) return true;
  const own = subjectWords(text);
  if (WHAT_NEXT.test(text) && own.length <= 3) return true;
  if (own.length === 0) return true;
  if (ABOUT_BEFORE.test(text) && own.length <= 3) return true;
  if (ADDS_TO_BEFORE.test(text) && own.length <= 4) return true;
  // A word pointing back that comes before any subject of the question's own ("Could it be angina?"); after
  // one, it points at that ("a rash on her arm, what could it be?").
  const words = text.toLowerCase().match(/\p{L}[\p{L}'’-]*/gu) ?? [];
  const firstBack = words.findIndex((w) => BACK_WORD.test(w));
  const firstOwn = words.findIndex((w) => own.includes(w.replace(/['’]s$/, "")));
  if (firstBack >= 0 && firstBack < firstOwn && own.length <= 3) return true;
  // A short question about managing one or two named things: a dose, a choice, a next step.
  return own.length <= 2 && words.length <= 6 && MANAGEMENT.test(` ${text} `);
}

/**
 * What to search the knowledge base with: the question, and when it is a follow-up the earlier questions it
 * continues (back to the last one with a subject of its own, at most three).
 */
export function retrievalQuery(question: string, earlier: readonly string[]): string {
  const parts = [question];
  let current = question;
  for (let i = earlier.length - 1; i >= 0 && parts.length < 4 && isFollowUp(current); i--) {
    current = earlier[i];
    parts.push(current);
  }
  return parts.join("\n");
}
