/**
 * Token estimates measured against Llama-2's tokenizer (llama-tokenizer-js, the vocabulary of the model Rounds
 * serves first) on every text the project ships and on messy clinician messages: the old estimate (3 UTF-8 bytes
 * per token) beside `estimateTokens`, the one Rounds falls back on when neither the server nor a local tokenizer
 * can count. An undercount overflows the model's context, so the figure that matters most is how many texts each
 * undercounts; the ratios say how much context an estimate wastes. `deno task eval tokens` prints
 * `formatTokenReport(await evaluateTokens())`; tests/tokenizer_test.ts holds the estimate to no undercounts.
 */
import llamaTokenizer from "llama-tokenizer-js";
import { estimateTokens } from "../inference/tokenizer.ts";
import { corpusSnippets, SAMPLE_CORPUS } from "../knowledge/ingest.ts";

/**
 * Messages as clinicians write and paste them, written for this evaluation (hypothetical, no real patients): lab
 * tables with tabs and aligned columns, vitals with subscripts and units, Unicode digits, non-breaking and thin
 * spaces, dashes, other languages and scripts, emoji, URLs, identifiers, shorthand, typos and pasted markup.
 */
export const MESSY_MESSAGES: readonly string[] = [
  // Pasted lab tables: tabs, aligned columns, reference ranges, flags.
  "Pt 67F, CKD3. Labs (pasted):\nDate\tCr\teGFR\tK\n01/03\t142\u00a0µmol/L\t38\t5.4\n15/03\t168\u00a0µmol/L\t31\t５.９",
  "Hb    98 g/L   (115-165)  L\nWCC   14.2     (4.0-11.0)  H\nPlt   451      (150-400)   H\nCRP   187 mg/L (<5)        H\n",
  "Test\tResult\tUnits\tRef range\tFlag\r\nNa\t131\tmmol/L\t133-146\tL\r\nK\t5.9\tmmol/L\t3.5-5.3\tH\r\n" +
  "Urea\t14.2\tmmol/L\t2.5-7.8\tH\r\nCreat\t168\tumol/L\t59-104\tH\r\nCRP\t<1\tmg/L\t0-5\t\r\n",
  "| Analyte | 08:00 | 14:00 | 20:00 |\n|---|---|---|---|\n| Lactate | 4.1 | 3.2 | 2.0 |\n| pH | 7.21 | 7.28 | 7.34 |" +
  "\n| pCO₂ (kPa) | 6.9 | 6.1 | 5.6 |\n| HCO₃⁻ | 16 | 18 | 21 |",
  "ABG on 15L NRB: pH 7.31 | pO2 8.2 kPa | pCO2 6.8 kPa | HCO3 24 | BE -2.1 | lac 3.4 | Hb 121 | K+ 4.9",
  "FBC 12/03/2024 09:41  Hb 102 ↓  MCV 71 ↓  Ferritin 8 ↓  B12 245  Folate 3.1 ↓  Retic 1.2%",
  "Na+ 131, K+ 5.9, Cl- 98, HCO3- 18, urea 14.2, creat 168 (baseline 110), eGFR 31→24 mL/min/1.73m²",
  "INR 3.8 (target 2–3) on warfarin 5 mg/4 mg alt. days; APTT 38 s; fibrinogen 1.9 g/L; D-dimer >5000 ng/mL FEU",
  "Troponin T: 14 → 58 → 212 ng/L (0 h / 3 h / 6 h), CK-MB 31 U/L, BNP 1,840 pg/mL",
  "TSH 0.01 mU/L, fT4 48 pmol/L, fT3 14.2 pmol/L, TRAb +ve; HbA1c 58 mmol/mol (7.5 %)",
  // Vitals, units, symbols.
  "BP 142/91, HR 104, SpO₂ 93 %, T 38.4 °C, RR 24",
  "Obs: BP 88/52 ↓↓, HR 128 irreg, SpO2 89% on RA → 94% on 2L NP, T 39.1°C, RR 30, GCS 14 (E4V4M6), BM 2.9, NEWS2 = 9",
  "Wt 81 kg, Ht 175 cm, BMI 26.4 kg/m², waist 98 cm; urine output 0.3 mL/kg/h ×6 h",
  "Noradrenaline 0.12 µg/kg/min, propofol 200 mg/h, fentanyl 50 µg/h; FiO₂ 0.45, PEEP 8 cmH₂O, Vt 6 mL/kg IBW",
  "ECG: AF 130 bpm, QTc 480 ms, PR —, QRS 90 ms, ST ↑ 2 mm in II, III, aVF; ST ↓ V1–V3",
  "Temp ≥ 38.5 → blood cultures ×2; if lactate ≥ 2 give 30 mL/kg; MAP ≥ 65 mmHg; K⁺ ≤ 5.5; ±10 % tolerance",
  "Dose: 15 mg/kg q8h IV (max 1 g), i.e. 1.2 g → round to 1 g; Cl_cr ≈ 42 mL/min; t½ 6–8 h",
  "β-blocker held; α1-antitrypsin 0.8 g/L; γ-GT 412 IU/L; Δ creat +46 µmol/L in 48 h",
  // Unicode digits and spaces.
  "１２３４５６７８９０ ٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ ۰۱۲۳۴۵۶۷۸۹",
  "الحرارة ٣٧٫٥ والنبض ١٠٤ والضغط ١٤٢/٩١",
  "Temp\u00a037.9\u00a0°C,\u00a0HR\u202f96,\u2009RR\u200918 — NBSPs and thin spaces from a PDF",
  "Paste from EHR:\u200b\u200bAllergies:\u00adpenicillin (rash), co\u2011trimoxazole (SJS)\ufeff",
  "Admitted 2024\u201103\u201114 at 03:12; seen 14–15/03; discharge planned 18 Mar – 20 Mar",
  // Other languages and scripts.
  "Paciente de 72 años con disnea súbita, taquicardia y SatO2 88 %. ¿TEP? Dímero D elevado, ¿anticoagulo ya?",
  "Paciente com dor torácica há 3 horas, sudorese e náuseas. ECG com supra de ST em DII, DIII e aVF.",
  "Patiente de 54 ans, douleur thoracique rétrosternale, irradiation bras gauche, troponine élevée à 3 h.",
  "Patientin, 81 J., Sturz zu Hause, Hüftschmerzen rechts, Bein verkürzt und außenrotiert. Röntgen ausstehend.",
  "患者男性，65岁，胸痛3小时，伴大汗。心电图示ST段抬高。请问下一步处理？",
  "患者は75歳女性、発熱と咳嗽が3日間続いています。SpO2は91％です。",
  "환자는 68세 남성으로 흉통과 호흡곤란을 호소합니다. 혈압 150/95.",
  "مريض عمره ٦٥ عامًا يعاني من ألم في الصدر منذ ٣ ساعات، مع تعرق وغثيان",
  "रोगी को तीन दिन से बुखार और खांसी है। क्या एंटीबायोटिक देना चाहिए?",
  "Пациент 58 лет, боль в груди 2 часа, АД 160/100, ЧСС 110.",
  "Bệnh nhân nữ 45 tuổi, sốt cao 39 độ, đau đầu dữ dội, cứng gáy.",
  "Hasta 70 yaşında, göğüs ağrısı ve nefes darlığı şikâyetiyle başvurdu.",
  "Pacjent lat 63, duszność wysiłkowa, obrzęki podudzi, ciśnienie 150/90.",
  "Ο ασθενής έχει πυρετό 38,9 °C και βήχα εδώ και τρεις ημέρες.",
  "המטופל בן 70, כאבים בחזה וקוצר נשימה מזה יומיים.",
  "ผู้ป่วยชายอายุ 60 ปี มีอาการเจ็บหน้าอก",
  // Emoji, URLs, identifiers.
  "Patient says 🤕😷 and feels 💔 — see https://example.org/guidelines/2024/chest-pain?ref=abc123&x=y",
  "Mum sent: 👶🏽 not feeding since 6am 😢😢 temp 38.9 🌡️ 🤒 should I bring her in?? 🙏🏼🙏🏼 👨‍👩‍👧 🇬🇧",
  "Guideline: https://www.example.org/guidance/ng185/chapter/Recommendations#acute-coronary-syndromes-" +
  "early-management?utm_source=ehr&utm_medium=paste&session=9f3a1c2e-77b4-4d1e-a0c3-5b2f8e9d1a64&page=12",
  "doi:10.1016/S0140-6736(23)01234-5 and PMID 37512345; see also https://doi.org/10.1056/NEJMoa2034577",
  "ID: dGhpcyBpcyBhIGJhc2U2NCBzdHJpbmcgb2YgZGF0YQ== / MRN 000123456 / NHS 943 476 5919 / 2024\u201103\u201114",
  "Specimen 24-MB-0098123-A; accession 7f9c2a1e5b3d4f6a8c0e2b4d6f8a0c2e; order#A1B2C3D4E5; lot X7Q-99Z",
  "token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpM",
  "aB3$".repeat(50),
  "QWERTYUIOPASDFGHJKL ZXCVBNM",
  // Shorthand, capitals, typos.
  "PT FOUND ON FLOOR, ?LOC, GCS 13 (E3V4M6), ?NOF #, L LEG SHORT + EXT ROT. NKDA. DNACPR IN PLACE. FAMILY AWARE.",
  "74M, SOB, CP, N&V, ?ACS vs ?PE, hx T2DM, HTN, AF on DOAC, CKD4, COPD (FEV1 45%), ex-smoker 40 pk-yr",
  "pateint c/o abdo pian since yestreday, vommitting x3, diarhoea, feverish, not passed urine since mornign",
  "Metformin 500mg bd, gliclazide 80 mg od, HbA1c 58 mmol/mol.",
  "amlodipine, ramipril, bisoprolol, atorvastatin, apixaban, metformin, empagliflozin, omeprazole, " +
  "levothyroxine, sertraline, pregabalin, tamsulosin, finasteride, alendronate, colecalciferol",
  "Hx: hypercholesterolaemia, hepatosplenomegaly, lymphadenopathy, thrombocytopenia, glomerulonephritis, " +
  "cholangiocarcinoma, pseudohypoparathyroidism",
  "Rx: co-amoxiclav 1.2g IV tds + clarithro 500mg IV bd → switch PO @ 48h if afebrile; VTE ppx: enox 40mg SC od",
  "!!! URGENT !!! pt deteriorating??? pls review ASAP..... thx ---- ===== ***** ///// ~~~~~",
  // Pasted markup and structured text.
  '{"patient":{"age":67,"sex":"F"},"obs":{"hr":104,"bp":"142/91","spo2":0.93},"flags":["sepsis?","AKI"]}',
  "```\nICD-10: I21.4, N17.9, E87.5\nSNOMED: 22298006 |Myocardial infarction|\n```",
  "- Plan:\n  1. IV fluids 500 mL stat\n  2. Repeat VBG @ 1h\n  3. Cultures ×2 before abx\n    a) if MAP < 65 → ICU",
  "<b>Discharge summary</b><br/>Dx: NSTEMI&nbsp;(Killip I)<br/>Meds: aspirin 75&nbsp;mg &amp; ticagrelor 90&nbsp;mg bd",
  "Tel 07700 900123 / +44 20 7946 0958; DOB 04/11/1952; seen 2024-03-14T08:30:00Z; next appt 21/03 @ 14:45",
  "          indented line with many leading spaces and\ttabs\t\tand trailing spaces          ",
  "\n\n\n\nText after blank lines\n\n\n\n",
  // Written after the estimate was tuned on the rest, to see whether it had been fitted to them: only the
  // vowel-less non-words were undercounted (0.97×), and the estimate now counts those like codes.
  "Hx: sarcoidosis, bronchiectasis, myasthenia gravis, pheochromocytoma, hyperparathyroidism, spondylolisthesis",
  "Meds: rivaroxaban, dapagliflozin, sacubitril/valsartan, spironolactone, ivabradine, eplerenone, digoxin",
  "Differentials: Guillain-Barré, Wernicke's, Takotsubo, Kawasaki, Henoch-Schönlein purpura, Stevens-Johnson",
  "Pt Mr Oluwaseun Adebayo-Okonkwo, DOB 1949-07-22, NHS 485 777 3456, GP Dr Siobhán Ní Bhriain",
  "sats 91 on air, RR 28, HR 118 SR, BP 96/60, T 38.9, CRT 4s, GCS 15, BM 11.2, lact 4.4, UO 15ml/hr",
  "K 6.8!! ECG peaked T waves, widened QRS 140ms. Given Ca gluconate 10% 30ml, insulin/dex 10u/50ml 50%, " +
  "salbutamol 10mg neb",
  "Chinese: 患者女性，80岁，跌倒后左髋疼痛，无法行走。X线：股骨颈骨折。Japanese: 血圧は180/100です。",
  "SGVsbG8gV29ybGQhIFRoaXMgaXMgYSB0ZXN0IG9mIGJhc2U2NA== c2Vjb25kIGJsb2Nr 3q2+7w==",
  "a9f3c2e1-0b7d-4e6a-9c8f-1d2e3f4a5b6c 5f4dcc3b5aa765d61d8327deb882cf99 0xDEADBEEF",
  "qwxz pfft brrr zzzz mmmhm hmmm ughhh argh grr shhh psst tsk",
  "Xylometazoline, Zuclopenthixol, Quetiapine, Pyridostigmine, Ximelagatran, Bupivacaine",
  "Der Patient klagt über Rückenschmerzen seit drei Wochen, ausstrahlend ins linke Bein. Lasègue positiv.",
  "Le patient présente une dyspnée d'effort, des œdèmes des membres inférieurs et une orthopnée.",
  "El paciente refiere cefalea holocraneana pulsátil, fotofobia, náuseas y vómitos en escopetazo.",
  "I'd've thought y'all'd've known, ain't it? O'Brien's co-op re-examination—pre-op/post-op.",
  "👩🏽‍⚕️👨🏿‍⚕️🧑‍🦽🫀🫁🦠💊💉🩺🩸🩹🦴🦷🧠",
  "ÀÉÎÕÜ àéîõü ñÑ çÇ ßẞ æÆ øØ åÅ œŒ ł Ł ő ű ț ș ğ ı İ",
];

/** Every text the project ships: the sample corpus as parsed (titles, questions, answers), eval sets, cases. */
export async function projectTexts(): Promise<{ set: "corpus" | "eval" | "cases"; text: string }[]> {
  const found: { set: "corpus" | "eval" | "cases"; text: string }[] = [];
  const add = (set: "corpus" | "eval" | "cases", text: string | null) => {
    if (text && text.trim()) found.push({ set, text });
  };
  for await (const s of corpusSnippets(SAMPLE_CORPUS.pathname)) {
    for (const text of [s.title, s.question, s.answer, s.text]) add("corpus", text);
  }
  // Every string in a case or a labelled example: labels and spans are short texts worth counting too.
  const walk = (set: "eval" | "cases", value: unknown) => {
    if (typeof value === "string") add(set, value);
    else if (Array.isArray(value)) { for (const item of value) walk(set, item); }
    else if (value && typeof value === "object") { for (const item of Object.values(value)) walk(set, item); }
  };
  const data = new URL("../data/", import.meta.url);
  for (const name of await fileNames(new URL("eval/", data), ".jsonl")) {
    const lines = (await Deno.readTextFile(new URL(`eval/${name}`, data))).split("\n");
    for (const line of lines) if (line.trim()) walk("eval", JSON.parse(line));
  }
  for (const name of await fileNames(new URL("cases/", data), ".json")) {
    walk("cases", JSON.parse(await Deno.readTextFile(new URL(`cases/${name}`, data))));
  }
  // The same text in several places (a question inside its snippet's text aside) is counted once.
  const seen = new Set<string>();
  return found.filter((t) => !seen.has(t.text) && !!seen.add(t.text));
}

async function fileNames(dir: URL, suffix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(suffix)) names.push(entry.name);
  }
  return names.sort();
}

/**
 * Llama-2's tokens in a text with no BOS: the larger of the count with SentencePiece's leading space (what
 * llama.cpp and Hugging Face's tokenizer do) and without it, so an estimate held to it is safe either way.
 */
export function llama2Tokens(text: string): number {
  return Math.max(
    llamaTokenizer.encode(text, false, true).length,
    llamaTokenizer.encode(text, false, false).length,
  );
}

/** The estimate Rounds used before: 3 UTF-8 bytes per token. */
export function threeBytesEstimate(text: string): number {
  return Math.ceil(new TextEncoder().encode(text).length / 3);
}

/** How one estimate compares with the real count over one set of texts. */
export interface EstimateFigures {
  estimate: string;
  set: string;
  texts: number;
  undercounted: number;
  /** Estimate ÷ real count, per text. */
  min: number;
  median: number;
  p95: number;
  max: number;
  /** Sum of estimates ÷ sum of real counts: how much context the estimate takes overall. */
  total: number;
}

/** The old and the new estimate against Llama-2's tokenizer, over every set together and each apart. */
export async function evaluateTokens(): Promise<EstimateFigures[]> {
  const texts: { set: string; text: string }[] = [
    ...await projectTexts(),
    ...MESSY_MESSAGES.map((text) => ({ set: "messy", text })),
  ];
  const real = texts.map((t) => llama2Tokens(t.text));
  const estimates: [string, (text: string) => number][] = [
    ["3 bytes per token (before)", threeBytesEstimate],
    ["estimateTokens (now)", estimateTokens],
  ];
  const sets = ["all", "corpus", "eval", "cases", "messy"];
  const figures: EstimateFigures[] = [];
  for (const [name, estimate] of estimates) {
    const counted = texts.map((t, i) => ({ set: t.set, real: real[i], estimate: estimate(t.text) }));
    for (const set of sets) {
      const picked = counted.filter((c) => set === "all" || c.set === set);
      const ratios = picked.map((c) => c.estimate / Math.max(1, c.real)).sort((a, b) => a - b);
      const at = (q: number) => ratios[Math.min(ratios.length - 1, Math.floor(q * ratios.length))];
      figures.push({
        estimate: name,
        set,
        texts: picked.length,
        undercounted: picked.filter((c) => c.estimate < c.real).length,
        min: ratios[0],
        median: at(0.5),
        p95: at(0.95),
        max: ratios[ratios.length - 1],
        total: picked.reduce((s, c) => s + c.estimate, 0) / picked.reduce((s, c) => s + c.real, 0),
      });
    }
  }
  return figures;
}

/** The figures as a table. */
export function formatTokenReport(figures: EstimateFigures[]): string {
  const lines = [
    "Estimate ÷ Llama-2 tokens (llama-tokenizer-js, no BOS), per text",
    "",
    "| Estimate | Set | Texts | Undercounted | Min | Median | p95 | Max | Σ est ÷ Σ real |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const f of figures) {
    lines.push(
      `| ${f.estimate} | ${f.set} | ${f.texts} | ${f.undercounted} (${
        (100 * f.undercounted / f.texts).toFixed(1)
      }%) | ` +
        `${f.min.toFixed(2)} | ${f.median.toFixed(2)} | ${f.p95.toFixed(2)} | ${f.max.toFixed(2)} | ${
          f.total.toFixed(2)
        } |`,
    );
  }
  return lines.join("\n");
}
