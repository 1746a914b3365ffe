/**
 * Writes data/eval/phi_variants.jsonl: hypothetical identifiers (written for this project, no real person) in the
 * forms copy-paste and other keyboards produce — full-width characters, other-script digits, zero-width and
 * soft-hyphen characters inside identifiers, non-breaking spaces, dash variants, lower case, spelled-out e-mails —
 * plus texts without identifiers in the same forms, so that precision is measured on them too.
 *
 * `deno run --allow-write tasks/phi_variants.ts` regenerates the file; the file is what `deno task eval phi` reads.
 */

type Span = { type: string; text: string };
type Example = { text: string; spans: Span[] };

/** Full-width forms of ASCII letters, digits and symbols (U+FF01–FF5E), and the ideographic space. */
export const fullWidth = (s: string) =>
  s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).replace(/ /g, "\u3000");

const DIGIT_ZEROS = {
  arabic: 0x660,
  persian: 0x6f0,
  devanagari: 0x966,
  bengali: 0x9e6,
  thai: 0xe50,
  fullwidth: 0xff10,
} as const;

/** The digits of `s` in another script. */
export const digitsIn = (script: keyof typeof DIGIT_ZEROS, s: string) =>
  s.replace(/[0-9]/g, (d) => String.fromCodePoint(DIGIT_ZEROS[script] + Number(d)));

/** `mark` between every second character (zero-width space, soft hyphen, word joiner…). */
export const interleave = (s: string, mark: string) =>
  [...s].map((c, i) => (i > 0 && i % 2 === 0 && /\S/.test(c) ? mark + c : c)).join("");

const spaces = (s: string, space: string) => s.replace(/ /g, space);
const dashes = (s: string, dash: string) => s.replace(/-/g, dash);

const NBSP = "\u00a0", NNBSP = "\u202f", FIGURE = "\u2007";
const ZWSP = "\u200b", SHY = "\u00ad", WJ = "\u2060", ZWNJ = "\u200c", BOM = "\ufeff";
const EN = "\u2013", NBHY = "\u2011", MINUS = "\u2212", HY = "\u2010", FWHY = "\uff0d";

/** A template with {slots}; each slot is [type, value]. */
function ex(template: string, slots: Record<string, [string, string]>): Example {
  const spans: Span[] = [];
  const text = template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const [type, value] = slots[key];
    spans.push({ type, text: value });
    return value;
  });
  return { text, spans };
}
const none = (text: string): Example => ({ text, spans: [] });

const examples: Example[] = [];
const add = (...e: Example[]) => examples.push(...e);

// ---------------------------------------------------------------- phones
const phones: [string, string][] = [
  ["Please call her daughter on {p} after 5pm.", "07700 900123"],
  ["Mobile: {p}", "07700 900456"],
  ["Best number to reach him is {p}.", "(555) 201-4477"],
  ["Phone {p} if the rash spreads.", "+44 20 7946 0958"],
  ["Contact the carer on {p}.", "555-310-8842"],
];
for (const [t, p] of phones) {
  add(ex(t, { p: ["PHONE", fullWidth(p).replace(/\u3000/g, " ")] }));
  add(ex(t, { p: ["PHONE", digitsIn("arabic", p)] }));
  add(ex(t, { p: ["PHONE", spaces(p, NBSP)] }));
  add(ex(t, { p: ["PHONE", interleave(p, ZWSP)] }));
  add(ex(t, { p: ["PHONE", dashes(spaces(p, NNBSP), NBHY)] }));
}
add(ex("Tel: {p}", { p: ["PHONE", digitsIn("devanagari", "020 7946 0321")] }));
add(ex("ring me on {p} please", { p: ["PHONE", digitsIn("persian", "07700 900777")] }));
add(ex("Her mobile is {p}.", { p: ["PHONE", interleave("07700900888", SHY)] }));
add(ex("call {p}", { p: ["PHONE", spaces("0161 496 0011", FIGURE)] }));
add(ex("Fax results to {p}.", { p: ["FAX", dashes("555-201-9000", MINUS)] }));

// ---------------------------------------------------------------- e-mails
const emails = ["anna.kowalski@example.com", "t.whitfield@example.org", "kmensah77@example.net"];
for (const e of emails) {
  add(ex("Email me at {e} with the letter.", { e: ["EMAIL", fullWidth(e)] }));
  add(ex("Her email is {e}.", { e: ["EMAIL", e.replace("@", "\uff20")] }));
  add(ex("Send it to {e} please.", { e: ["EMAIL", interleave(e, ZWSP)] }));
  add(ex("You can write to {e}", { e: ["EMAIL", e.replace("@", " at ").replace(/\.(?=[a-z]+$)/, " dot ")] }));
  add(ex("contact: {e}", { e: ["EMAIL", e.replace("@", " [at] ").replaceAll(".", " [dot] ")] }));
  add(ex("reply to {e} thanks", { e: ["EMAIL", e.replace("@", "(at)").replace(/\.(?=[a-z]+$)/, "(dot)")] }));
}

// ---------------------------------------------------------------- SSNs
for (const ssn of ["900-41-7732", "666-12-4409", "078-05-1120"]) {
  add(ex("His SSN is {s} for the disability form.", { s: ["SSN", dashes(ssn, NBHY)] }));
  add(ex("SSN: {s}", { s: ["SSN", dashes(ssn, EN)] }));
  add(ex("Social security number {s}.", { s: ["SSN", fullWidth(ssn)] }));
  add(ex("ssn {s}", { s: ["SSN", digitsIn("arabic", ssn)] }));
  add(ex("SSN {s}", { s: ["SSN", interleave(ssn, WJ)] }));
}

// ---------------------------------------------------------------- record numbers
for (const mrn of ["55120987", "70031245", "88412006"]) {
  add(ex("MRN {m}, admitted with pneumonia.", { m: ["MRN", fullWidth(mrn)] }));
  add(ex("mrn: {m}", { m: ["MRN", digitsIn("bengali", mrn)] }));
  add(ex("Hospital number {m} on the wristband.", { m: ["MRN", interleave(mrn, ZWNJ)] }));
  add(ex("Medical record number {m}", { m: ["MRN", digitsIn("thai", mrn)] }));
}
add(ex("NHS number {m}; lives alone.", { m: ["MRN", spaces("943 476 5919", NBSP)] }));
add(ex("NHS no: {m}", { m: ["MRN", spaces(digitsIn("arabic", "485 777 3456"), NNBSP)] }));
add(ex("Policy number {a} covers the scan.", { a: ["ACCOUNT", fullWidth("PX44120983")] }));
add(ex("member id {a}", { a: ["ACCOUNT", interleave("77120934", SHY)] }));

// ---------------------------------------------------------------- dates
const dates = ["04/11/1952", "12-03-1961", "1987-06-30"];
for (const d of dates) {
  add(ex("DOB {d}, seen for review.", { d: ["DATE", fullWidth(d)] }));
  add(ex("Born {d} in the district hospital.", { d: ["DATE", digitsIn("arabic", d)] }));
  add(ex("date of birth {d}", { d: ["DATE", dashes(d, EN)] }));
  add(ex("dob: {d}", { d: ["DATE", dashes(d, NBHY)] }));
  add(ex("Admitted on {d} with chest pain.", { d: ["DATE", interleave(d, ZWSP)] }));
}
add(ex("Seen on {d} for follow-up.", { d: ["DATE", spaces("3 March 2024", NBSP)] }));
add(ex("Surgery was on {d}.", { d: ["DATE", spaces("14 February 2023", NNBSP)] }));
add(ex("Discharged {d} to home.", { d: ["DATE", digitsIn("devanagari", "21/09/2024")] }));
add(ex("Last seen {d}.", { d: ["DATE", dashes("2024-01-15", MINUS)] }));
add(ex("born {d}", { d: ["DATE", dashes("01-02-1950", HY)] }));
add(ex("Date of birth: {d}", { d: ["DATE", dashes("1949-12-24", FWHY)] }));

// ---------------------------------------------------------------- names
add(ex("my name is {n} and I have had a cough for 3 weeks.", { n: ["NAME", "tomasz wisniewski"] }));
add(ex("hi, my name is {n}, my son has a fever", { n: ["NAME", "grace okafor"] }));
add(ex("mr {n} was seen in clinic today.", { n: ["NAME", "haddad"] }));
add(ex("dr {n} said to rest for a week.", { n: ["NAME", "lindqvist"] }));
add(ex("Referred by dr. {n} for an echo.", { n: ["NAME", "priya raman"] }));
add(ex("mrs {n} is 82 and lives alone.", { n: ["NAME", "o'brien"] }));
add(ex("dear {n}, thank you for the referral.", { n: ["NAME", "moreau"] }));
add(ex("name: {n}", { n: ["NAME", "kwame mensah"] }));
add(ex("My name is {n} and my chest hurts.", { n: ["NAME", fullWidth("Anna Kowalski")] }));
add(ex("Dr {n} reviewed the ECG.", { n: ["NAME", interleave("Priya Raman", ZWSP)] }));
add(ex("Mrs {n} was admitted overnight.", { n: ["NAME", interleave("Beatrice Llewellyn", SHY)] }));
add(ex("Mr{s}{n} attended with his wife.", { s: ["X", NBSP], n: ["NAME", "Kofi Mensah"] }));
add(ex("Patient {n} reports dizziness.", { n: ["NAME", spaces("Elena Petrova", NBSP)] }));
add(ex("Seen by Dr {n} in the emergency department.", { n: ["NAME", interleave("Nakamura", BOM)] }));
add(ex("My name is {n}; I have a rash.", { n: ["NAME", interleave("Farah Haddad", WJ)] }));
add(ex("named {n}", { n: ["NAME", "jonas varga"] }));
// Accents typed as a letter and a combining mark (NFD), as some keyboards and pasted text give them.
add(ex("Dr {n} reviewed the scan.", { n: ["NAME", "Jose\u0301 Garci\u0301a"] }));
add(ex("My name is {n} and I have a headache.", { n: ["NAME", "Mari\u0301a Nu\u0303n\u0303ez"] }));
add(ex("Patient {n} is waiting.", { n: ["NAME", "Zoe\u0308 Mu\u0308ller"] }));

// ---------------------------------------------------------------- addresses and postcodes
add(ex("Lives at {a} with her husband.", { a: ["ADDRESS", spaces("17 Birch Lane", NBSP)] }));
add(ex("Address: {a}", { a: ["ADDRESS", fullWidth("42 Elm Street").replace(/\u3000/g, " ")] }));
add(ex("lives at {a} alone", { a: ["ADDRESS", "23 station road"] }));
add(ex("He lives at {a}.", { a: ["ADDRESS", digitsIn("arabic", "8 Mill Road")] }));
add(ex("ZIP {z}", { z: ["ZIP", fullWidth("30314")] }));
add(ex("Postcode {z}", { z: ["ZIP", spaces("SW1A 1AA", NBSP)] }));
add(ex("post code {z}", { z: ["ZIP", "m1 1ae"] }));
add(ex("zip code {z}", { z: ["ZIP", digitsIn("arabic", "94110")] }));

// ---------------------------------------------------------------- ages over 89
add(ex("She is {a} and frail.", { a: ["AGE", fullWidth("94")] }));
add(ex("aged {a}, lives in a care home", { a: ["AGE", digitsIn("arabic", "91")] }));

// ---------------------------------------------------------------- no identifiers, same forms
add(
  none(
    `Paracetamol ${fullWidth("500")} mg four times a day, maximum ${fullWidth("4")} g in ${
      fullWidth("24")
    } hours.`,
  ),
  none(
    `BP ${digitsIn("arabic", "150/95")}, HR ${digitsIn("arabic", "88")}, SpO2 ${digitsIn("arabic", "97")}%.`,
  ),
  none(`Potassium${NBSP}4.1${NBSP}mmol/L, sodium${NBSP}139${NBSP}mmol/L, creatinine${NBSP}88${NBSP}µmol/L.`),
  none(`Troponin rose from 14${EN}52 ng/L over 3${NBSP}hours.`),
  none(`Give amoxicillin 5${EN}7 days; review in 48${EN}72 hours.`),
  none(`Hb 112 g/L\u2009·\u2009WCC 11.2\u2009·\u2009CRP 48`),
  none(`the patient has had chest pain since tuesday and feels short of breath.`),
  none(`my mum has diabetes and her sugar is 14 this morning, what should we do?`),
  none(`dr said to keep taking the tablets and come back in 2 weeks.`),
  none(`he is at home now and is eating and drinking.`),
  none(`my daughter has a fever of 39 and a rash on her arms.`),
  none(`ms relapse treatment: methylprednisolone 500 mg for 5 days.`),
  none(`Naproxen${ZWSP} 250${SHY}mg twice daily with food.`),
  none(`Take 1${NBHY}2 tablets at night; do not exceed 8 in 24 hours.`),
  none(`Is a heart rate of ${digitsIn("devanagari", "110")} normal after exercise?`),
  none(`ECG: QTc ${fullWidth("440")} ms, PR ${fullWidth("160")} ms.`),
  none(`Dose is 0.5${EN}1 mg/kg, rounded to the nearest 10 mg.`),
  none(`${fullWidth("Type 2 diabetes")}, HbA1c 58 mmol/mol.`),
  none(`we were at the clinic at 10.30 and the doctor was called away.`),
  none(`Walk 30 minutes a day in the park; drive only when safe.`),
);

const lines = examples.map((e) =>
  JSON.stringify({ text: e.text, spans: e.spans.filter((s) => s.type !== "X") })
);
const path = new URL("../data/eval/phi_variants.jsonl", import.meta.url).pathname;
if (import.meta.main) {
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  console.log(`${lines.length} examples written to ${path}`);
}
