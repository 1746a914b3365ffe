/**
 * Red-flag detection: recognises messages that describe a medical emergency, with rules and no model, so it can
 * run on every message before anything else.
 *
 * A message is normalised (lower case, American spellings, common abbreviations expanded), then every finding
 * pattern is matched once over the whole text. Each match is kept only when it is current: not negated ("denies
 * chest pain"), not past or resolved ("had a seizure in 2019", "chest pain last year, fine since"), not
 * hypothetical ("next time I get chest pain") and not in a purely educational sentence ("What are the FAST signs
 * of stroke?"). Rules then combine the current findings into at most one flag per category.
 *
 * Every pattern is a flat alternation with bounded gaps, so matching stays linear in the length of the message.
 * The findings themselves (the data) are in `red_flag_findings.ts`; this file is the engine and the rules.
 */
import { type Finding, FINDINGS, NUMBER, numberOf, words } from "./red_flag_findings.ts";

/** Emergency categories Rounds recognises. */
export const RED_FLAG_CATEGORIES = [
  "cardiac",
  "stroke",
  "bleeding",
  "anaphylaxis",
  "self_harm",
  "infant_sepsis",
  "meningitis",
  "breathing",
  "sepsis",
  "overdose",
  "seizure",
  "unconscious",
  "head_injury",
  "thunderclap_headache",
  "obstetric",
  "abdominal",
] as const;

/** One of {@link RED_FLAG_CATEGORIES}. */
export type RedFlagCategory = typeof RED_FLAG_CATEGORIES[number];

/** An emergency a message describes, with what to show in the banner. */
export interface RedFlag {
  category: RedFlagCategory;
  /** Short clinical label shown in the banner, e.g. "Chest pain with breathlessness or sweating (possible acute coronary syndrome)". */
  label: string;
  /** What to do, one sentence. For self-harm it includes crisis-line wording. */
  advice: string;
}

/** Text past this length is not read: messages are capped at 8,000 characters well before this. */
const MAX_SCAN_CHARS = 16_000;

const CALL_NOW = "Call local emergency services (911 / 112 / 999) now; do not wait for a reply.";

const ADVICE: Record<RedFlagCategory, string> = {
  cardiac:
    "Call local emergency services (911 / 112 / 999) now; do not wait for a reply, and do not drive yourself.",
  stroke:
    "Call local emergency services (911 / 112 / 999) now and note the time symptoms started; do not wait for a reply.",
  bleeding:
    "Call local emergency services (911 / 112 / 999) now and press firmly on any wound; do not wait for a reply.",
  anaphylaxis:
    "Use an adrenaline (epinephrine) auto-injector if there is one and call local emergency services (911 / 112 / 999) now.",
  self_harm:
    "If life is in danger call local emergency services (911 / 112 / 999) now; otherwise contact a crisis line now (988 in the US, Samaritans 116 123 in the UK and Ireland, or your local crisis line) and do not leave the person alone.",
  infant_sepsis: CALL_NOW,
  meningitis: CALL_NOW,
  breathing: CALL_NOW,
  sepsis: CALL_NOW,
  overdose:
    "Call local emergency services (911 / 112 / 999) or a poison centre now, even if there are no symptoms yet.",
  seizure:
    "Call local emergency services (911 / 112 / 999) now and keep the person on their side, away from harm.",
  unconscious:
    "Call local emergency services (911 / 112 / 999) now; if they are not breathing normally, start CPR and use a defibrillator (AED) if one is near.",
  head_injury: CALL_NOW,
  thunderclap_headache: CALL_NOW,
  obstetric:
    "Call local emergency services (911 / 112 / 999) or your maternity unit now; do not wait for a reply.",
  abdominal: CALL_NOW,
};

// ---------------------------------------------------------------------------------------------------------------
// Normalisation

/** Spelling variants folded to one form, so patterns are written once. */
const SPELLINGS: [RegExp, string][] = [
  [/[\u2018\u2019\u02bc`]/g, "'"],
  [/[\u201c\u201d]/g, '"'],
  [/[\u2013\u2014]/g, " - "],
  [/haem/g, "hem"],
  [/aemi/g, "emi"],
  [/(?<!i)oedem/g, "edem"],
  [/oesoph/g, "esoph"],
  [/paed/g, "ped"],
  [/foet/g, "fet"],
  [/anaes/g, "anes"],
  [/faec/g, "fec"],
  [/oea\b/g, "ea"],
  [/melaena/g, "melena"],
  [/\bcan not\b|\bcannot\b|\bcant\b/g, "can't"],
  [/\bwill not\b|\bwont\b/g, "won't"],
  [/\bdoes not\b|\bdoesnt\b/g, "doesn't"],
  [/\bdo not\b|\bdont\b/g, "don't"],
  [/\bdid not\b|\bdidnt\b/g, "didn't"],
  [/\bis not\b|\bisnt\b/g, "isn't"],
  [/\bhas not\b|\bhasnt\b/g, "hasn't"],
  [/\bhave not\b|\bhavent\b/g, "haven't"],
  [/\bcould not\b|\bcouldnt\b/g, "couldn't"],
  [/\bwas not\b|\bwasnt\b/g, "wasn't"],
  [/(\d)\s*(?:yo|y\/o|y\.o\.?|yrs? old|yr|yrs)(?![a-z])/g, "$1 year old"],
  [
    /\bim\b(?! (?:adrenaline|epinephrine|injection|inj|dose|route|glucagon|midazolam|naloxone|antibiotics?))/g,
    "i'm",
  ],
  [/\bive\b/g, "i've"],
  [/\bhes\b/g, "he's"],
  [/\b([lr])(?:\s|-|\.)\s*(?=(?:sided|side|arm|leg|hand|face|facial|eye)\b)/g, "$1 "],
  [/\bl (?=sided|side|arm|leg|hand|face|facial|eye)/g, "left "],
  [/\br (?=sided|side|arm|leg|hand|face|facial|eye)/g, "right "],
];

/** Abbreviations clinicians and patients use, expanded to the words the patterns know. */
const ABBREVIATIONS: Record<string, string> = {
  "sob": "shortness of breath",
  "soboe": "shortness of breath on exertion",
  "doe": "shortness of breath on exertion",
  "dib": "difficulty breathing",
  "cp": "chest pain",
  "si": "suicidal ideation",
  "dsh": "deliberate self-harm",
  "loc": "loss of consciousness",
  "n/v": "nausea and vomiting",
  "n+v": "nausea and vomiting",
  "h/a": "headache",
  "c/o": "complains of",
  "w/o": "without",
  "w/": "with",
  "pt": "patient",
  "y/o": "year old",
  "yo": "year old",
  "yrs old": "year old",
  "hx": "history",
  "h/o": "history of",
  "pmh": "past history",
  "pmhx": "past history",
  "fhx": "family history",
  "pv": "vaginal",
  "abdo": "abdominal",
  "cva": "stroke",
  "mi": "myocardial infarction",
  "acs": "acute coronary syndrome",
  "sah": "subarachnoid hemorrhage",
  "sx": "symptoms",
  "od'd": "overdosed",
  "oded": "overdosed",
  "od'ed": "overdosed",
  "ssi": "suicidal ideation",
  "lkw": "last known well",
  "rr": "resp rate",
};

const ABBREVIATION_PATTERN = new RegExp(
  `(?<![a-z0-9/'])(?:${
    Object.keys(ABBREVIATIONS).sort((a, b) => b.length - a.length).map((k) => k.replace(/[/+]/g, "\\$&"))
      .join("|")
  })(?![a-z0-9'/])`,
  "g",
);

/** "od" is "once daily" after a dose and "overdose" elsewhere. */
const OD_PATTERN = /(?<![a-z0-9/'])od(?![a-z0-9'/])/g;
const DOSE_BEFORE =
  /(?:\d\s*(?:mg|mcg|micrograms?|g|ml|units?|iu|tabs?|tablets?|puffs?|caps?|capsules?)|\bmg|\bdaily|\bonce|\btake|\btaking|\bdose|\bbd|\btds|\bnocte)\s*$/;

function normalise(text: string): string {
  let out = text.slice(0, MAX_SCAN_CHARS).toLowerCase();
  for (const [pattern, replacement] of SPELLINGS) out = out.replace(pattern, replacement);
  out = out.replace(ABBREVIATION_PATTERN, (word, offset: number, whole: string) => {
    if (word === "si" && /^\s*joint/.test(whole.slice(offset + 2, offset + 12))) return word;
    return ABBREVIATIONS[word] ?? word;
  });
  out = out.replace(OD_PATTERN, (word, offset: number, whole: string) => {
    const before = whole.slice(Math.max(0, offset - 16), offset);
    return DOSE_BEFORE.test(before) || /^\s*dos/.test(whole.slice(offset + 2, offset + 8))
      ? word
      : "overdose";
  });
  return out.replace(/[ \t]+/g, " ");
}

// ---------------------------------------------------------------------------------------------------------------
// Context: negation, history, hypotheticals, education

/** Cues that make a finding after them not current: negation, history, risk, hypothetical. */
const NEGATION_CUE = words(
  "no(?!\\s*[,.!;:])|not(?! sure| certain| only)|nor|neither|never|without|nil|none|denie[sd]|denying|deny|negative for|free of|absence of|absent|ruled out|rules out|isn't|aren't|wasn't|weren't|doesn't(?! know)|don't(?! know)|didn't|hasn't|haven't|hadn't|no sign of|no signs of|no evidence of",
  "history of|past history|family history|previous|previously|prior|risk of|risks of|chance of|prevent\\w*|reduce the risk|lower the risk|avoid\\w*|in case|next time|if ever|in future|in the future|what if|should (?:i|he|she|they|you) ever|worried about getting|screen(?:ing)? for|rule out",
);

/** Words after which a negation no longer reaches: a new assertion starts. */
const SCOPE_BREAK = words(
  "(?:he|she|they|i|it|who|and|which|that|patient|baby|husband|wife|son|daughter|mum|dad) (?:has|have|is|are|had|was)(?: got| been)?|i've|i'm|i keep|(?:i|he|she|they) (?:keep|keeps) thinking|been thinking|but|however|although|though|yet|except|apart from|other than|with|and now|now|is now|currently|today|then|suddenly|reports?|reporting|complains?|complaining|presents?|presenting|presented|developed|develops|started|starts|began|came in|brought in|and has|and is|and have|is having|has got|has been|plus|also|whereas",
);

/** A comma followed by a verb starts a new assertion: "without a helmet, hit his head". */
const COMMA_VERB =
  /, (?:and |then )?(?=(?:[a-z]+ed|hit|fell|took|had|got|was|went|threw|began|became|ate|drank|swallowed|woke|broke|is|has|keeps?|can't|won't)(?![a-z]))/g;

/** Time expressions that put a clause in the past, and the words that bring it back to the present. */
const PAST_CUE = words(
  "last (?:year|month|summer|winter|spring|autumn|fall|christmas|time)|(?:\\d+|a|an|one|two|three|four|five|six|few|several|many|couple of) (?:years?|months?|weeks?|yrs?|decades?) ago|years ago|months ago|(?:in|since) (?:19|20)\\d\\d|as a (?:child|kid|baby|teenager|teen|student)|when (?:i|he|she|they) (?:was|were) (?:younger|little|small|a child|a kid|a baby|a teenager|at school|\\d+)|in (?:my|his|her|their) (?:teens|twenties|thirties|childhood|youth)|back in|once before|years back|in the past|used to|in childhood|(?:had|died of|died from) (?:a |an )?(?:[a-z]+ ){0,2}at (?:the age of )?\\d{2}(?![0-9])",
);
const CURRENT_CUE = words(
  "now|again|today|tonight|currently|right now|still|ongoing|this (?:morning|afternoon|evening|week)|since (?:yesterday|this|last night)|new|keeps?|recurr\\w*",
);

/** Words that say an event is over, applying to what came before them in the sentence. */
const RESOLVED_CUE = words(
  "fine since|fine ever since|been fine|been well|well since|no problems since|fully recovered|completely recovered|recovered (?:well|fully)|back to normal|back to (?:his|her|my|their) (?:normal|usual) self|(?:now|is now|are now) (?:completely |totally )?(?:fine|ok|okay|well|better|settled|normal|alert|awake and talking)(?! to)|(?:seems?|feels?) (?:completely |totally )?(?:fine|ok|okay|well|normal)|(?:fine|ok|okay|better|settled|normal) now|resolved|settled|went away|gone away|(?:has|have|had) gone (?:away|now)|subsided|stopped on (?:its|it's) own|stopped after|stopped with|came round (?:quickly|straight away|immediately)|woke up (?:quickly|straight away)|no further episodes|no recurrence",
);
const CONTRAST = words(
  "but|however|although|though|yet|whereas|still|except|again|now (?!fine|ok|okay|well|better|settled|normal)",
);

/** Directly after a finding: "chest pain: none", "bleeding stopped". */
const POST_NEGATION =
  /^[\s,:()-]*(?:none|nil|negative|denied|absent|resolved|settled|subsided|gone|went away|stopped|-ve|not present|has (?:gone|resolved|settled|stopped)|have (?:gone|resolved|settled|stopped)|(?:is|are|was|were) (?:gone|resolved|settled|absent|denied|not present)|which (?:resolved|settled|went away|stopped)|that (?:resolved|settled|went away|stopped))(?![a-z])/;

/** Markers of a question about medicine in general rather than about a person. */
const EDUCATIONAL = words(
  "what (?:are|is|were|was) (?:the |a |an |some )?(?:[a-z'-]+ ){0,2}(?:signs?|symptoms?|features?|causes?|criteria|management|treatment|first[- ]line|doses?|dosing|differentials?|difference|risk factors?|mechanisms?|pathophysiology|red flags?|guidelines?|evidence|role|definition|incidence|prevalence|prognosis|complications?|investigations?|indications?|contraindications?|protocol|algorithm|steps|rules?)",
  "how (?:is|are|do you|should you|would you|do we|should we|does one|to|do i|can i|can you|do doctors|is it|should (?:a|an|the) \\w+|should i) (?:[a-z'/-]+ ){0,5}(?:manag|treat|diagnos|recogni|assess|differentiat|distinguish|investigat|screen|prevent|teach|explain|present|caus|work|rule|calculat|scor|use|administer|giv|document|counsel|triag|identif|spot|approach|ask|examin|test|do|perform|interpret|dos|defin|classif)\\w*",
  "what causes|why (?:do|does|is|are|would)|what (?:dose|dosage|drug|medication|antibiotic)s?|(?:is|are) used (?:for|to treat)|what (?:is|are) (?:the |a |an )?(?:[a-z'-]+ ){0,2}(?:six|bundle|pathway|protocol|algorithm|tool)|(?:question|query|asking) about|pathways?|protocols?|polic(?:y|ies)|in our (?:clinic|practice|department|unit|hospital|ward)|(?:can|does|do|could|will) [a-z-]+ (?:[a-z-]+ ){0,2}cause|explain|describe|outline|summari[sz]e|list (?:the|some|all)|tell me about|teach\\w*|quiz|osce|mnemonic|guidelines?|guidance|according to|in general|textbook|lecture|lecturing|students?|revision|revising|pathophysiology|side effects?|adverse effects?|(?:is|are) (?:[a-z'/-]+ ){0,3}associated with|black box|contraindicat\\w*|indications? for|difference between|differential(?:s| diagnosis)? (?:of|for)|is it possible|what happens (?:if|when) (?:you|someone|a person|people)|can (?:you|someone|a person|people) (?:overdose|die)|what (?:[a-z'/-]+ ){0,2}counts as|what is (?:a |an |the )?(?:[a-z'/-]+ ){0,3}(?:score|scale|criteria|rule|sign|test|dose|threshold|target)|when (?:should|to|do you|would you|is) (?:[a-z'/-]+ ){0,4}(?:refer|admit|call|give|start|escalate|use|indicated|needed)|signs? of (?:a |an )?[a-z]+ in (?:babies|children|adults|women|men|the elderly|elderly)|(?:signs|symptoms) (?:of|for) (?:a |an )?[a-z-]+\\?",
);

/** Markers that a sentence is about a real, present person. */
const PERSONAL = words(
  "(?:my|our) (?:[a-z'-]+ )?(?:patient|son|daughter|baby|child|kid|wife|husband|partner|mum|mom|mother|dad|father|friend|brother|sister|grandma|grandmother|grandpa|grandfather|grandad|nan|boyfriend|girlfriend|neighbou?r|colleague|client|resident|flatmate|roommate|toddler|infant|newborn)",
  "i(?:'m| am| have(?! a (?:question|query))| had| feel| felt| took| can't| think| just| keep| woke| got|'ve| was| started| keep| noticed)",
  "(?:he|she|they)(?:'s| is| has| was| had| took| can't| isn't| won't| keeps| just| says| said| feels| felt| woke| got| started| looks| seems| became)",
  "(?:patient|pt) (?:is|has|was|with|presents|presented|reports|complains|now|had)",
  "\\d{1,3} ?(?:year old|yr old|[mf])|(?:right now|just now|currently|this (?:morning|afternoon|evening)|tonight|today)",
);

/** Requests to write teaching material: what they describe is invented, never an emergency now. */
const TEACHING_MATERIAL = words(
  "hypothetical|vignette|osce (?:station|case|scenario)|teaching (?:case|scenario|session)|case scenario|scenario for|(?:write|create|generate|draft|make) (?:me )?(?:a |an )?(?:[a-z'-]+ ){0,3}(?:case|scenario|vignette|mcq|question|quiz)|for my students|mcqs?|exam questions?|role[- ]?play|simulated patient",
);
const REAL_CASE = words("not (?:a )?hypothetical|real patient|this is real|actually happening|not a drill");

// ---------------------------------------------------------------------------------------------------------------
// Sentence and clause structure

const SENTENCE_END = /[.!?]+(?=\s|$)|\n+/g;
const SEGMENT_BREAK = words(
  "but|however|although|though|whereas|yet|except|now|today|tonight|currently|this morning|this evening|this afternoon|since then|and then",
);
const CLAUSE_BREAK = /[,;:()]/g;

function starts(text: string, ...patterns: RegExp[]): number[] {
  const out = [0];
  for (const pattern of patterns) {
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      out.push(m.index);
      if (m[0].length === 0) pattern.lastIndex++;
    }
  }
  return out.sort((a, b) => a - b);
}

/** Index of the last start at or before `position`. */
function unitOf(unitStarts: number[], position: number): number {
  let lo = 0;
  let hi = unitStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (unitStarts[mid] <= position) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function anyMatch(pattern: RegExp, text: string): boolean {
  pattern.lastIndex = 0;
  const found = pattern.test(text);
  pattern.lastIndex = 0;
  return found;
}

interface Hit {
  finding: Finding;
  start: number;
  end: number;
  sentence: number;
}

/** The findings of a message that are present now, for the whole message and per sentence. */
interface Present {
  all: Set<Finding>;
  bySentence: Set<Finding>[];
  /** Findings a later "resolved" or "stopped" ends: a seizure that stopped after ten minutes still counts. */
  endedBySentence: Set<Finding>[];
}

function findPresent(text: string): Present {
  const sentenceStarts = starts(text, SENTENCE_END);
  const sentenceEnds = [...sentenceStarts.slice(1), text.length];
  const segmentStarts = starts(text, SENTENCE_END, SEGMENT_BREAK, /;/g);
  const clauseStarts = starts(text, SENTENCE_END, SEGMENT_BREAK, CLAUSE_BREAK);
  const sentenceText = (i: number) => text.slice(sentenceStarts[i], sentenceEnds[i]);

  const generic: boolean[] = [];
  for (let i = 0; i < sentenceStarts.length; i++) {
    const sentence = sentenceText(i);
    generic.push(anyMatch(EDUCATIONAL, sentence) && !anyMatch(PERSONAL, sentence));
  }

  const hits: Hit[] = [];
  for (const { finding, pattern, accept } of FINDINGS) {
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      if (m[0].length === 0) {
        pattern.lastIndex++;
        continue;
      }
      const sentence = unitOf(sentenceStarts, m.index);
      if (generic[sentence]) continue;
      if (accept && !accept(m, sentenceText(sentence))) continue;
      hits.push({ finding, start: m.index, end: m.index + m[0].length, sentence });
    }
  }

  const present: Present = {
    all: new Set(),
    bySentence: sentenceStarts.map(() => new Set()),
    endedBySentence: sentenceStarts.map(() => new Set()),
  };
  const insideOther = (position: number, self: Hit) =>
    hits.some((h) => h !== self && h.start <= position && position < h.end && h.end <= self.start);
  const pastClause = new Map<number, boolean>();
  for (const hit of hits) {
    if (present.bySentence[hit.sentence].has(hit.finding)) continue;
    if (isNegated(text, hit, segmentStarts, insideOther)) continue;
    const clause = unitOf(clauseStarts, hit.start);
    let past = pastClause.get(clause);
    if (past === undefined) {
      const clauseText = text.slice(clauseStarts[clause], clauseStarts[clause + 1] ?? text.length);
      past = anyMatch(PAST_CUE, clauseText) && !anyMatch(CURRENT_CUE, clauseText);
      pastClause.set(clause, past);
    }
    if (past) continue;
    if (isResolvedLater(text.slice(hit.end, sentenceEnds[hit.sentence]))) {
      present.endedBySentence[hit.sentence].add(hit.finding);
      continue;
    }
    present.all.add(hit.finding);
    present.bySentence[hit.sentence].add(hit.finding);
  }
  return present;
}

function isNegated(
  text: string,
  hit: Hit,
  segmentStarts: number[],
  insideOther: (position: number, self: Hit) => boolean,
): boolean {
  if (POST_NEGATION.test(text.slice(hit.end, hit.end + 40))) return true;
  const segmentStart = segmentStarts[unitOf(segmentStarts, hit.start)];
  let windowStart = Math.max(segmentStart, hit.start - 80);
  const window = text.slice(windowStart, hit.start);
  let cut = 0;
  SCOPE_BREAK.lastIndex = 0;
  for (let m = SCOPE_BREAK.exec(window); m !== null; m = SCOPE_BREAK.exec(window)) {
    cut = m.index + m[0].length;
  }
  const withHit = text.slice(windowStart, hit.end);
  COMMA_VERB.lastIndex = 0;
  for (let m = COMMA_VERB.exec(withHit); m !== null; m = COMMA_VERB.exec(withHit)) {
    cut = Math.max(cut, Math.min(window.length, m.index + m[0].length));
  }
  windowStart += cut;
  const scope = window.slice(cut);
  NEGATION_CUE.lastIndex = 0;
  for (let m = NEGATION_CUE.exec(scope); m !== null; m = NEGATION_CUE.exec(scope)) {
    if (!insideOther(windowStart + m.index, hit)) return true;
  }
  return false;
}

/** True when the rest of the sentence says the event is over, with no "but" in between. */
function isResolvedLater(rest: string): boolean {
  RESOLVED_CUE.lastIndex = 0;
  const resolved = RESOLVED_CUE.exec(rest);
  RESOLVED_CUE.lastIndex = 0;
  if (resolved === null) return false;
  return !anyMatch(CONTRAST, rest.slice(0, resolved.index));
}

// ---------------------------------------------------------------------------------------------------------------
// Rules

interface Rule {
  category: RedFlagCategory;
  label: string;
  when: (
    has: (...findings: Finding[]) => boolean,
    together: (...findings: Finding[][]) => boolean,
  ) => boolean;
}

const RULES: Rule[] = [
  {
    category: "unconscious",
    label: "Not breathing or no pulse (possible cardiac arrest)",
    when: (has) => has("arrest", "notBreathing"),
  },
  {
    category: "unconscious",
    label: "Unresponsive or hard to wake (reduced consciousness)",
    when: (has) => has("unresponsive", "hardToWake", "lowGcs", "notWaking"),
  },
  {
    category: "unconscious",
    label: "Very low blood sugar with drowsiness or confusion",
    when: (has) => has("lowGlucose") && has("drowsy", "confusion", "unresponsive", "hardToWake", "seizure"),
  },
  {
    category: "cardiac",
    label: "Heart attack changes on ECG or blood tests (possible acute coronary syndrome)",
    when: (has) => has("ecgChange"),
  },
  {
    category: "cardiac",
    label:
      "Chest pain with breathlessness, sweating or pain spreading to the arm or jaw (possible acute coronary syndrome)",
    when: (has) =>
      has("chestPain") &&
      has("sob", "sweating", "radiation", "cardiacQuality", "dizzy", "pale", "vomit", "nausea", "severe"),
  },
  { category: "cardiac", label: "Possible heart attack", when: (has) => has("heartAttack") },
  {
    category: "cardiac",
    label: "Tearing chest or back pain (possible aortic dissection)",
    when: (has) => has("dissection"),
  },
  {
    category: "stroke",
    label: "Face drooping, arm or leg weakness, speech difficulty or sudden vision loss (possible stroke)",
    when: (has, together) =>
      has("faceDroop", "speech", "strokeWord", "visionLoss") ||
      together(["limbWeak"], ["oneSide", "sudden"]) ||
      together(["doubleVision", "unsteady"], ["sudden"]) ||
      together(["confusion"], ["sudden"]),
  },
  {
    category: "bleeding",
    label: "Severe bleeding that will not stop",
    when: (has) => has("heavyBleed"),
  },
  { category: "bleeding", label: "Vomiting blood", when: (has) => has("vomitBlood") },
  {
    category: "bleeding",
    label: "Coughing up blood",
    when: (has, together) => has("coughBlood") && !together(["coughBlood"], ["minorAmount"]),
  },
  {
    category: "bleeding",
    label: "Black, tarry stools with dizziness or paleness (possible internal bleeding)",
    when: (has) => has("melena") && has("dizzy", "pale", "tachycardia", "hypotension"),
  },
  {
    category: "bleeding",
    label: "Bleeding while on a blood thinner, with dizziness",
    when: (has) => has("bleedAny") && has("anticoagulant") && has("dizzy", "pale", "hypotension"),
  },
  {
    category: "anaphylaxis",
    label: "Possible anaphylaxis",
    when: (has) => has("anaphylaxisWord", "epipenUsed"),
  },
  {
    category: "anaphylaxis",
    label: "Swelling of the tongue or throat (possible anaphylaxis)",
    when: (has) =>
      has("airwaySwell") ||
      (has("throatSwell") && has("allergen", "sob", "wheeze", "swallowTrouble", "hives", "faceSwell")),
  },
  {
    category: "anaphylaxis",
    label: "Allergic swelling or hives with breathing difficulty or faintness (possible anaphylaxis)",
    when: (has) =>
      has("faceSwell", "hives") &&
      has("sob", "wheeze", "severeBreathing", "dizzy", "hypotension", "swallowTrouble"),
  },
  { category: "self_harm", label: "Thoughts of suicide or self-harm", when: (has) => has("suicidal") },
  {
    category: "infant_sepsis",
    label: "Baby under 3 months with fever or signs of serious illness (possible sepsis)",
    when: (has) =>
      has("infantYoung") &&
      has(
        "fever",
        "hypothermia",
        "notFeeding",
        "floppy",
        "lethargic",
        "mottled",
        "nonBlanch",
        "grunting",
        "fontanelle",
        "abnormalCry",
        "noWetNappy",
        "blueLips",
      ),
  },
  {
    category: "infant_sepsis",
    label: "Baby who is floppy, mottled or grunting, or has a bulging soft spot (possible sepsis)",
    when: (has) => has("baby") && has("floppy", "mottled", "grunting", "fontanelle"),
  },
  { category: "meningitis", label: "Possible meningitis", when: (has) => has("meningitisWord") },
  {
    category: "meningitis",
    label: "Rash that does not fade under pressure, with fever or illness (possible meningococcal disease)",
    when: (has) =>
      has("nonBlanch") &&
      has(
        "fever",
        "headache",
        "vomit",
        "drowsy",
        "baby",
        "child",
        "mottled",
        "stiffNeck",
        "veryUnwell",
        "lethargic",
      ),
  },
  {
    category: "meningitis",
    label: "Fever with a stiff neck or dislike of light (possible meningitis)",
    when: (has) =>
      (has("fever") && has("stiffNeck", "photophobia")) ||
      (has("stiffNeck") && has("photophobia") && has("headache")),
  },
  {
    category: "breathing",
    label: "Severe difficulty breathing (cannot speak in sentences, blue lips or low oxygen)",
    when: (has) =>
      has("severeBreathing", "blueLips", "lowSats", "choking") ||
      (has("sob", "wheeze") && has("inhalerFailing")) ||
      (has("sob") && has("atRest") && has("worsening")),
  },
  {
    category: "breathing",
    label: "Sudden breathlessness with a swollen calf or a known clot (possible pulmonary embolism)",
    when: (has) => has("sob") && has("clotSign"),
  },
  { category: "sepsis", label: "Possible sepsis", when: (has) => has("sepsisWord") },
  {
    category: "sepsis",
    label: "Fever during chemotherapy or with low immunity (possible neutropenic sepsis)",
    when: (has) => has("fever") && has("immunosuppressed"),
  },
  {
    category: "sepsis",
    label:
      "Infection or fever with confusion, mottled skin, low blood pressure or no urine (possible sepsis)",
    when: (has) => {
      if (!has("fever", "infection", "rigors")) return false;
      if (has("confusion", "mottled", "hypotension", "noUrine", "veryUnwell")) return true;
      const signs = (["tachycardia", "fastBreathing", "rigors", "pale", "sweating"] as Finding[]).filter((
        f,
      ) => has(f));
      return signs.length >= 2 && has("fever");
    },
  },
  {
    category: "overdose",
    label: "Overdose or poisoning",
    when: (has) =>
      has("overdose", "poisoning", "naloxone") || (has("pinpointPupils") && has("drowsy", "hardToWake")),
  },
  {
    category: "seizure",
    label: "Seizure lasting over 5 minutes, repeated, or without waking up",
    when: (has, together) =>
      has("seizureLong", "stillSeizing") ||
      together(["seizure"], ["notWaking", "unresponsive", "blueLips", "notBreathing", "hardToWake"]),
  },
  { category: "seizure", label: "First seizure", when: (has) => has("firstSeizure") },
  {
    category: "head_injury",
    label: "Head injury with vomiting, drowsiness, confusion, blackout or a blood thinner",
    when: (has) =>
      has("headInjury") &&
      has(
        "vomit",
        "drowsy",
        "confusion",
        "lostConsciousness",
        "anticoagulant",
        "csfLeak",
        "unequalPupils",
        "amnesia",
        "headacheWorsening",
        "seizure",
        "unresponsive",
        "hardToWake",
        "limbWeak",
        "speech",
        "fallFromHeight",
      ),
  },
  {
    category: "thunderclap_headache",
    label: "Sudden, severe 'worst ever' headache (possible bleed in the brain)",
    when: (has, together) =>
      has("worstHeadache") ||
      together(["headache"], ["sudden"], ["severe", "vomit", "eyelidDroop", "stiffNeck", "dizzy"]) ||
      (has("headache") && has("sudden") && has("eyelidDroop")),
  },
  {
    category: "obstetric",
    label: "Heavy bleeding, or bleeding with pain, in pregnancy",
    when: (has) =>
      has("pregnant") &&
      (has("heavyBleed", "padSoaking", "clots") ||
        (has("bleedAny") && has("abdominalPain", "oneSidedPelvicPain", "dizzy", "cramps", "severe"))),
  },
  {
    category: "obstetric",
    label: "Heavy bleeding after giving birth (possible postpartum haemorrhage)",
    when: (has) => has("postpartum") && has("heavyBleed", "padSoaking", "clots"),
  },
  {
    category: "obstetric",
    label: "One-sided pelvic pain or shoulder-tip pain in early pregnancy (possible ectopic pregnancy)",
    when: (has) =>
      has("ectopicWord") ||
      (has("pregnant", "missedPeriod") &&
        (has("shoulderTip") ||
          (has("oneSidedPelvicPain") && has("dizzy", "bleedAny", "severe", "hypotension", "sudden")) ||
          (has("abdominalPain") && has("severe") && has("dizzy", "hypotension")))),
  },
  {
    category: "obstetric",
    label: "Headache, vision changes or swelling in pregnancy (possible pre-eclampsia)",
    when: (has) =>
      has("pregnant", "postpartum") &&
      (has("preEclampsiaWord", "highBp") ||
        (has("headache") && has("visualDisturbance", "faceSwell", "severe")) ||
        (has("visualDisturbance") && has("faceSwell"))),
  },
  {
    category: "obstetric",
    label: "Seizure in pregnancy or after birth (possible eclampsia)",
    when: (has) => has("pregnant", "postpartum") && has("seizure"),
  },
  {
    category: "obstetric",
    label: "Reduced or absent baby movements",
    when: (has) => has("pregnant", "reducedMovements") && has("reducedMovements"),
  },
  {
    category: "obstetric",
    label: "Waters broken or contractions before 37 weeks, or a cord prolapse",
    when: (has) => has("cordProlapse") || (has("preterm") && has("watersBroken", "contractions")),
  },
  {
    category: "abdominal",
    label: "Rigid, board-like abdomen (possible peritonitis)",
    when: (has) => has("rigidAbdomen"),
  },
  {
    category: "abdominal",
    label: "Sudden severe testicular pain (possible torsion)",
    when: (_has, together) => together(["testicularPain"], ["sudden", "severe"]),
  },
  {
    category: "abdominal",
    label: "Abdominal or back pain with an aneurysm or pulsating mass (possible ruptured aortic aneurysm)",
    when: (has) => has("aneurysm") && has("abdominalPain", "backPain", "dizzy", "hypotension"),
  },
  {
    category: "abdominal",
    label: "Green (bile) vomiting or redcurrant-jelly stool (possible bowel obstruction)",
    when: (has) => has("biliousVomit", "redcurrant"),
  },
  {
    category: "abdominal",
    label: "Swollen abdomen with vomiting and no wind or stool (possible bowel obstruction)",
    when: (has) => has("obstruction") && has("distended") && has("vomit", "vomitPersistent"),
  },
  {
    category: "abdominal",
    label: "Severe abdominal pain with collapse, shock or obstruction",
    when: (has, together) =>
      together(["abdominalPain"], ["severe", "cantWalk"]) &&
      (has("dizzy", "pale", "hypotension", "tachycardia", "vomitPersistent", "fever") ||
        (has("vomit") && has("obstruction", "distended"))),
  },
];

// ---------------------------------------------------------------------------------------------------------------

const SEIZURE_DURATION = new RegExp(
  `(?:${NUMBER}|half an?|an?|over an?)\\s*(?:\\+\\s*)?(mins?|minutes?|hours?|hrs?)(?![a-z])`,
  "g",
);

const ONGOING =
  /\b(?:still|hasn't stopped|not stopped|isn't stopping|won't stop|ongoing|continuing|keeps going)\b/;

/** Marks sentences where a seizure and a duration of five minutes or more appear together. */
function addSeizureDuration(text: string, present: Present): void {
  const sentenceStarts = starts(text, SENTENCE_END);
  present.bySentence.forEach((findings, i) => {
    if (!findings.has("seizure") && !present.endedBySentence[i].has("seizure")) return;
    const sentence = text.slice(sentenceStarts[i], sentenceStarts[i + 1] ?? text.length);
    SEIZURE_DURATION.lastIndex = 0;
    for (let m = SEIZURE_DURATION.exec(sentence); m !== null; m = SEIZURE_DURATION.exec(sentence)) {
      const minutes = m[2].startsWith("h") ? 60 : numberOf(m[1] ?? "1");
      const before = sentence.slice(Math.max(0, m.index - 20), m.index);
      const after = sentence.slice(m.index + m[0].length, m.index + m[0].length + 6);
      if (/ago\b/.test(after) && !ONGOING.test(sentence)) continue;
      if (/every\b|for the last\b/.test(after)) continue;
      if (/\b(?:under|less than|about [1-4]|only)\s*$/.test(before)) continue;
      if (minutes >= 5 || m[2].startsWith("h")) {
        findings.add("seizureLong");
        present.all.add("seizureLong");
        return;
      }
    }
  });
}

/** The emergencies a message describes; empty when none. At most one flag per category. Pure, fast, no I/O. */
export function detectRedFlags(text: string): RedFlag[] {
  const normalised = normalise(text);
  if (anyMatch(TEACHING_MATERIAL, normalised) && !anyMatch(REAL_CASE, normalised)) return [];
  const present = findPresent(normalised);
  addSeizureDuration(normalised, present);
  const has = (...findings: Finding[]) => findings.some((f) => present.all.has(f));
  const together = (...groups: Finding[][]) =>
    present.bySentence.some((findings) => groups.every((group) => group.some((f) => findings.has(f))));
  const flags: RedFlag[] = [];
  const seen = new Set<RedFlagCategory>();
  for (const rule of RULES) {
    if (seen.has(rule.category) || !rule.when(has, together)) continue;
    seen.add(rule.category);
    flags.push({ category: rule.category, label: rule.label, advice: ADVICE[rule.category] });
  }
  return flags.sort((a, b) =>
    RED_FLAG_CATEGORIES.indexOf(a.category) - RED_FLAG_CATEGORIES.indexOf(b.category)
  );
}
