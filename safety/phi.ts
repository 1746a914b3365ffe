/**
 * PHI redaction: finds the HIPAA Safe Harbor identifiers that free text can carry (names, precise dates, phone
 * and fax numbers, emails, SSNs, record and account numbers, street addresses, ZIP codes and postcodes, URLs, IP
 * addresses, ages over 89) and replaces them with typed placeholders such as `[NAME_1]` before text leaves for
 * the inference or embedding endpoint.
 *
 * Detection is rules, not a model: each category has patterns with context cues, candidates are resolved by
 * priority, and names are only taken where the text introduces a person (a title, "my name is", a relative, a
 * sign-off) or repeats a name introduced before. Every pattern is written so that the regex engine does a bounded
 * amount of work per position (no nested unbounded quantifiers), because user text is untrusted.
 */

import { isEnglishWord } from "./english_words.ts";
import { inSlices } from "../slices.ts";

/** The identifier categories, in the order summaries list them. */
export const PHI_TYPES = [
  "NAME",
  "DATE",
  "PHONE",
  "FAX",
  "EMAIL",
  "SSN",
  "MRN",
  "ACCOUNT",
  "ADDRESS",
  "ZIP",
  "URL",
  "IP",
  "AGE",
] as const;

/** One identifier category. */
export type PhiType = typeof PHI_TYPES[number];

/** One identifier found and replaced. */
export interface Redaction {
  type: PhiType;
  placeholder: string;
  /** Index into the original text. */
  start: number;
  /** Index into the original text, exclusive. */
  end: number;
  original: string;
}

/** A redacted text and what was replaced. */
export interface RedactedText {
  text: string;
  redactions: Redaction[];
}

/**
 * Keeps placeholders consistent across the texts of one conversation: the same value gets the same placeholder
 * ("John Smith" and later "Mr Smith" both [NAME_1]), and numbering continues across texts.
 */
export interface PhiRedactor {
  redact(text: string): RedactedText;
  /** Numbers new placeholders after those already in these texts (redacting them later keeps theirs). */
  reserve(texts: readonly string[]): void;
  /**
   * The words of the names found so far, in lower case, in the order they were learned: a text redacted before
   * a word was learned may hold it ("haddad has new AF" before "Mr Haddad is 80") and is redacted again.
   */
  readonly learnedNames: readonly string[];
  /** True when the text holds a name word learned after the first `count` (in any case, as a word or part). */
  holdsNameLearnedAfter(text: string, count: number): boolean;
}

interface Candidate {
  type: PhiType;
  start: number;
  end: number;
  priority: number;
}

// Higher wins when candidates overlap; at equal priority the longer one wins.
const P_PLACEHOLDER = 100;
const P_EMAIL = 90;
const P_URL = 85;
const P_IP = 80;
const P_SSN = 75;
const P_CUE_VALUE = 70;
const P_DATE = 60;
const P_ZIP = 55;
const P_ADDRESS = 50;
const P_PHONE = 45;
const P_AGE = 40;
const P_NAME = 30;
const P_NAME_RECURRENCE = 20;

/** Case-insensitive letters in a pattern whose other parts must stay case-sensitive. */
function ci(words: string): string {
  return `(?:${words.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`)})`;
}

const PLACEHOLDER_RE = new RegExp(`\\[(${PHI_TYPES.join("|")})_(\\d{1,6})\\]`, "g");

// ---------------------------------------------------------------- numbers and web identifiers

const EMAIL_RE =
  /(?<![\w.%+-])[\w.%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![\w-])/g;
// "anna dot k at example dot com", "anna[at]example[dot]org", "anna (at) example.com": the address written out
// so that it is not recognised. The last label must be a common top-level domain.
const SPELLED_AT = "(?:\\s{0,2}[\\[({<]\\s?at\\s?[\\])}>]\\s{0,2}|\\s{1,2}at\\s{1,2})";
const SPELLED_DOT = "(?:\\s{0,2}[\\[({<]\\s?dot\\s?[\\])}>]\\s{0,2}|\\s{1,2}dot\\s{1,2}|\\.)";
const TLD =
  "(?:com|org|net|edu|gov|mil|info|io|co|uk|us|ca|au|nz|ie|de|fr|es|it|nl|be|ch|se|no|dk|fi|pl|in|za|ng|ke)";
const EMAIL_SPELLED_RE = new RegExp(
  `(?<![\\w.%+-])[\\w%+-]{1,64}(?:${SPELLED_DOT}[\\w%+-]{1,64}){0,3}${SPELLED_AT}[a-z0-9-]{1,63}` +
    `(?:${SPELLED_DOT}[a-z0-9-]{1,63}){0,4}?${SPELLED_DOT}${TLD}(?![\\w-])`,
  "gi",
);
const URL_RE = /(?<![\w.@\/-])(?:https?:\/\/|www\.)[^\s<>"'()\[\]{}]+/gi;
const BARE_URL_RE =
  /(?<![\w.@\/-])[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){0,6}\.(?:com|org|net|edu|gov|io|info|co\.uk|org\.uk|nhs\.uk|ac\.uk)\/[^\s<>"'()\[\]{}]*/gi;
const IPV4_RE =
  /(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)/g;
const IPV6_RE = /(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])/g;
const SSN_RE = /(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])/g;
const PHONE_RE =
  /(?<![\w+.\/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,12}(?:[ .-]\d{2,7}){0,5}(?:\s?(?:ext\.?|x)\s?\d{1,5})?(?![\w\/]|[.-]\d)/g;

/** What may follow a number that is a quantity, not an identifier. */
const UNIT_AFTER =
  /^\s?(?:mg|mcg|µg|ug|g|kg|ml|l|dl|units?|iu|%|mmol|micromol|µmol|umol|nmol|pmol|copies|cells|mm|cm|bpm|mmhg|x|×|times|tabs?|tablets?|puffs?|doses?|hours?|hrs?|days?|weeks?|months?|years?)\b|^\s?%/i;

/** Cue words for numbers: the nearest one before a number decides its type. */
const NUMBER_CUES: [PhiType, RegExp][] = [
  ["FAX", /\b(?:fax|facsimile|faxed)\b|(?<![\w])F\s?:/gi],
  [
    "PHONE",
    /\b(?:tel|telephone|phone|ph|mob|mobile|cell|cellphone|landline|call|called|ring|rang|text|whatsapp|contact)\b|(?<![\w])[TM]\s?:/gi,
  ],
  [
    "MRN",
    /\b(?:mrn|medical records?|hospital (?:number|no|#|id)|hosp|nhs|chi|patient id|pt id|unit (?:number|no)|chart|record (?:number|no))\b/gi,
  ],
  [
    "ACCOUNT",
    /\b(?:account|acct|policy|member|membership|subscriber|insurance|medicaid|medicare|beneficiary|claim|card|csn)\b/gi,
  ],
  ["SSN", /\b(?:ssn|social security)\b/gi],
];

/** Cues followed directly by an identifier value, and the type of that value. */
const VALUE_CUES: [PhiType, string][] = [
  ["MRN", "mrn|mr ?#|medical record(?: number| no\\.?| #)?|med(?:ical)? rec(?:ord)? (?:no\\.?|#)"],
  ["MRN", "record (?:number|no\\.?|#)|hospital (?:number|no\\.?|#|id)|hosp\\.? ?(?:no\\.?|#|number)"],
  [
    "MRN",
    "nhs(?: number| no\\.?| #)?|chi (?:number|no\\.?)|patient (?:id|number|no\\.?)|pt\\.? ?(?:id|no\\.?|#)",
  ],
  ["MRN", "unit (?:number|no\\.?)|chart(?: number| no\\.?| #)?|case (?:number|no\\.?)|hospital record"],
  ["ACCOUNT", "account(?: number| no\\.?| #)?|acct\\.?(?: no\\.?| #)?|policy(?: number| no\\.?| #| id)?"],
  [
    "ACCOUNT",
    "member(?:ship)? (?:id|number|no\\.?|#)|subscriber (?:id|number|no\\.?)|group (?:number|no\\.?|#)",
  ],
  ["ACCOUNT", "insurance(?: policy)?(?: id| number| no\\.?)?|medicaid(?: id| number| no\\.?)?"],
  ["ACCOUNT", "medicare(?: id| number| no\\.?)?|(?:health plan )?beneficiary (?:number|no\\.?|id)"],
  [
    "ACCOUNT",
    "health plan (?:number|id)|claim (?:number|no\\.?|#)|card (?:number|no\\.?|ending(?: in)?)|csn",
  ],
  ["SSN", "ssn|ss#|social security(?: number| no\\.?| #)?|soc\\.? sec\\.?(?: no\\.?)?"],
  ["DATE", "dob|d\\.o\\.b\\.?|date of birth"],
];
const VALUE_CUE_RE = new RegExp(
  `(?<![\\w])(?:${VALUE_CUES.map(([, cue]) => `(${cue})`).join("|")})(?![\\w])`,
  "gi",
);
const CONNECTOR_RE =
  /[\s:#.=-]{0,4}(?:(?:number|no|num|id|#)\b\.?[\s:#]{0,3})?(?:(?:is|was|of|as)\s{1,3})?#?/iy;
const ID_VALUE_RE = /(?:[A-Z]{1,4}[- ]?)?\d[\dA-Z]{0,20}(?:[-.\/][\dA-Z]{1,12}|\s\d{2,6}){0,5}(?![\w])/y;
const SSN_VALUE_RE = /\d{3}[- ]?\d{2}[- ]?\d{4}(?![\w])/y;
const COMPACT_DATE_RE = /\d{6,8}(?![\w])/y;

// ---------------------------------------------------------------- dates and ages

const MONTH =
  "(?:Jan(?:uary|\\.)?|Feb(?:ruary|\\.)?|Mar(?:ch|\\.)?|Apr(?:il|\\.)?|May|June?|July?|Aug(?:ust|\\.)?|" +
  "Sep(?:t(?:ember|\\.)?|\\.)?|Oct(?:ober|\\.)?|Nov(?:ember|\\.)?|Dec(?:ember|\\.)?)";
const DAY = "(?:[12]\\d|3[01]|0?[1-9])(?:st|nd|rd|th)?";
const YEAR = "(?:19|20)\\d\\d";
const DATE_DMY_RE = new RegExp(
  `(?<![\\w])${DAY}(?:\\s{1,3}of)?\\s{1,3}${MONTH}(?:,?\\s{1,3}${YEAR})?(?![\\w])`,
  "g",
);
const DATE_MDY_RE = new RegExp(`(?<![\\w])${MONTH}\\s{1,3}${DAY}(?:,?\\s{1,3}${YEAR})?(?![\\w])`, "g");
const DATE_MY_RE = new RegExp(`(?<![\\w])${MONTH},?\\s{1,3}${YEAR}(?![\\w])`, "g");
const DATE_NUMERIC_RE = /(?<![\w\/.-])(\d{1,2})([\/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\w\/]|[.-]\d)/g;
const DATE_ISO_RE = /(?<![\w\/.-])(\d{4})([\/.-])(\d{1,2})\2(\d{1,2})(?![\w\/]|[.-]\d)/g;
const DATE_SHORT_RE = new RegExp(
  `(?<![\\w])(?:${
    ci("on|since|from|until|till|dated|date")
  }|DOB)\\s{0,3}:?\\s{0,3}(\\d{1,2})\\/(\\d{1,2})(?![\\w\\/]|\\.\\d)`,
  "dg",
);
const DATE_ORDINAL_RE = new RegExp(
  `(?<![\\w])${ci("on|since|from|until|till|by|before|after")}\\s{1,3}${ci("the")}\\s{1,3}` +
    `((?:[12]\\d|3[01]|[1-9])(?:st|nd|rd|th))(?![\\w])(?!\\s{1,3}(?:of\\s)?(?:day|week|month|year|dose|cycle|time|` +
    `floor|centile|percentile|attempt|line|rib|finger|toe|metatarsal|cranial|nerve|trimester|stage|grade|decade|` +
    `intercostal|vertebra|lumbar|thoracic|cervical|post|session|visit|admission|infusion|course))`,
  "dg",
);

const OLD = "(?:9\\d|1[0-2]\\d)";
const NOT_AGE_AFTER =
  "(?!\\s?(?:%|\\/|\\.\\d|mg|kg|lb|cm|mm|bpm|mmhg|weeks?|months?|days?|kilos?|pounds?|percent))";
const AGE_UNIT_RE = new RegExp(
  `(?<![\\w.\\/-])(${OLD})(?=[\\s-]{0,3}(?:${ci("years?|yrs?|yr|y/o|yo|y\\.o\\.?|year-old")})(?![\\w]))`,
  "dg",
);
const AGE_CUE_RE = new RegExp(
  `(?<![\\w])${ci("aged?|age")}\\s{0,3}:?\\s{0,3}(${OLD})(?![\\w])${NOT_AGE_AFTER}`,
  "dg",
);
const AGE_SUBJECT_RE = new RegExp(
  `(?<![\\w])${
    ci(
      "she|he|they|patient|pt|mother|father|mum|mom|dad|grandmother|grandfather|grandma|grandpa|gran|granny|nan|" +
        "wife|husband|who|i|aunt|uncle",
    )
  }(?:\\s{1,3}(?:is|was|turned|turns|will be|is now|was now)|['’]s)\\s{1,3}(${OLD})(?![\\w])${NOT_AGE_AFTER}`,
  "dg",
);
const AGE_APPOSITION_RE = new RegExp(`(?<=\\p{Lu}\\p{Ll}+),\\s{1,3}(${OLD}),`, "dgu");

// ---------------------------------------------------------------- addresses and postcodes

const STREET_SUFFIX =
  "(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Way|Close|" +
  "Crescent|Cres|Terrace|Tce|Gardens|Gdns|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Row|Grove|Mews|Walk|Hill|" +
  "Park|View|Rise|Green|Parade|Trail|Pike|Alley|Wharf|Quay)";
const UNIT = "(?:Flat|Apt|Apartment|Unit|Suite|Ste)\\.?\\s{0,3}#?\\d{1,5}[A-Z]?";
const ADDRESS_RE = new RegExp(
  `(?:(?<![\\w])${UNIT},?\\s{1,3})?(?<![\\w])\\d{1,5}[A-Z]?\\s{1,3}(?:(?:[NSEW]|North|South|East|West)\\.?\\s{1,3})?` +
    `(?:\\p{Lu}[\\p{L}'’.-]{0,30}\\s{1,3}){1,3}${STREET_SUFFIX}(?![\\w])\\.?(?:,?\\s{1,3}${UNIT}(?![\\w]))?`,
  "gu",
);
// An address written in lower case is taken only after words that introduce one ("lives at 23 station road").
const ADDRESS_CUED_RE = new RegExp(
  `(?<![\\w])(?:lives?|living|resides?|residing|staying|address(?:\\s{1,2}is)?|moved)\\s{1,3}(?:(?:at|on|in|to)\\s{1,3})?:?\\s{0,3}` +
    `(\\d{1,5}[a-z]?\\s{1,3}(?:[\\p{L}'’.-]{1,30}\\s{1,3}){1,3}${STREET_SUFFIX})(?![\\w])`,
  "dgiu",
);
const PO_BOX_RE = /(?<![\w])P\.?\s?O\.?\s{1,3}Box\s{1,3}\d{1,6}(?![\w])/gi;
const US_STATES =
  "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|" +
  "NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY";
const ZIP_STATE_RE = new RegExp(
  `(?<![\\w])(?:${US_STATES})\\.?,?\\s{1,3}(\\d{5}(?:-\\d{4})?)(?![\\w-])`,
  "dg",
);
const UK_POSTCODE = "(?:[A-Z]{1,2}\\d[A-Z\\d]?|GIR) ?\\d[ABD-HJLNP-UW-Z]{2}";
const UK_POSTCODE_RE = new RegExp(`(?<![\\w])${UK_POSTCODE}(?![\\w])`, "g");
const ZIP_CUE_RE = new RegExp(
  `(?<![\\w])${ci("zip(?: code)?|post ?code|postal code")}\\s{0,3}[:#]?\\s{0,3}(?:${ci("is")}\\s{1,3})?` +
    `(\\d{5}(?:-\\d{4})?|${UK_POSTCODE}|${UK_POSTCODE.toLowerCase()})(?![\\w-])`,
  "dg",
);

// ---------------------------------------------------------------- names

const NAME_WORD = "(?:(?:Mc|Mac|\\p{Lu}['’])?\\p{Lu}\\p{Ll}+(?:-\\p{Lu}?\\p{Ll}+)?)";
const INITIAL = "(?:\\p{Lu}\\.)";
const PARTICLE = "(?:van|von|de|der|den|da|di|du|le|la|del|della|bin|binti|al|el|ter|ten)";
const NAME_SEQ =
  `(?:${INITIAL}\\s{0,2}){0,2}${NAME_WORD}(?:\\s{1,2}(?:${PARTICLE}\\s{1,2}){0,2}${NAME_WORD}){0,2}`;
// Other languages' titles too (a French, German, Spanish or Italian clinic writes its own).
const TITLE = "(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Doctor|Sister|Nurse|Rev|Dame|Sir|Lady|" +
  "Mme|Mlle|Herr|Frau|Sr|Sra|Srta|Dra|Señor|Señora|Signor|Signora)";
const RELATION =
  "patient|pt|client|resident|baby|infant|son|daughter|child|wife|husband|partner|spouse|mother|" +
  "mum|mom|mummy|father|dad|daddy|parent|brother|sister|niece|nephew|cousin|aunt|auntie|uncle|grandson|" +
  "granddaughter|grandmother|grandfather|grandma|grandpa|granny|nan|nana|carer|caregiver|friend|neighbour|" +
  "neighbor|fiancée|fiancee|fiancé|fiance|girlfriend|boyfriend|guardian|stepson|stepdaughter|stepmother|" +
  "stepfather|twin|colleague|boss|employer|landlord|housemate|flatmate|roommate";
const SIGN_OFF = "thanks(?: so much| again| very much)?|thank you(?: so much| very much)?|many thanks|" +
  "(?:kind|best|warm|warmest)? ?regards|best wishes|best|cheers|sincerely|yours(?: sincerely| faithfully| truly)?|" +
  "love|take care|signed";

const NAME_CUE_RES: RegExp[] = [
  // Titles: "Dr Priya Raman", "Mrs. O'Brien", "Prof J. Patel".
  new RegExp(`(?<![\\w])${TITLE}\\.?\\s{1,3}(${NAME_SEQ})`, "dgu"),
  // Introductions: "my name is Anna Kowalski", "named Carlos", "I'm Jenna".
  new RegExp(
    `(?<![\\w])(?:${
      ci("my name is|name is|named|called|call me|goes by|known as|i'm|i am|this is|it's|re:|name ?:")
    })\\s{1,3}(${NAME_SEQ})`,
    "dgu",
  ),
  // People by relation: "his wife Maria", "patient John Smith", "mum of Kwame", "patient's daughter, Emma".
  new RegExp(`(?<![\\w])(?:${ci(RELATION)})(?:\\s${ci("of")})?,?\\s{1,3}(${NAME_SEQ})`, "dgu"),
  // Greetings and people acted with: "Dear Sophie", "seen by Anna", "discussed with Malik".
  new RegExp(
    `(?<![\\w])(?:${
      ci(
        "dear|hi|hello|hey|attn:?|attention:?|c/o|cc:?|seen by|reviewed by|referred by|discussed with|spoke to|" +
          "spoke with|accompanied by|signed by|dictated by|visited by|message from|on behalf of",
      )
    })\\s{1,3}(${NAME_SEQ})`,
    "dgu",
  ),
  // Sign-offs: "Thanks, Priya", "Kind regards,\nThomas Whitfield".
  new RegExp(
    `(?<![\\w])(?:${
      ci(SIGN_OFF)
    })[,.!]?[ \\t]{0,3}\\n?[ \\t]{0,3}(${NAME_SEQ})(?=[ \\t]{0,3}(?:$|\\n|[,.!)]))`,
    "dgu",
  ),
  // A full name followed by what describes a person: "Eleanor Voss, 93,", "Kofi Mensah (patient)".
  new RegExp(
    `(?<![\\w])(${NAME_WORD}\\s{1,2}(?:${PARTICLE}\\s{1,2}){0,2}${NAME_WORD})(?=,\\s{1,3}(?:${
      ci("dob|d\\.o\\.b|born|aged?")
    }|\\d{1,3}(?:,|\\s{0,2}(?:y|yo|years))))`,
    "dgu",
  ),
  new RegExp(`(?<![\\w])(${NAME_SEQ})(?=\\s{1,3}\\((?:${ci(RELATION)})\\))`, "dgu"),
];

// Names typed in lower case ("my name is anna kowalski", "dr lindqvist said"), taken only after the cues that
// leave no doubt a person follows; the words after them stop at the first that is not a name (LOWER_NOT_NAME).
const LOWER_NAME_WORD = "(?:\\p{Ll}['’])?\\p{Ll}{2,24}(?:-\\p{Ll}{2,24})?";
const LOWER_NAME_SEQ = `${LOWER_NAME_WORD}(?:\\s{1,2}${LOWER_NAME_WORD}){0,2}`;
const LOWER_NAME_CUE_RES: RegExp[] = [
  new RegExp(
    `(?<![\\w])(?:${ci("mr|mrs|mx|dr|prof|professor")}\\.?|${ci("ms|miss")}\\.)\\s{1,3}(${LOWER_NAME_SEQ})`,
    "dgu",
  ),
  new RegExp(
    `(?<![\\w])(?:${ci("my name is|name is|named|name ?:|dear")})\\s{1,3}(${LOWER_NAME_SEQ})`,
    "dgu",
  ),
];

/** Capitalised words that are never a person's name after a cue; they end a name where they appear. */
const NOT_NAME = new Set(
  ("I A An The This That These Those He She They We You It His Her Their My Our Your Its And Or But If So As " +
    "At In On Of To For From By With Without Is Was Are Were Be Been Has Had Have Not No Yes Ok Okay Please " +
    "Thanks Thank Hi Hello Hey Dear Re Cc Also Again Today Tomorrow Yesterday Tonight Now Then When Where Who " +
    "What Why How Which All Everyone Anyone Someone Team Colleague Colleagues Sir Madam Doctor Doc Docs Nurse " +
    "Sister Mr Mrs Ms Miss Mx Dr Prof Professor Mme Mlle Herr Frau Sr Sra Srta Dra Señor Señora Signor Signora " +
    "Patient Patients Pt Mum Mom Dad Son Daughter Wife Husband Baby " +
    "Consultant Registrar Practitioner Specialist Physician Surgeon Manager Matron Midwife Pharmacist Ward " +
    "Clinic Hospital Department Dept Unit Practice Surgery Centre Center Emergency Medicine Cardiology " +
    "Neurology Oncology Radiology Haematology Hematology Gastroenterology Respiratory Renal Urology " +
    "Orthopaedics Orthopedics Paediatrics Pediatrics Obstetrics Gynaecology Gynecology Psychiatry Dermatology " +
    "Rheumatology Endocrinology Geriatrics Anaesthetics Anesthetics Physiotherapy Pharmacy Microbiology " +
    "Pathology Theatre Theatres Team Services Service Trust Health Care General Medical Surgical Acute Admissions " +
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July " +
    "August September October November December Known Seen Reviewed Admitted Discharged Presented Presents " +
    "Denies Reports Regarding Referral Plan Will Can Could Should Would Might Must Just Still Very Much Well " +
    "Better Worse Good Fine Sorry Update Results Result Here There Yours Regards Best Kind Warm Love Cheers " +
    "Sincerely Faithfully Truly Signed Many Again Both Each Every Some Any One Two Three Four Five Six Seven " +
    "Eight Nine Ten Note Notes Letter Summary Discharge Admission Diagnosis History Examination Impression " +
    "English British American Irish Scottish Welsh Polish Muslim Christian Jewish Hindu Sikh Catholic Pregnant " +
    "Diabetic Asthmatic Worried Concerned Unwell Feeling Writing Calling Asking Following Further Next Last " +
    "First Second New Old Other Same Such Only Even Since Until After Before During About Above Below Under Over " +
    "Yesterday Morning Afternoon Evening Night Week Weekend Month Year Day God Sir Lord Jesus Allah NHS GP ED ICU " +
    "Ambulance Police Social Services School Work Home House Mother Father Brother Son Child Children Family " +
    "Carer Carers Friend Friends Partner Neighbour Neighbor Guardian Grandmother Grandfather Grandma Grandpa " +
    "Granny Nan Aunt Uncle Cousin Niece Nephew Twin Twins Infant Resident Client Spouse Boss Education Information " +
    "Leaflet Leaflets Advice Safety Transport Record Records Portal Group Experience Liaison Feedback Forum Survey " +
    "Satisfaction Representative Identification Identifier Details Number Name Names List Label").split(" "),
);

/** Given names that are also everyday words: taken after a cue, but not searched for elsewhere. */
const COMMON_WORDS = new Set(
  ("Will May Mark Bill Rose Grace Hope Faith Joy Amber Iris June Art Pat Sky Dawn Summer Autumn Guy Frank Miles " +
    "Rich Don Ray Sunny Ivy Holly Daisy Jack Jade Ruby Pearl Crystal Angel Chance Chase Hunter Page Carol Penny " +
    "Sandy Rocky Rusty Dusty Robin Jay Bob Sue Lance Mo Al Ed Di Victor Royal Harmony Melody Star Max Dean Drew " +
    "Cliff Gene Glen Heath Reed Wade Woody Doc Baby").split(" "),
);

/** Lower-case words that end a lower-case name: everyday words that follow a name, and NOT_NAME's words. */
const LOWER_NOT_NAME = new Set([
  ...[...NOT_NAME].map((w) => w.toLowerCase()),
  ...("a an the and or but nor so yet if then than that this these those there here is am are was were be been " +
    "being has have had having do does did done will would shall should can could may might must to of in on at " +
    "by for from with without about into onto over under up down out off as like just still also too very really " +
    "quite not no yes ok okay im i'm ive i've he's she's it's its it he she they them their his her him me my we " +
    "us our you your who whom whose what which when where why how said says say told tells tell asked asks ask " +
    "gave gives give prescribed prescribes recommended recommends advised advises suggested suggests wants wanted " +
    "thinks thought ordered orders checked checks examined examines referred refers saw sees see seen came comes " +
    "come went goes go got gets get took takes take made makes make put puts called calls phoned rang wrote " +
    "writes sent sends thanks thank please sorry hi hello hey dear sir madam doctor doc team all everyone " +
    "anyone someone nurse sister patient pt mum mom dad son daughter wife husband baby child kid kids family " +
    "today tomorrow yesterday tonight now again soon later already yet ever never always often sometimes " +
    "because since until while after before during within per via re cc fyi asap " +
    "feeling feels feel felt worried concerned unwell sick ill better worse fine good well pain ache aches " +
    "here's there's what's who's how's that's let's can't won't don't doesn't didn't isn't wasn't aren't " +
    "has hasn't have haven't had hadn't one two three four five six seven eight nine ten first second last next " +
    "new old other same some any each every both few many much more most less least only even own such " +
    "relapse flare patients clinic ward hospital surgery practice office letter note results result").split(
      " ",
    ),
]);

/** After an eponym, these nouns show that the capitalised word names a disease, sign or score. */
const EPONYM_NOUN_AFTER =
  /^(?:['’]s?)?\s{1,3}(?:disease|syndrome|sign|signs|phenomenon|palsy|score|scale|criteria|test|manoeuvre|maneuver|lymphoma|sarcoma|tumou?r|fracture|reflex|triad|law|classification|procedure|operation|node|ulcer|cyst|contracture|encephalopathy|angina|gangrene|oesophagus|esophagus|dementia|disorder|pattern|tear|thyroiditis|purpura|anomaly|body|bodies|cell|cells|space|point|position|line|index|formula|equation|rule)\b/i;

// ---------------------------------------------------------------- detection

function detect(text: string, protectedSpans: Candidate[]): Candidate[] {
  const found: Candidate[] = [...protectedSpans];
  const add = (type: PhiType, start: number, end: number, priority: number) => {
    if (end > start) found.push({ type, start, end, priority });
  };
  const group = (m: RegExpMatchArray, n = 1): [number, number] | null => m.indices?.[n] ?? null;

  for (const m of text.matchAll(EMAIL_RE)) add("EMAIL", m.index, m.index + m[0].length, P_EMAIL);
  for (const m of text.matchAll(EMAIL_SPELLED_RE)) add("EMAIL", m.index, m.index + m[0].length, P_EMAIL - 1);
  for (const re of [URL_RE, BARE_URL_RE]) {
    for (const m of text.matchAll(re)) {
      const trimmed = m[0].replace(/[.,;:!?]+$/, "");
      add("URL", m.index, m.index + trimmed.length, P_URL);
    }
  }
  for (const m of text.matchAll(IPV4_RE)) add("IP", m.index, m.index + m[0].length, P_IP);
  for (const m of text.matchAll(IPV6_RE)) {
    if (isIpv6(m[0])) add("IP", m.index, m.index + m[0].length, P_IP);
  }
  for (const m of text.matchAll(SSN_RE)) add("SSN", m.index, m.index + m[0].length, P_SSN);
  detectCueValues(text, add);
  detectDates(text, add, group);
  detectPhones(text, add);
  detectAges(text, add, group);
  for (const m of text.matchAll(ADDRESS_RE)) {
    // The full stop after an abbreviated suffix ("Elm St.") is part of the address; after "Lane." it ends a sentence.
    const abbreviated = /(?:St|Rd|Ave|Ln|Dr|Blvd|Ct|Pl|Cres|Tce|Gdns|Sq|Pkwy|Hwy|Cir)\.$/.test(m[0]);
    const end = m.index + m[0].length - (m[0].endsWith(".") && !abbreviated ? 1 : 0);
    add("ADDRESS", m.index, end, P_ADDRESS);
  }
  for (const m of text.matchAll(ADDRESS_CUED_RE)) {
    const g = group(m);
    if (g) add("ADDRESS", g[0], g[1], P_ADDRESS);
  }
  for (const m of text.matchAll(PO_BOX_RE)) add("ADDRESS", m.index, m.index + m[0].length, P_ADDRESS);
  for (const re of [ZIP_STATE_RE, ZIP_CUE_RE]) {
    for (const m of text.matchAll(re)) {
      const g = group(m);
      if (g) add("ZIP", g[0], g[1], P_ZIP);
    }
  }
  for (const m of text.matchAll(UK_POSTCODE_RE)) add("ZIP", m.index, m.index + m[0].length, P_ZIP);
  detectNames(text, add, group);
  return found;
}

type Add = (type: PhiType, start: number, end: number, priority: number) => void;
type Group = (m: RegExpMatchArray, n?: number) => [number, number] | null;

function isIpv6(s: string): boolean {
  const double = s.indexOf("::");
  if (double !== s.lastIndexOf("::")) return false;
  const groups = s.split(":");
  if (double < 0 && groups.length !== 8) return false;
  if (!/[0-9A-Fa-f]/.test(s)) return false;
  return groups.every((g) => g.length <= 4);
}

function detectCueValues(text: string, add: Add): void {
  for (const m of text.matchAll(VALUE_CUE_RE)) {
    const which = m.slice(1).findIndex((g) => g !== undefined);
    const type = VALUE_CUES[which][0];
    CONNECTOR_RE.lastIndex = m.index + m[0].length;
    const connector = CONNECTOR_RE.exec(text);
    const at = connector ? connector.index + connector[0].length : m.index + m[0].length;
    const valueRe = type === "SSN" ? SSN_VALUE_RE : type === "DATE" ? COMPACT_DATE_RE : ID_VALUE_RE;
    valueRe.lastIndex = at;
    const value = valueRe.exec(text);
    if (!value) continue;
    const digits = value[0].replace(/\D/g, "").length;
    if (digits < 4) continue;
    add(type, at, at + value[0].length, P_CUE_VALUE);
  }
}

function validDayMonth(a: number, b: number): boolean {
  return a >= 1 && b >= 1 && a <= 31 && b <= 31 && (a <= 12 || b <= 12);
}

function detectDates(text: string, add: Add, group: Group): void {
  for (const re of [DATE_DMY_RE, DATE_MDY_RE, DATE_MY_RE]) {
    for (const m of text.matchAll(re)) {
      // "may" and "march" are words too: a date needs the capitalised month, which the pattern already demands;
      // a bare "May 5" is still a date only when it does not measure something ("May 5 mg").
      if (UNIT_AFTER.test(text.slice(m.index + m[0].length, m.index + m[0].length + 12))) continue;
      add("DATE", m.index, m.index + m[0].length, P_DATE);
    }
  }
  for (const m of text.matchAll(DATE_NUMERIC_RE)) {
    const [a, sep, b, year] = [Number(m[1]), m[2], Number(m[3]), m[4]];
    if (!validDayMonth(a, b)) continue;
    if (year.length === 2 && sep === "-") continue;
    if (year.length === 4 && (Number(year) < 1900 || Number(year) > 2099)) continue;
    if (UNIT_AFTER.test(text.slice(m.index + m[0].length, m.index + m[0].length + 12))) continue;
    add("DATE", m.index, m.index + m[0].length, P_DATE);
  }
  for (const m of text.matchAll(DATE_ISO_RE)) {
    const [year, month, day] = [Number(m[1]), Number(m[3]), Number(m[4])];
    if (year < 1900 || year > 2099 || month < 1 || month > 12 || day < 1 || day > 31) continue;
    add("DATE", m.index, m.index + m[0].length, P_DATE);
  }
  for (const m of text.matchAll(DATE_SHORT_RE)) {
    if (!validDayMonth(Number(m[1]), Number(m[2]))) continue;
    const g1 = group(m, 1), g2 = group(m, 2);
    if (g1 && g2) add("DATE", g1[0], g2[1], P_DATE);
  }
  for (const m of text.matchAll(DATE_ORDINAL_RE)) {
    const g = group(m);
    if (g) add("DATE", g[0], g[1], P_DATE - 1);
  }
}

function detectPhones(text: string, add: Add): void {
  for (const m of text.matchAll(PHONE_RE)) {
    const raw = m[0];
    const digits = raw.replace(/\D/g, "").length;
    if (digits < 7 || digits > 15) continue;
    const end = m.index + raw.length;
    if (UNIT_AFTER.test(text.slice(end, end + 12))) continue;
    const cue = nearestCue(text, m.index);
    if (cue) {
      add(cue, m.index, end, cue === "PHONE" || cue === "FAX" ? P_PHONE : P_PHONE + 1);
      continue;
    }
    const core = raw.replace(/\s?(?:ext\.?|x)\s?\d{1,5}$/, "");
    const separators = (core.match(/[ .-]/g) ?? []).length;
    const looksLikePhone = core.startsWith("+") || core.includes("(") || separators >= 2 ||
      /^\d{3}-\d{4}$/.test(core) || /^0\d{3,4} \d{6,7}$/.test(core) ||
      (separators === 0 && digits >= 10 && digits <= 11);
    if (looksLikePhone) add("PHONE", m.index, end, P_PHONE);
  }
}

/** The type named by the last cue word within a short distance before `at`, on the same line. */
function nearestCue(text: string, at: number): PhiType | null {
  let from = Math.max(0, at - 32);
  const newline = text.lastIndexOf("\n", at - 1);
  if (newline >= from) from = newline + 1;
  const before = text.slice(from, at);
  let best: PhiType | null = null;
  let bestAt = -1;
  for (const [type, re] of NUMBER_CUES) {
    for (const m of before.matchAll(re)) {
      if (m.index > bestAt) [best, bestAt] = [type, m.index];
    }
  }
  return best;
}

function detectAges(text: string, add: Add, group: Group): void {
  for (const re of [AGE_UNIT_RE, AGE_CUE_RE, AGE_SUBJECT_RE, AGE_APPOSITION_RE]) {
    for (const m of text.matchAll(re)) {
      const g = group(m);
      if (g) add("AGE", g[0], g[1], P_AGE);
    }
  }
}

function detectNames(text: string, add: Add, group: Group): void {
  NAME_CUE_RES.forEach((re, i) => {
    const isTitle = i === 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const g = group(m);
      if (!g) break;
      const span = trimName(text, g[0], g[1]);
      // Search again from where the name ended, or from its first word when it was not a name: that word may be
      // a cue itself ("Dr Dr Smith"). Each step moves forward, so the scan stays linear.
      re.lastIndex = Math.max(span ? span[1] : g[0], m.index + 1);
      if (!span) continue;
      if (!isTitle && EPONYM_NOUN_AFTER.test(text.slice(span[1], span[1] + 40))) continue;
      add("NAME", span[0], span[1], P_NAME);
    }
  });
  for (const re of LOWER_NAME_CUE_RES) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const g = group(m);
      if (!g) break;
      re.lastIndex = Math.max(g[0], m.index + 1);
      const span = trimLowerName(text, g[0], g[1]);
      if (!span) continue;
      re.lastIndex = span[1];
      if (EPONYM_NOUN_AFTER.test(text.slice(span[1], span[1] + 40))) continue;
      add("NAME", span[0], span[1], P_NAME);
    }
  }
}

/** A lower-case name cut before its first everyday word; null when its first word is one. */
function trimLowerName(text: string, start: number, end: number): [number, number] | null {
  let stop = start;
  for (const w of text.slice(start, end).matchAll(/\S+/g)) {
    if (LOWER_NOT_NAME.has(w[0]) || !/\p{Ll}/u.test(w[0][0])) break;
    stop = start + w.index + w[0].length;
  }
  return stop > start ? [start, stop] : null;
}

/** Cuts a matched name at the first word that cannot be part of a name; null when nothing is left. */
function trimName(text: string, start: number, end: number): [number, number] | null {
  const words = /[\p{L}'’.-]+/gu;
  const slice = text.slice(start, end);
  let lastEnd = -1;
  for (const w of slice.matchAll(words)) {
    const word = w[0].replace(/\.$/, "");
    if (NOT_NAME.has(word) || (w.index === 0 && /^\p{Lu}\.?$/u.test(w[0]) && !/\s/.test(slice))) break;
    lastEnd = w.index + w[0].length;
  }
  if (lastEnd <= 0) return null;
  let stop = start + lastEnd;
  // An initial alone at the end ("Dr J.") is kept with what came before; a trailing full stop after a word is not.
  if (text[stop - 1] === "." && !/(?:^|[\s.])\p{Lu}\.$/u.test(text.slice(start, stop))) stop--;
  return stop > start ? [start, stop] : null;
}

/**
 * The words that tie a name's placeholder to others, in lower case: "Haddad", "haddad" and "HADDAD" are one
 * person's, and "tomasz haddad" takes the placeholder of "Mr Haddad" once both words are known.
 */
function placeholderTokens(name: string): string[] {
  const tokens = nameTokens(name).map((t) => t.toLowerCase());
  if (!OTHER_CASE_WORD.test(name)) return tokens;
  for (const m of name.matchAll(WORD_RE)) {
    if (OTHER_CASE_WORD.test(m[0]) && anyCaseName(m[0])) tokens.push(m[0].toLowerCase());
  }
  return tokens;
}

/** A word in lower case or in capitals ("haddad", "HADDAD"), which nameTokens does not take. */
const OTHER_CASE_WORD = /(?:^|[^\p{L}'’-])(?:\p{Ll}|\p{Lu}\p{Lu})/u;

/** Words of a name worth searching for elsewhere: not initials, particles or everyday words. */
function nameTokens(name: string): string[] {
  return [...name.matchAll(/(?:Mc|Mac|\p{Lu}['’])?\p{Lu}\p{Ll}+(?:-\p{Lu}?\p{Ll}+)?/gu)].map((m) => m[0]);
}

/** A word, with the apostrophes and hyphens inside it ("O'Brien", "Smith-Jones"). */
const WORD_RE = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;

/** The name words a redactor knows, as recurrenceCandidates looks them up. */
interface KnownNames {
  /** Capitalised words of names, matched as written. */
  tokens: Set<string>;
  /** Words of names written in lower case, matched in lower case. */
  lower: Set<string>;
  /** Words that are no everyday English words, in lower case, matched in any case. */
  anyCase: Set<string>;
  /** The length of the longest of them. */
  longest: number;
}

/**
 * Known name words found again: "Mr Smith" earlier makes "Smith" a name here too, and "John Smith" takes the
 * given name with it. Words are looked up in a set, so the cost is linear in the text however many names the
 * conversation has seen. `lower` holds the words of names written in lower case, matched in lower case.
 */
function recurrenceCandidates(text: string, known: KnownNames): Candidate[] {
  const { tokens, lower, anyCase, longest } = known;
  const searchable = (t: string) => t.length >= 3 && !NOT_NAME.has(t) && !COMMON_WORDS.has(t);
  const isKnown = (w: string) =>
    (tokens.has(w) && searchable(w)) || (lower.has(w) && !LOWER_NOT_NAME.has(w) && w.length >= 3) ||
    (anyCase.size > 0 && w.charCodeAt(0) > 0x40 && anyCase.has(w.toLowerCase()));
  const hits: [number, number][] = [];
  for (const m of text.matchAll(WORD_RE)) {
    const word = m[0];
    if (isKnown(word)) {
      hits.push([m.index, m.index + word.length]);
      continue;
    }
    if (!/['’-]/.test(word)) continue;
    // "O'Brien's", "Smith-Jones" when only "Smith" is known: the longest known prefix, else each known part.
    // Prefixes longer than any known word are not looked up (a hostile "a-a-a-…" would cost its length squared).
    const parts = [...word.matchAll(/[\p{L}\p{N}]+/gu)];
    let matched = false;
    for (let n = parts.length - 1; n >= 1 && !matched; n--) {
      const end = parts[n - 1].index + parts[n - 1][0].length;
      if (end <= longest && isKnown(word.slice(0, end))) {
        hits.push([m.index, m.index + end]);
        matched = true;
      }
    }
    if (matched) continue;
    for (const p of parts) if (isKnown(p[0])) hits.push([m.index + p.index, m.index + p.index + p[0].length]);
  }
  const found: Candidate[] = [];
  for (let i = 0; i < hits.length;) {
    let [start, end] = hits[i];
    let j = i + 1;
    // Up to three known words in a row, one or two spaces apart, are one name.
    while (j < hits.length && j - i < 3 && /^\s{1,2}$/.test(text.slice(end, hits[j][0]))) end = hits[j++][1];
    i = j;
    if (EPONYM_NOUN_AFTER.test(text.slice(end, end + 40))) continue;
    // A known surname after an unknown given name ("John Smith" once "Mr Smith" is known) takes the given name.
    const before = /(?:^|[^\p{L}])(\p{Lu}\p{Ll}+|\p{Ll}{3,})\s$/u.exec(
      text.slice(Math.max(0, start - 30), start),
    );
    // In lower case ("my patient tomasz haddad") only a word that is no everyday English word.
    // It is taken here only, not learned: "check inr haddad" must not make every "INR" a name.
    if (before && !NOT_NAME.has(before[1]) && (/^\p{Lu}/u.test(before[1]) || anyCaseName(before[1]))) {
      start -= before[1].length + 1;
    }
    found.push({ type: "NAME", start, end, priority: P_NAME_RECURRENCE });
  }
  return found;
}

/**
 * True when a name word, in lower case, is worth finding in any case ("haddad", "HADDAD" once "Mr Haddad" is
 * known): not an everyday English word ("Mr Brown" must not take "brown sputum"), nor a function word, nor of
 * three letters or fewer, which clinical abbreviations are ("Ms Ana Lopez" must not take "ANA positive", nor "Mr
 * Ali" an ALI, "Ms Tia" a TIA); the list has no clinical terms.
 */
function anyCaseName(word: string): boolean {
  const w = word.toLowerCase();
  return w.length >= 4 && !LOWER_NOT_NAME.has(w) && !COMMON_WORDS_LOWER.has(w) && !isEnglishWord(w);
}

const COMMON_WORDS_LOWER = new Set([...COMMON_WORDS].map((w) => w.toLowerCase()));

/** Keeps the best of overlapping candidates: higher priority first, then the longer. */
function resolve(candidates: Candidate[], taken: Uint8Array): Candidate[] {
  const ordered = [...candidates].sort((a, b) =>
    b.priority - a.priority || (b.end - b.start) - (a.end - a.start) || a.start - b.start
  );
  const kept: Candidate[] = [];
  for (const c of ordered) {
    let free = true;
    for (let i = c.start; i < c.end; i++) {
      if (taken[i]) {
        free = false;
        break;
      }
    }
    if (!free) continue;
    taken.fill(1, c.start, c.end);
    kept.push(c);
  }
  return kept;
}

// ---------------------------------------------------------------- placeholders

function normalise(type: PhiType, value: string): string {
  switch (type) {
    case "PHONE":
    case "FAX":
    case "SSN":
    case "MRN":
    case "ACCOUNT":
    case "ZIP":
      return value.replace(/[^0-9A-Za-z]/g, "").toUpperCase();
    default:
      return value.toLowerCase().replace(/\s+/g, " ").trim();
  }
}

// ---------------------------------------------------------------- the normalised view

/**
 * What detection reads: the text as the patterns expect it, with each character's position in the original kept
 * so that spans found in the view replace the right characters of the original. Compatibility forms become
 * plain ones (NFKC: full-width "０７７００" and "＠", ligatures), digits of any script become ASCII digits,
 * dash and hyphen variants become "-", every kind of space becomes " ", and invisible characters (zero-width
 * spaces and joiners, soft hyphens, word joiners, byte-order marks, variation selectors) are dropped. Without
 * this, "07700 900123" with non-breaking spaces or a name with a zero-width space inside reached the model.
 */
interface View {
  text: string;
  /** For each character of `text`, where its source starts in the original; null when the view is the original. */
  from: Int32Array | null;
  /** For each character of `text`, where its source ends in the original (exclusive). */
  to: Int32Array | null;
}

// deno-lint-ignore no-control-regex -- the ASCII range, control characters included, needs no folding
const NEEDS_VIEW = /[^\x00-\x7f]/;
/**
 * ASCII runs go through unchanged; anything else goes one character with its combining marks at a time, and so
 * does an ASCII letter followed by marks: "Jose\u0301" (é typed as e and an accent) is composed back to "José".
 */
// deno-lint-ignore no-control-regex -- as above
const VIEW_UNIT_RE = /(?:[\x00-\x7f](?!\p{M}))+|\P{M}\p{M}*|\p{M}+/gsu;
const INVISIBLE_RE = /[\p{Cf}\u034f\u115f\u1160\u3164\uffa0\ufe00-\ufe0f]/gu;
const DASH_RE = /[\u2010-\u2015\u2043\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d]/g;
const SPACE_RE = /\p{Zs}/gu;
const DIGIT_RE = /\p{Nd}/gu;
const IS_DIGIT_RE = /\p{Nd}/u;

/** The value of a decimal digit of any script: scripts lay out 0–9 as ten consecutive code points. */
function digitValue(digit: string): number {
  const cp = digit.codePointAt(0)!;
  let zero = cp;
  while (cp - zero < 9 && IS_DIGIT_RE.test(String.fromCodePoint(zero - 1))) zero--;
  return cp - zero;
}

function foldUnit(unit: string): string {
  let folded = unit.normalize("NFKC").replace(INVISIBLE_RE, "").replace(DASH_RE, "-").replace(SPACE_RE, " ");
  if (NEEDS_VIEW.test(folded)) {
    folded = folded.replace(DIGIT_RE, (d) => (d >= "0" && d <= "9" ? d : String(digitValue(d))));
  }
  return folded;
}

/** The text as detection reads it, in lower case: for finding known words in it without the patterns. */
export function foldedForSearch(text: string): string {
  return normalisedView(text).text.toLowerCase();
}

function normalisedView(text: string): View {
  if (!NEEDS_VIEW.test(text)) return { text, from: null, to: null };
  let out = "";
  const from: number[] = [], to: number[] = [];
  for (const m of text.matchAll(VIEW_UNIT_RE)) {
    const unit = m[0], start = m.index, end = start + unit.length;
    // A run of ASCII (a unit ending in ASCII is one: a letter with marks ends in the mark).
    if (unit.charCodeAt(unit.length - 1) < 0x80) {
      out += unit;
      for (let i = start; i < end; i++) from.push(i), to.push(i + 1);
      continue;
    }
    const folded = foldUnit(unit);
    out += folded;
    for (let i = 0; i < folded.length; i++) from.push(start), to.push(end);
  }
  return { text: out, from: Int32Array.from(from), to: Int32Array.from(to) };
}

/** Starts a redactor whose placeholders stay consistent across the texts given to it. */
export function createRedactor(): PhiRedactor {
  const counters = new Map<PhiType, number>();
  const byValue = new Map<string, string>();
  const byNameToken = new Map<string, string>();
  const knownNameTokens = new Set<string>();
  const knownLowerTokens = new Set<string>();
  /** Name words that are no everyday English words, in lower case: found again in any case. */
  const anyCaseTokens = new Set<string>();
  const learnedNames: string[] = [];
  /** Each learned word's position in learnedNames. */
  const learned = new Map<string, number>();
  let longest = 0;
  const learn = (word: string) => {
    longest = Math.max(longest, word.length);
    const w = word.toLowerCase();
    if (w.length < 3 || learned.has(w)) return;
    learned.set(w, learnedNames.length);
    learnedNames.push(w);
    if (anyCaseName(w)) anyCaseTokens.add(w);
  };

  const next = (type: PhiType): string => {
    const n = (counters.get(type) ?? 0) + 1;
    counters.set(type, n);
    return `[${type}_${n}]`;
  };

  const placeholderFor = (type: PhiType, original: string): string => {
    const key = `${type}:${normalise(type, original)}`;
    const seen = byValue.get(key);
    if (seen) return seen;
    let placeholder: string | undefined;
    if (type === "NAME") {
      const tokens = placeholderTokens(original);
      const mapped = new Set(tokens.map((t) => byNameToken.get(t)).filter((p) => p !== undefined));
      const allMapped = tokens.length > 0 && tokens.every((t) => byNameToken.has(t));
      if (allMapped && mapped.size === 1) placeholder = [...mapped][0];
      placeholder ??= next(type);
      for (const t of tokens) if (!byNameToken.has(t)) byNameToken.set(t, placeholder);
    } else {
      placeholder = next(type);
    }
    byValue.set(key, placeholder);
    return placeholder;
  };

  return {
    learnedNames,
    holdsNameLearnedAfter(text, count) {
      if (count >= learnedNames.length) return false;
      const after = (w: string) => (learned.get(w) ?? -1) >= count;
      const folded = foldedForSearch(text);
      // A few new words (a message that names someone): a substring test of each first, which passes every
      // text that holds one as a word and is quicker than reading the text word by word.
      if (learnedNames.length - count <= FEW_NEW_NAMES) {
        let any = false;
        for (let w = count; w < learnedNames.length && !any; w++) any = folded.includes(learnedNames[w]);
        if (!any) return false;
      }
      // Word by word in the folded view, as recurrences are found: the word, each prefix before an apostrophe
      // or hyphen ("o'brien" in "o'brien's"), and each part ("smith" in "smith-jones").
      for (const m of folded.matchAll(WORD_RE)) {
        const word = m[0];
        if (after(word)) return true;
        if (!/['’-]/.test(word)) continue;
        for (const sep of word.matchAll(/['’-]/g)) {
          if (sep.index > longest) break;
          if (after(word.slice(0, sep.index))) return true;
        }
        for (const part of word.split(/['’-]/)) if (after(part)) return true;
      }
      return false;
    },
    reserve(texts) {
      for (const text of texts) {
        for (const m of text.matchAll(PLACEHOLDER_RE)) {
          const type = m[1] as PhiType;
          counters.set(type, Math.max(counters.get(type) ?? 0, Number(m[2])));
        }
      }
    },
    redact(text: string): RedactedText {
      const view = normalisedView(text);
      const seen = view.text;
      const taken = new Uint8Array(seen.length);
      const protectedSpans: Candidate[] = [];
      for (const m of seen.matchAll(PLACEHOLDER_RE)) {
        const type = m[1] as PhiType;
        counters.set(type, Math.max(counters.get(type) ?? 0, Number(m[2])));
        protectedSpans.push({ type, start: m.index, end: m.index + m[0].length, priority: P_PLACEHOLDER });
      }
      const kept = resolve(detect(seen, protectedSpans), taken);
      for (const c of kept) {
        if (c.type !== "NAME") continue;
        const name = seen.slice(c.start, c.end);
        for (const t of nameTokens(name)) {
          knownNameTokens.add(t);
          learn(t);
        }
        for (const w of name.matchAll(WORD_RE)) {
          if (/\p{Lu}/u.test(w[0])) continue;
          knownLowerTokens.add(w[0]);
          learn(w[0]);
        }
      }
      const known = { tokens: knownNameTokens, lower: knownLowerTokens, anyCase: anyCaseTokens, longest };
      kept.push(...resolve(recurrenceCandidates(seen, known), taken));
      const spans = kept.filter((c) => c.priority !== P_PLACEHOLDER).sort((a, b) => a.start - b.start);

      const redactions: Redaction[] = [];
      let out = "";
      let at = 0;
      for (const c of spans) {
        // Back to the original's positions: the span covers every character its view characters came from,
        // invisible ones inside it included.
        const start = Math.max(at, view.from ? view.from[c.start] : c.start);
        const end = view.to ? view.to[c.end - 1] : c.end;
        if (end <= start) continue;
        const placeholder = placeholderFor(c.type, seen.slice(c.start, c.end));
        redactions.push({ type: c.type, placeholder, start, end, original: text.slice(start, end) });
        out += text.slice(at, start) + placeholder;
        at = end;
      }
      return { text: out + text.slice(at), redactions };
    },
  };
}

/**
 * Runs every pattern over long texts once, so that compiling them (V8 compiles a pattern to machine code the
 * first time it meets a long text: about 25 ms in all) does not land on a user's request.
 */
export function warmRedactor(): void {
  const sample =
    "Dear Dr Anna Kowalski, my name is tomasz haddad (DOB 04/11/1952, MRN 55120987, SSN 900-41-7732). " +
    "Call ０７７００ 900123 or anna[at]example[dot]org; lives at 17 Birch Lane, SW1A 1AA; she is 94. " +
    "Mr Haddad's wife Maria visited on 3 March 2024 from http://example.org/x and 192.168.0.1. Thanks, Anna\n";
  const syllables = ["ka", "lo", "mi", "ra", "ten", "vor", "shi", "bel", "dan", "qui"];
  const name = (i: number) => {
    const w = syllables[i % 10] + syllables[(i * 7 + 3) % 10] + syllables[(i * 3 + 1) % 10];
    return w[0].toUpperCase() + w.slice(1);
  };
  let dense = "";
  for (let i = 0; dense.length < 8000; i++) {
    dense +=
      `Mr ${name(i)} ${name(i + 1)} (DOB ${1 + (i % 28)}/0${1 + (i % 9)}/19${10 + (i % 90)}, phone 07700 ` +
      `${100000 + i * 7919 % 900000}) was seen by Dr ${name(i + 2)} with his wife ${name(i + 3)}; `;
  }
  redactPhi(sample.repeat(12));
  redactPhi(dense);
  // The word list that says whether a name is found again in lower case is read once, here.
  isEnglishWord("haddad");
}

/**
 * Redacts texts of one conversation, oldest first, with one redactor; a text redacted before a name was learned
 * from a later one ("haddad has new AF", then "Mr Haddad is 80") is redacted again, so no earlier text keeps it.
 */
export function redactTexts(texts: readonly string[]): RedactedText[] {
  const redactor = createRedactor();
  const out: RedactedText[] = [];
  const learnedAt: number[] = [];
  texts.forEach((text, i) => {
    out[i] = redactor.redact(text);
    learnedAt[i] = redactor.learnedNames.length;
  });
  // Redacting again can learn more (a name with a cue in a text redacted again): until a round learns nothing,
  // which ends, as each round that goes on needs a word the one before learned.
  for (;;) {
    const again = texts.flatMap((text, i) => redactor.holdsNameLearnedAfter(text, learnedAt[i]) ? [i] : []);
    if (again.length === 0) break;
    for (const i of again) {
      out[i] = redactor.redact(texts[i]);
      learnedAt[i] = redactor.learnedNames.length;
    }
  }
  return out;
}

/** Up to this many name words learned since a text was redacted, they are looked for by substring first. */
const FEW_NEW_NAMES = 32;

/**
 * Redacts again, in slices that let other requests through, the texts that hold a name word learned after they
 * were redacted (`learnedAt[i]`: how many words the redactor knew then, kept up to date here), until a round
 * learns nothing: `redo(i)` redacts text i with the same redactor and keeps the result.
 */
export async function redactAgainWhereLearned(
  redactor: PhiRedactor,
  texts: readonly string[],
  learnedAt: number[],
  redo: (index: number) => void,
): Promise<void> {
  for (;;) {
    const again: number[] = [];
    await inSlices(texts.length, (i) => {
      if (redactor.holdsNameLearnedAfter(texts[i], learnedAt[i])) again.push(i);
    }, { yieldFirst: false });
    if (again.length === 0) return;
    await inSlices(again.length, (j) => {
      redo(again[j]);
      learnedAt[again[j]] = redactor.learnedNames.length;
    });
  }
}

/** Redacts one text with fresh numbering. */
export function redactPhi(text: string): RedactedText {
  return createRedactor().redact(text);
}

const LABELS: Record<PhiType, [string, string]> = {
  NAME: ["name", "names"],
  DATE: ["date", "dates"],
  PHONE: ["phone number", "phone numbers"],
  FAX: ["fax number", "fax numbers"],
  EMAIL: ["email address", "email addresses"],
  SSN: ["Social Security number", "Social Security numbers"],
  MRN: ["medical record number", "medical record numbers"],
  ACCOUNT: ["account number", "account numbers"],
  ADDRESS: ["street address", "street addresses"],
  ZIP: ["ZIP code or postcode", "ZIP codes or postcodes"],
  URL: ["web address", "web addresses"],
  IP: ["IP address", "IP addresses"],
  AGE: ["age over 89", "ages over 89"],
};

/** A short human summary of redactions for the UI, e.g. "2 dates, 1 name, 1 phone number" (no original values). */
export function describeRedactions(redactions: readonly Pick<Redaction, "type">[]): string {
  if (!redactions.length) return "nothing redacted";
  const counts = new Map<PhiType, number>();
  for (const r of redactions) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
  return [...counts]
    .sort(([a, x], [b, y]) => y - x || PHI_TYPES.indexOf(a) - PHI_TYPES.indexOf(b))
    .map(([type, n]) => `${n} ${LABELS[type][n === 1 ? 0 : 1]}`)
    .join(", ");
}
