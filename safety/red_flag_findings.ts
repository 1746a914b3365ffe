/**
 * The red-flag findings, as data: what each sign or symptom looks like in a clinician's or patient's words
 * ("crushing chest pain", "lips turning blue", "BP 70/40"). The engine in `red_flags.ts` normalises the text,
 * finds these, drops the ones negated, past or hypothetical, and combines the rest into emergency categories.
 * Add a phrasing here, with a case in tests/red_flags_test.ts and a line in data/eval/red_flags.jsonl.
 */

export type Finding =
  | "chestPain"
  | "cardiacQuality"
  | "radiation"
  | "sob"
  | "sweating"
  | "nausea"
  | "clotSign"
  | "heartAttack"
  | "dissection"
  | "ecgChange"
  | "dizzy"
  | "pale"
  | "faceDroop"
  | "limbWeak"
  | "oneSide"
  | "speech"
  | "visionLoss"
  | "doubleVision"
  | "confusion"
  | "strokeWord"
  | "sudden"
  | "unsteady"
  | "heavyBleed"
  | "vomitBlood"
  | "coughBlood"
  | "minorAmount"
  | "melena"
  | "bleedAny"
  | "anticoagulant"
  | "airwaySwell"
  | "throatSwell"
  | "faceSwell"
  | "anaphylaxisWord"
  | "epipenUsed"
  | "hives"
  | "allergen"
  | "wheeze"
  | "swallowTrouble"
  | "suicidal"
  | "infantYoung"
  | "baby"
  | "fever"
  | "hypothermia"
  | "notFeeding"
  | "floppy"
  | "lethargic"
  | "mottled"
  | "nonBlanch"
  | "grunting"
  | "fontanelle"
  | "abnormalCry"
  | "noWetNappy"
  | "child"
  | "stiffNeck"
  | "photophobia"
  | "meningitisWord"
  | "headache"
  | "vomit"
  | "vomitPersistent"
  | "drowsy"
  | "severeBreathing"
  | "blueLips"
  | "lowSats"
  | "choking"
  | "inhalerFailing"
  | "atRest"
  | "worsening"
  | "severe"
  | "sepsisWord"
  | "infection"
  | "immunosuppressed"
  | "rigors"
  | "hypotension"
  | "tachycardia"
  | "fastBreathing"
  | "noUrine"
  | "veryUnwell"
  | "overdose"
  | "poisoning"
  | "naloxone"
  | "pinpointPupils"
  | "seizure"
  | "seizureLong"
  | "stillSeizing"
  | "firstSeizure"
  | "notWaking"
  | "unresponsive"
  | "notBreathing"
  | "arrest"
  | "lowGcs"
  | "hardToWake"
  | "lowGlucose"
  | "headInjury"
  | "fallFromHeight"
  | "lostConsciousness"
  | "csfLeak"
  | "unequalPupils"
  | "amnesia"
  | "headacheWorsening"
  | "worstHeadache"
  | "eyelidDroop"
  | "pregnant"
  | "postpartum"
  | "preterm"
  | "clots"
  | "padSoaking"
  | "oneSidedPelvicPain"
  | "shoulderTip"
  | "missedPeriod"
  | "ectopicWord"
  | "visualDisturbance"
  | "highBp"
  | "preEclampsiaWord"
  | "reducedMovements"
  | "watersBroken"
  | "cordProlapse"
  | "contractions"
  | "abdominalPain"
  | "rigidAbdomen"
  | "testicularPain"
  | "aneurysm"
  | "biliousVomit"
  | "redcurrant"
  | "obstruction"
  | "distended"
  | "cantWalk"
  | "backPain"
  | "cramps";

export interface FindingPattern {
  finding: Finding;
  pattern: RegExp;
  /** Extra check on a match (a number in range, a word in the sentence); `sentence` is the sentence it is in. */
  accept?: (match: RegExpExecArray, sentence: string) => boolean;
}

/** Alternatives joined into one pattern that must start and end on word edges. */
export function words(...alternatives: string[]): RegExp {
  return new RegExp(`(?<![a-z0-9])(?:${alternatives.join("|")})(?![a-z0-9])`, "g");
}

const POSSESSIVE = "(?:my|his|her|their|the|your|our|a|an|one|both)";
const GAP = "(?:[a-z'/-]+ ){0,3}";
const SEVERE_WORDS =
  "severe|severely|excruciating|explosive|blinding|intense|terrible|agoni[sz]ing|horrendous|unbearable|awful|extreme|worst|10/10|9/10|doubled over|screaming|writhing";
const SUDDEN_WORDS =
  "sudden|suddenly|all of a sudden|abrupt(?:ly)?|out of nowhere|all at once|came on (?:instantly|in seconds|immediately|like a)|instantly|within seconds|in (?:a few )?seconds|acute onset|onset (?:in|within) (?:seconds|a minute|1 minute|one minute)|peak(?:ed)? (?:intensity )?(?:within|in) (?:seconds|a minute|1 minute|one minute)|thunderclap|out of the blue";

const NUMBER_WORDS: Record<string, number> = {
  a: 1,
  an: 1,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  fifteen: 15,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  hundred: 100,
  several: 5,
};
export const NUMBER = `(\\d{1,3}(?:\\.\\d+)?|${Object.keys(NUMBER_WORDS).join("|")})`;

export function numberOf(word: string | undefined): number {
  if (word === undefined) return NaN;
  return NUMBER_WORDS[word] ?? Number(word);
}

/** What each finding looks like in a message (the rules in safety/red_flags.ts combine them into categories). */
export const FINDINGS: FindingPattern[] = [
  // Cardiac
  {
    finding: "chestPain",
    pattern: words(
      "chest (?:pains?|pian|tightness|pressure|heaviness|discomfort|ache|aching|hurts?|hurting|squeezing|is tight|feels (?:tight|heavy|crushed|like))",
      `(?:pain|pains|tightness|pressure|heaviness|discomfort|ache|squeezing|weight|crushing) (?:in|on|across|around|behind) (?:the (?:middle|centre|center) of )?${POSSESSIVE}? ?(?:chest|breastbone|sternum)`,
      "tight chest|heavy chest|crushing chest|central chest|retrosternal (?:pain|pressure|discomfort|tightness)|angina|cardiac (?:sounding )?pain|ischemic (?:sounding )?pain",
      `elephant (?:is )?(?:sitting |standing )?on ${POSSESSIVE} chest|(?:holding|clutching|gripping) (?:his|her|my|their) chest`,
    ),
  },
  {
    finding: "cardiacQuality",
    pattern: words(
      "crushing|squeezing|elephant|vice[- ]like|vise[- ]like|band[- ]like|like a (?:band|vice|vise|weight)|pressure[- ]like|heavy pressure",
    ),
  },
  {
    finding: "radiation",
    pattern: words(
      `(?:radiat\\w*|spread\\w*|going|goes|gone|moving|moves|shoot\\w*|travel\\w*|extend\\w*) ${GAP}(?:to|into|down|up|through|towards) ${POSSESSIVE}? ?(?:left |right |l |r )?(?:arm|arms|jaw|neck|shoulder|shoulders|back)`,
      "(?:left|l) arm (?:pain|ache|heaviness|tingling|numbness|feels (?:heavy|numb|tingly|weak)|is (?:heavy|numb)|went numb)|jaw (?:pain|ache|tightness)",
    ),
  },
  {
    finding: "sob",
    pattern: words(
      "short(?:ness)? of breath|breathless(?:ness)?|out of breath|dyspne(?:a|ic)|gasping|air hunger|winded",
      `(?:can't|unable to|struggling to|hard to|difficult to|trouble|difficulty|difficulties|problems?|struggle) (?:to )?breath(?:e|ing)?`,
      `can't catch ${POSSESSIVE} breath|breathing (?:is )?(?:hard|difficult|labou?red|fast|rapid)|labou?red breathing|tachypne(?:a|ic)`,
    ),
  },
  {
    finding: "sweating",
    pattern: words("sweat(?:ing|y|s|ed)?|diaphore(?:sis|tic)|clamm\\w*|drenched|dripping with sweat"),
  },
  { finding: "nausea", pattern: words("nause\\w*|feel(?:s|ing)? sick|queasy") },
  {
    finding: "clotSign",
    pattern: words(
      "calf (?:was |is |has been )?(?:swollen|swelling|painful|tender|hot)|swollen (?:calf|leg)|dvt|deep vein thrombosis|blood clot|pulmonary embol\\w*|pleuritic",
    ),
  },
  {
    finding: "heartAttack",
    pattern: words(
      "heart attack|myocardial infarction|stemi|nstemi|acute coronary syndrome|coronary event|cardiac event",
    ),
  },
  {
    finding: "dissection",
    pattern: words(
      `(?:tearing|ripping) ${GAP}(?:pain|sensation)|aortic dissection|dissecting aneurysm`,
    ),
  },
  {
    finding: "ecgChange",
    pattern: words("st[- ]elevation|st elevations|troponin (?:is )?(?:raised|positive|elevated|up|rising)"),
  },
  {
    finding: "dizzy",
    pattern: words(
      "dizz\\w*|light[- ]?headed\\w*|faint\\w*|passed out|pass(?:ing)? out|collaps\\w*|woozy|syncop\\w*|about to pass out|nearly fainted|keel(?:ed|ing)? over",
    ),
  },
  {
    finding: "pale",
    pattern: words(
      "pale|pallor|ashen|gr[ae]y (?:skin|face|colou?r)|looks gr[ae]y|gone gr[ae]y|clammy|cold and clammy",
    ),
  },
  // Stroke
  {
    finding: "faceDroop",
    pattern: words(
      `(?:face|facial|mouth|smile|lip|lips|cheek) ${GAP}(?:droop\\w*|sag\\w*|lopsided|uneven|crooked|fallen|dropped|drooped|twisted|asymmetr\\w*|weak\\w*|paraly\\w*|palsy)`,
      `(?:droop\\w*|drooping|sagging|lopsided|crooked|uneven|asymmetric\\w*) (?:face|mouth|smile)`,
      `facial (?:droop|asymmetry|weakness|palsy)|one side of ${POSSESSIVE} face (?:has )?(?:dropped|fallen|droop\\w*|sag\\w*|won't move|isn't moving)`,
    ),
  },
  {
    finding: "limbWeak",
    pattern: words(
      `(?:arm|arms|leg|legs|hand|hands|side|limb|limbs) ${GAP}(?:weak\\w*|numb\\w*|paraly\\w*|dead|limp|floppy|heavy|won't move|not moving|isn't moving|gave way|giving way|went dead|drift\\w*)`,
      `(?:weakness|numbness|paralysis|heaviness|loss of (?:power|sensation|feeling)) ${GAP}(?:in|on|of|down|affecting) ${POSSESSIVE}? ?(?:left |right |whole |entire )?(?:arm|arms|leg|legs|side|hand|body|limbs?)`,
      "hemipar\\w*|hemipleg\\w*|arm drift|pronator drift|dragging (?:his|her|my|their) (?:left |right )?(?:leg|foot)|(?:left|right)[- ]sided (?:weakness|numbness)",
      `(?:can't|unable to|couldn't) (?:lift|raise|move|feel|use|grip with) ${POSSESSIVE}? ?(?:left |right )?(?:arm|arms|leg|legs|hand|side)`,
      "keep(?:s)? dropping things",
    ),
  },
  {
    finding: "oneSide",
    pattern: words(
      "one side|one[- ]sided|left side|right side|left[- ]sided|right[- ]sided|(?:left|right) (?:arm|leg|hand|face|foot)|one arm|one leg|hemi\\w*|unilateral|half (?:of )?(?:my|his|her|their|the) (?:body|face)",
    ),
  },
  {
    finding: "speech",
    pattern: words(
      "slurr\\w*|dysarthri\\w*|aphasi\\w*|word salad|garbled|gibberish",
      `(?:speech|talking|words|voice) ${GAP}(?:slurred|garbled|jumbled|muddled|strange|weird|funny|odd|confused|not making sense|thick)`,
      `(?:can't|unable to|couldn't|struggling to|trouble|difficulty) (?:get|find|getting|finding|speak|speaking|talk|talking|say|saying) ?(?:${POSSESSIVE} )?(?:words?|properly|clearly)(?: out)?`,
      "(?:can't|couldn't|unable to) speak(?! in (?:full |whole |complete )?sentences)|stopped making sense|not making (?:any )?sense|making no sense",
    ),
  },
  {
    finding: "visionLoss",
    pattern: words(
      `(?:loss of|lost|losing) ${POSSESSIVE}? ?(?:vision|sight)|vision loss|(?:went|gone|going) blind|blind in (?:one|my|his|her|the) ${GAP}eye`,
      `can't see (?:out of|from|with|in) (?:one|my|his|her|the) ${GAP}eye|curtain (?:over|across|coming down|came down)|vision (?:went|has gone|is gone) (?:black|dark)`,
    ),
  },
  { finding: "doubleVision", pattern: words("double vision|diplopia|seeing double") },
  {
    finding: "confusion",
    pattern: words(
      "confus\\w*|disorient\\w*|delirious|delirium|altered mental\\w*|not making sense|doesn't know where (?:she|he|they) (?:is|are)|doesn't recogni[sz]e|muddled|incoheren\\w*|agitated and confused",
    ),
  },
  {
    finding: "strokeWord",
    pattern: words(
      "(?<!heat |sun |back|breast|heart )stroke(?! volume| risk| prevention| unit)|tia|mini[- ]stroke|brain attack|fast (?:test )?positive|cerebrovascular accident",
    ),
  },
  { finding: "sudden", pattern: words(SUDDEN_WORDS) },
  {
    finding: "unsteady",
    pattern: words(
      "can't walk straight|unsteady|off balance|loss of balance|ataxi\\w*|staggering|can't stand up straight",
    ),
  },
  // Bleeding
  {
    finding: "heavyBleed",
    pattern: words(
      `(?:bleeding|blood|bleed|nose ?bleed) ${GAP}(?:won't|will not|doesn't|isn't|hasn't|can't|not) (?:stop|stopping|slow\\w*|stopped)`,
      `(?:won't|can't|couldn't|not) (?:stop|stopping) ${POSSESSIVE}? ?(?:the )?bleed\\w*|(?:can't|couldn't) (?:get|make) (?:it|the bleeding) (?:to )?stop`,
      "(?:heavy|heavily|severe|severely|massive|profuse\\w*|uncontroll\\w*|spurting|pouring|gushing|pulsing|pumping|arterial|torrential|major) (?:bleed\\w*|blood|hemorrhag\\w*|blood loss)",
      "(?:bleed\\w*|blood) (?:heavily|profusely|everywhere|spurting|pouring|gushing|pumping|all over)|blood (?:is )?(?:spurting|pouring|gushing|pumping)",
      "soak\\w* (?:through|right through)|lots of blood|so much blood|a lot of blood|pool of blood|full of blood|exsanguinat\\w*",
      "(?<!subconjunctival |splinter |retinal |dot |flame )hemorrhag(?:e|ing)(?! risk)",
      "still bleeding (?:after|despite|hours)|keeps? (?:on )?bleeding",
    ),
    accept: (_match, sentence) =>
      !/period|menstru|menorrhag/.test(sentence) || /dizz|faint|every hour|soak/.test(sentence),
  },
  {
    finding: "vomitBlood",
    pattern: words(
      `(?:vomit\\w*|throw\\w* up|threw up|puk\\w*|being sick|brought up|bringing up) (?:[a-z'/-]+ ){0,5}(?:blood|bloody|coffee[- ]grounds?|fresh red)`,
      "hematemesis|coffee[- ]ground (?:vomit|emesis|material)|blood in (?:my |his |her |the |their )?(?:vomit|sick)|bloody (?:vomit|sick)",
    ),
  },
  {
    finding: "coughBlood",
    pattern: words(
      `(?:cough\\w*|spit\\w*|spat|hack\\w*) ${GAP}(?:blood|bloody|clots)`,
      "hemoptysis|blood in (?:my |his |her |the |their )?(?:sputum|phlegm|spit|mucus)",
    ),
  },
  {
    finding: "minorAmount",
    pattern: words(
      "streak\\w*|fleck\\w*|tinged|tinge|specks?|spots? of|bit of|little (?:bit of )?blood|small amount|pinkish|traces? of",
    ),
  },
  {
    finding: "melena",
    pattern: words(
      "black (?:tarry|tar[- ]like|sticky|runny)? ?(?:stools?|poo|poop|bowel movements?|feces|motions?)|tarry (?:stools?|poo|poop)|melena|malena",
    ),
  },
  {
    finding: "bleedAny",
    pattern: words(
      "bleed\\w*|nose ?bleeds?|bled|hemorrhag\\w*|blood loss|losing blood|passing blood|passed blood|(?:vaginal|pv) (?:blood|loss)",
    ),
  },
  {
    finding: "anticoagulant",
    pattern: words(
      "warfarin|apixaban|rivaroxaban|edoxaban|dabigatran|eliquis|xarelto|pradaxa|coumadin|heparin|enoxaparin|clexane|blood thinners?|anticoagula\\w*|doac|noac",
    ),
  },
  // Anaphylaxis
  {
    finding: "airwaySwell",
    pattern: words(
      `tongue ${GAP}(?:swell\\w*|swollen|huge|puff\\w*|thick)|(?:swell\\w*|swollen) (?:of )?${POSSESSIVE}? ?tongue`,
      `throat ${GAP}(?:closing|tight\\w*|closing up)|(?:closing|tightening) ${POSSESSIVE}? ?throat|angioedema|airway ${GAP}(?:swell\\w*|closing|compromis\\w*)|stridor`,
    ),
  },
  {
    finding: "throatSwell",
    pattern: words(
      `throat (?:is |feels |was |looks )?(?:very |really |so )?(?:swell\\w*|swollen)|(?:swell\\w*|swollen) (?:of )?${POSSESSIVE}? ?throat`,
    ),
  },
  {
    finding: "faceSwell",
    pattern: words(
      `(?:lip|lips|face|eyes|eyelids|mouth|hands) ${GAP}(?:swell\\w*|swollen|puff\\w*|blown up)`,
      `(?:swell\\w*|swollen|puffy) (?:of )?${POSSESSIVE}? ?(?:lip|lips|face|eyes|mouth)|facial swelling`,
    ),
  },
  {
    finding: "anaphylaxisWord",
    pattern: words("anaphyla\\w*|anaphalax\\w*|anafyla\\w*|allergic shock|severe allergic reaction"),
  },
  {
    finding: "epipenUsed",
    pattern: words(
      `(?:used|gave|given|giving|administered|jabbed|injected|needed) ${GAP}(?:epi-?pen|auto-?injector|adrenaline|epinephrine)`,
      "(?:epi-?pen|auto-?injector|im adrenaline|im epinephrine) (?:given|used|administered)",
    ),
  },
  {
    finding: "hives",
    pattern: words("hives|urticaria\\w*|welts|rash all over|itchy all over|covered in (?:a )?rash"),
  },
  {
    finding: "allergen",
    pattern: words(
      "sting|stung|bee|wasp|hornet|peanuts?|nuts?|cashews?|shellfish|prawns?|shrimp|allerg\\w*|penicillin|amoxicillin|antibiotic|contrast|new (?:drug|medication|medicine|tablet)|after (?:eating|taking)|ate (?:a|some)",
    ),
  },
  {
    finding: "wheeze",
    pattern: words("wheez\\w*|noisy breathing|hoarse\\w*|voice (?:is )?(?:chang\\w*|gone|hoarse)"),
  },
  {
    finding: "swallowTrouble",
    pattern: words(
      "(?:can't|unable to|difficulty|trouble|struggling to|hard to) swallow\\w*|drooling|dysphagi\\w*",
    ),
  },
  // Self-harm
  {
    finding: "suicidal",
    pattern: words(
      "suicid\\w*|suicidle|self[- ]?harm\\w*|deliberate self-harm|overdose on purpose|end it all|better off dead|better off without me|better off if (?:i|i'm|he|she|they) (?:was|were|wasn't|weren't) (?:dead|here|around|gone|alive)|no (?:reason|point) (?:to|in) (?:live|living|going on|being alive|being here)|not worth living|can't go on|want(?:s|ed)? it (?:all )?to (?:end|stop) for good",
      `kill(?:ing)? (?:my|him|her|them)sel(?:f|ves)|end(?:ing)? (?:my|his|her|their) (?:own )?(?:life|lives)|(?:take|taking|took) (?:my|his|her|their) (?:own )?(?:life|lives)`,
      "(?:want|wants|wanted|wanting|wanna|going|plan|plans|planning) (?:to )?die|(?:don't|doesn't|do not) want to (?:live|be alive|be here|wake up)|wish (?:i|he|she|they) (?:was|were|could be) dead",
      `(?:harm|harming) (?:my|him|her|them)sel(?:f|ves)|(?:want(?:s|ed)? to|going to|gonna|thinking (?:about|of)|thoughts of|urges? to|tried to|trying to|been|keeps?|started|plan(?:s|ning)? to) (?:hurt|hurting|cut|cutting|burn|burning) (?:my|him|her|them)sel(?:f|ves)|cutting (?:my|his|her|their) (?:arms|wrists|legs|thighs)|slit ${GAP}wrists`,
      "hang (?:my|him|her|them)sel(?:f|ves)|jump(?:ing)? (?:off|in front of|from) (?:a|the) (?:bridge|train|building|roof|cliff)|plan to (?:overdose|kill)",
      "stockpil\\w*|suicide note|(?:have|got) (?:the|my|all the) (?:pills|tablets|rope|gun|means) ready|tonight is the night|(?:looking up|researching|googling|searching for) ways to (?:do it|die|kill|end it)|goodbye (?:note|letter)s?|(?:go to sleep|sleep) and (?:never|not) wake up",
      "how many (?:\\w+ )?(?:pills|tablets|paracetamol|painkillers) (?:it )?(?:would it take|would kill|to die|it would take|are lethal|is lethal)",
    ),
  },
  // Infants
  {
    finding: "infantYoung",
    pattern: words(
      `${NUMBER}[- ]?(days?|weeks?|wks?|months?|mo|mths?)[- ]?old`,
      `(?:baby|infant|son|daughter|newborn|she|he|she's|he's|girl|boy)(?: is|'s|,)? (?:only |just )?${NUMBER} (days?|weeks?|wks?)(?! pregnant| ago| of| gestation)`,
      `born ${NUMBER} (days?|weeks?) ago|day ${NUMBER} of life|(\\d{1,2})/(52|7) old`,
      "newborn|new-born|neonat\\w*|new baby|premature baby|preemie",
    ),
    accept: (match) => {
      const numberIndex = match.slice(1).findIndex((group) => group !== undefined);
      if (numberIndex === -1) return true;
      const amount = numberOf(match[numberIndex + 1]);
      const unit = match[numberIndex + 2] ?? "";
      if (unit.startsWith("d") || unit === "7") return amount < 91;
      if (unit.startsWith("w") || unit === "52") return amount < 13;
      if (unit.startsWith("m")) return amount < 3;
      return true;
    },
  },
  {
    finding: "baby",
    pattern: words(
      "bab(?:y|ies)(?! aspirin| teeth| wipes| oil| powder| food| monitor| steps| brain| bump| shower)|infants?|newborns?|neonat\\w*|toddler|little one",
    ),
  },
  {
    finding: "fever",
    pattern: words(
      "fever\\w*|febrile|pyrexi\\w*|burning up|hot to (?:the )?touch|feels? (?:really |very |so )?hot|high temp\\w*|rigors?|spiking temp\\w*",
      "(?:has|had|got|running|with|spiked|develop\\w*|a|slight|low[- ]grade) (?:a )?(?:high |slight |low[- ]grade )?temp(?:erature)?(?! of (?:3[0-7]|9[0-9])\\b)",
      "temp(?:erature)? (?:is |was |has been )?(?:high|up|raised|spiking)",
    ),
  },
  {
    finding: "fever",
    pattern:
      /(?<![a-z0-9])(?:temp(?:erature)?|t|fever(?: of)?|febrile|pyrexial)\s*(?:of|is|was|at|=|:|to|reading|around|about|up to|over|spiked to)?\s*(\d{2,3}(?:\.\d+)?)(?!\d)\s*(°|degrees?|deg)?\s*([cf](?![a-z]))?/g,
    accept: (match) => {
      const value = Number(match[1]);
      return (value >= 38 && value < 44) || (value >= 100.4 && value < 110);
    },
  },
  {
    finding: "fever",
    pattern: /(?<![0-9.])(3[89]|4[0-2])(?:\.\d)?\s*(?:°\s*c?|degrees?(?: c| celsius)?)(?![a-z])/g,
  },
  {
    finding: "hypothermia",
    pattern:
      /(?<![a-z0-9])(?:temp(?:erature)?|t)\s*(?:of|is|was|at|=|:|reading)?\s*(\d{2}(?:\.\d+)?)(?!\d)|(?<![a-z0-9])(?:cold to (?:the )?touch|feels? (?:very )?cold|hypotherm\w*|low temp\w*)(?![a-z])/g,
    accept: (match) => match[1] === undefined || (Number(match[1]) < 36 && Number(match[1]) > 25),
  },
  {
    finding: "notFeeding",
    pattern: words(
      `(?:not|isn't|won't|hasn't been|stopped|refus\\w*|off) (?:${POSSESSIVE} )?(?:feeding|eating|feeds?|taking (?:\\w+ ){0,2}(?:feeds?|bottles?|milk)|drinking|feeding well)`,
      "(?:isn't|not|no longer) interested in (?:feeds|feeding|milk|food|the bottle)|poor(?:ly)? feed\\w*|feeding (?:poorly|badly|much less|less)|won't (?:feed|latch|take (?:the )?bottle)|not interested in (?:feeds|feeding|milk)",
    ),
  },
  {
    finding: "floppy",
    pattern: words(
      "floppy|limp|lifeless|won't wake(?: up)?|can't wake|hard to wake|difficult to wake|not waking|unresponsive|no response",
    ),
  },
  {
    finding: "lethargic",
    pattern: words(
      "letharg\\w*|listless|very sleepy|really sleepy|sleepier|drowsy|not (?:himself|herself)|not interested in anything|won't wake for feeds|irritable",
    ),
  },
  {
    finding: "mottled",
    pattern: words(
      `mottl\\w*|blotchy|blue (?:hands|feet|lips|skin|tinge)|(?:hands|feet|skin|knees|legs) ${GAP}(?:blue|gr[ae]y|blotchy|mottled|purple)|ashen|cold hands and feet|cold peripheries|purple (?:blotches|patches) on (?:his|her|their) skin`,
    ),
  },
  {
    finding: "nonBlanch",
    pattern: words(
      "non[- ]?blanch\\w*|(?:doesn't|does not|don't|didn't|won't|not|isn't) (?:blanch|fade|go away|disappear)\\w*(?: when (?:i |you )?(?:press\\w*|pushed?)| under (?:a|the) glass| with (?:a|the) glass)",
      "(?:rash|spots) (?:that |which )?(?:doesn't|don't|won't|didn't) (?:blanch|fade|go away|disappear)|(?:glass|tumbler) test (?:positive|failed)",
      "petechia\\w*|purpur\\w*|purple (?:spots|rash|blotches)|pin ?prick (?:rash|spots)|tiny red (?:pinprick )?(?:spots|dots)",
    ),
  },
  {
    finding: "grunting",
    pattern: words("grunting|grunts with (?:each|every) breath|head bobbing|nostrils flaring"),
  },
  {
    finding: "fontanelle",
    pattern: words(`bulging (?:fontanelle|soft spot)|(?:fontanelle|soft spot) ${GAP}bulging`),
  },
  {
    finding: "abnormalCry",
    pattern: words("high[- ]pitched (?:cry|crying|scream)|weak cry|inconsolabl\\w*|moaning"),
  },
  {
    finding: "noWetNappy",
    pattern: words(
      `(?:no|hasn't had a|not had a|hasn't had any) wet (?:nappy|nappies|diapers?)|dry (?:nappies|nappy|diapers?) (?:all day|since)`,
    ),
  },
  {
    finding: "child",
    pattern: words(
      "child|children|kid|kids|toddler|son|daughter|boy|girl|(?:\\d|one|two|three|four|five|six|seven|eight|nine|ten)[- ]?(?:year|yr)[- ]old",
    ),
  },
  // Meningitis
  {
    finding: "stiffNeck",
    pattern: words(
      "stiff neck|neck (?:is |feels |very |so |really )*(?:stiff|rigid)|neck stiffness|nuchal rigidity|meningism\\w*|kernig\\w*|brudzinski\\w*",
      `(?:can't|unable to|won't) (?:bend|touch|put|bring|move|tuck) ${POSSESSIVE}? ?(?:chin|head|neck) (?:to|on|onto|forward|down)`,
      `neck (?:hurts|pain\\w*|is painful) when (?:\\w+ ){0,3}(?:bend\\w*|mov\\w*|look\\w* down|tilt\\w*|put\\w* (?:his|her|my) head)`,
    ),
  },
  {
    finding: "photophobia",
    pattern: words(
      "photophob\\w*|light (?:hurts|is hurting|bothers|sensitiv\\w*)|sensitiv\\w* to (?:the )?light|(?:can't|won't) (?:stand|bear|tolerate|look at) (?:the )?light|hates (?:the )?light|(?:light|lights) (?:hurt|hurting) (?:his|her|my|their) eyes",
    ),
  },
  {
    finding: "meningitisWord",
    pattern: words(
      "meningitis(?! (?:b |c |acwy )?(?:vacc\\w*|jab\\w*|shots?|immuni\\w*))|meningococc\\w*|encephalitis",
    ),
  },
  {
    finding: "headache",
    pattern: words(
      "headaches?|head pain|(?:grabbed|grabbing|clutching|clutched|holding|held) (?:his|her|my|their) head|pain in (?:my|his|her|their|the) head|head (?:is )?(?:pounding|killing|exploding|splitting)|migraine",
    ),
  },
  {
    finding: "vomit",
    pattern: words("vomit\\w*|throw\\w* up|threw up|throwing up|being sick|been sick|puk\\w*|emesis"),
  },
  {
    finding: "vomitPersistent",
    pattern: words(
      "(?:can't|won't) stop (?:vomiting|being sick|throwing up)|vomiting (?:everything|non[- ]?stop|constantly|repeatedly)|persistent vomiting|projectile vomit\\w*",
    ),
  },
  {
    finding: "drowsy",
    pattern: words(
      "drows\\w*|very sleepy|really sleepy|so sleepy|keeps falling asleep|wants to sleep|just wants to sleep|hard to wake|difficult to wake|letharg\\w*|out of it|not with it|obtunded",
    ),
  },
  // Breathing
  {
    finding: "severeBreathing",
    pattern: words(
      "(?:can't|unable to|couldn't|struggling to|too breathless to|too short of breath to) (?:speak|talk|finish|say|get out) (?:in |a )?(?:full |whole |complete |more than (?:a )?(?:few|one|two) )?(?:sentences?|words?)",
      "speaking in (?:single |one |short )?words|one[- ]word (?:sentences|answers)|(?:can only|only able to) (?:say|speak|manage|get out) (?:a )?(?:few|one|two|three|single|\\d)(?: or (?:two|three|four))? words?|(?:chest|ribs?|tummy) (?:is |are )?sucking in",
      "barely breathing|(?:can|could) (?:barely|hardly) (?:talk|speak|breathe|get (?:a|any) words? out)|can't breathe(?! (?:through|out of|properly through) (?:my|his|her|the|their) nose)|struggling to breathe|fighting for (?:air|breath)|gasping for (?:air|breath)|can't get (?:any )?air in",
      "retractions?|(?:subcostal|intercostal|sternal) recession|ribs? (?:are )?sucking in|sucking in (?:at|under) (?:the|his|her) ribs|accessory muscles?|silent chest|tripod\\w*|exhausted from breathing",
      "(?:severe(?:ly)?|very|extremely|really|acutely) (?:short of breath|breathless|dyspne(?:a|ic))|severe (?:respiratory distress|asthma attack|difficulty breathing|breathing difficult\\w*)|respiratory distress|stridor at rest",
    ),
  },
  {
    finding: "blueLips",
    pattern: words(
      "blu(?:e|ish) (?:lips|face|tinge|around the (?:lips|mouth))|(?:lips|face|mouth) (?:[a-z']+ ){0,4}(?:blue|bluish|gr[ae]y|purple|dusky)|cyano\\w*|turning blue|gone blue|went blue",
    ),
  },
  {
    finding: "lowSats",
    pattern:
      /(?<![a-z0-9])(?:sats?|saturations?|spo2|o2 sats?|oxygen(?: levels?| saturations?| sats?| reading)?|pulse ox\w*|the finger (?:thing|monitor|probe)(?: says| reads| shows)?)(?: on (?:the )?[a-z]+)?\s*(?:of|is|are|at|was|were|=|:|reading|reads|says|shows|down to|dropped to|dropping to)?\s*(\d{2})\s*%?/g,
    accept: (match) => Number(match[1]) < 92 && Number(match[1]) >= 40,
  },
  {
    finding: "choking",
    pattern: words(
      "(?:is |he's |she's |they're |i'm |baby is |started )choking|choking (?:on|and)|something stuck in (?:his|her|my|their) (?:throat|windpipe|airway)",
    ),
  },
  {
    finding: "inhalerFailing",
    pattern: words(
      `(?:inhaler|nebuli[sz]er|salbutamol|ventolin|reliever|puffer)s? (?:[a-z0-9']+ ){0,7}(?:not|isn't|aren't|hasn't|haven't|doesn't|don't|didn't) (?:help\\w*|work\\w*|touch\\w*|mak\\w* (?:any )?difference)`,
      "no (?:relief|improvement|response) (?:from|with|after) (?:the |his |her |my )?(?:inhaler|nebuli[sz]er|salbutamol|ventolin|reliever)",
    ),
  },
  { finding: "atRest", pattern: words("at rest|sitting still|resting|lying (?:still|down)|doing nothing") },
  {
    finding: "worsening",
    pattern: words(
      "getting worse|worsening|worse and worse|deteriorat\\w*|rapidly worse|worse by the (?:hour|minute)",
    ),
  },
  { finding: "severe", pattern: words(SEVERE_WORDS) },
  // Sepsis
  {
    finding: "sepsisWord",
    pattern: words("sepsis|septic(?! tank| arthritis)|septicemia|urosepsis|blood poisoning|septic shock"),
  },
  {
    finding: "infection",
    pattern: words(
      "infect\\w*|uti|pneumonia|cellulitis|kidney infection|pyelonephritis|chest infection|abscess|wound (?:is )?(?:red|hot|oozing|weeping)|oozing pus|pus",
    ),
  },
  {
    finding: "immunosuppressed",
    pattern: words(
      "chemo\\w*|neutropen\\w*|immunosuppress\\w*|immunocompromis\\w*|on steroids|transplant|no spleen|splenectomy",
    ),
  },
  {
    finding: "rigors",
    pattern: words(
      "rigors?|shaking uncontrollabl\\w*|shivering uncontrollabl\\w*|(?:uncontrollabl\\w*|violent\\w*) (?:shaking|shivering)|teeth chattering",
    ),
  },
  {
    finding: "hypotension",
    pattern: words(
      "hypotensi\\w*|low blood pressure|blood pressure (?:is )?(?:very )?(?:low|dropping|dropped)|bp (?:is )?(?:very )?(?:low|dropping)|shocked|in shock",
    ),
  },
  {
    finding: "hypotension",
    pattern:
      /(?<![a-z0-9])(?:bp|blood pressure|sbp|systolic)\s*(?:of|is|was|at|=|:|dropped to)?\s*(\d{2,3})(?:\s*\/\s*\d{2,3})?/g,
    accept: (match) => Number(match[1]) < 90 && Number(match[1]) >= 30,
  },
  {
    finding: "tachycardia",
    pattern:
      /(?<![a-z0-9])(?:hr|heart rate|pulse|heart racing at|pulse rate)\s*(?:of|is|was|at|=|:)?\s*(\d{2,3})/g,
    accept: (match) => Number(match[1]) >= 120 && Number(match[1]) < 300,
  },
  {
    finding: "tachycardia",
    pattern: words("tachycard\\w*|heart (?:is )?(?:racing|pounding)|racing heart|pounding heart"),
  },
  {
    finding: "fastBreathing",
    pattern: /(?<![a-z0-9])(?:resp rate|resp|respiratory rate|rr)\s*(?:of|is|was|at|=|:)?\s*(\d{2})/g,
    accept: (match) => Number(match[1]) >= 25,
  },
  {
    finding: "fastBreathing",
    pattern: words(
      "breathing (?:really |very |so )?(?:fast|quickly|rapidly)|rapid breathing|fast breathing|tachypne\\w*",
    ),
  },
  {
    finding: "noUrine",
    pattern: words(
      "(?:not|hasn't|haven't|hasn't|hadn't|didn't|no) (?:passed|passing|pass|been able to pass|peed|pee'd|weed|urinated|had a wee|had a pee) (?:any )?(?:urine|water|wee|pee)?|no urine|anuri\\w*|oliguri\\w*|(?:not|haven't|hasn't) peed",
    ),
  },
  {
    finding: "veryUnwell",
    pattern: words(
      "(?:feel|feels|felt|feeling) like (?:i'm|i am|he's|she's|they're) (?:going to|gonna) die|sense of (?:impending )?doom|never felt (?:this|so) (?:ill|unwell|sick)|(?:extremely|really|very|severely) unwell|worst i've ever felt",
    ),
  },
  {
    finding: "hypotension",
    pattern: /(?<![a-z0-9])lactate\s*(?:of|is|was|=|:)?\s*(\d+(?:\.\d+)?)/g,
    accept: (match) => Number(match[1]) >= 4,
  },
  // Overdose and poisoning
  {
    finding: "overdose",
    pattern: words(
      "overdos\\w*|intentional ingestion|toxic ingestion|accidental ingestion|deliberate ingestion|unknown quantity of (?:tablets|pills|medication)|empty (?:blister )?packs?|empty (?:pill )?bottles?",
      "(?:took|taken|swallowed|downed|necked) (?:a |an |the )?(?:whole|entire|full|loads of|lots of|lot of|bunch of|handful of|bottle of|pack of|packet of|box of|strip of|load of)",
      "(?:took|taken|swallowed|ingested|ate|eaten|downed|necked) (?:[a-z']+ ){0,3}(?:too many|a handful of|lots of|all of|all (?:my|his|her|their|the)|a whole|the whole)",
      "too many (?:pills|tablets|tabs|capsules|of (?:my|his|her|their) (?:pills|tablets|meds))",
      "got into (?:the |my |his |her |their |grandma's |grandad's |granny's |mum's |dad's )?(?:medicine|pills|tablets|meds|medication|cabinet)",
      "(?:paracetamol|acetaminophen|tylenol|opioid|opiate) (?:overdose|toxicity|poisoning)|times (?:my|his|her|the) (?:[a-z]+ ){0,2}dose",
    ),
  },
  {
    finding: "overdose",
    pattern: words(
      `${NUMBER}\\s*(?:x\\s*)?(?:\\d+\\s*(?:mg|mcg|g)\\s*)?(?:of\\s+)?(?:[a-z']+\\s+){0,2}(?:pills|tablets|tabs|capsules|caps)`,
      `(?:took|taken|swallowed|ingested|downed) ${NUMBER} (?:of (?:his|her|my|their|the) )?[a-z]+`,
    ),
    accept: (match, sentence) =>
      numberOf(match[1] ?? match[2]) >= 10 &&
      /took|taken|swallow|ingest|\bate\b|eaten|downed|necked|overdos/.test(sentence) &&
      !/prescri|dispens|pack of 2|supply|left in/.test(sentence),
  },
  {
    finding: "poisoning",
    pattern: words(
      "(?<!food )poison(?:ed|ing|ous)?(?! ivy| oak)|carbon monoxide|co alarm|toxic fumes",
      `(?:drank|drunk|swallowed|ingested|ate|eaten|drinking|swallowing) ${GAP}(?:bleach|drain cleaner|antifreeze|anti-freeze|button batter(?:y|ies)|magnets|detergent|washing (?:pod|capsule|tablet)s?|dishwasher (?:tablet|pod|liquid|detergent|powder)s?|washing[- ]up liquid|(?:cleaning|household) (?:product|fluid|spray|chemical)s?|nail (?:polish|varnish) remover|(?:e-?|vape )liquid|weed ?killer|pesticide|rat poison|white spirit|lamp oil|paraffin|methanol|screen ?wash|cleaning (?:fluid|product))`,
    ),
  },
  {
    finding: "naloxone",
    pattern: words(
      `(?:gave|given|used|administered|needed) ${GAP}(?:naloxone|narcan)|(?:naloxone|narcan) (?:given|used)`,
    ),
  },
  { finding: "pinpointPupils", pattern: words("pinpoint pupils|pupils (?:are )?(?:pinpoint|tiny)") },
  // Seizures and consciousness
  {
    finding: "seizure",
    pattern: words(
      "seiz\\w*(?![- ]free)|siez\\w*|convuls\\w*|status epilepticus|tonic[- ]clonic|grand mal|(?:having|had|has|have|in|into|another|a|febrile|first) (?:a )?fits?|fitting(?! (?:room|in|well))|shaking all over|jerking (?:all over|uncontrollably|movements)|(?:arms|legs|body) jerking",
    ),
  },
  {
    finding: "stillSeizing",
    pattern: words(
      "still (?:seiz\\w*|fitting|shaking|jerking|convuls\\w*)|status epilepticus",
      "(?:won't|will not|isn't|hasn't|hasn't|not|doesn't) stop(?:ped|ping)? (?:seiz\\w*|shaking|fitting|jerking|convuls\\w*)",
      `(?:seizure|seizures|fit|fits|shaking|jerking|convulsion|convulsions) ${GAP}(?:won't|will not|isn't|hasn't|not|doesn't) (?:stop|stopping|stopped|ending)`,
      "one (?:seizure|fit) after another|back[- ]to[- ]back (?:seizures|fits)|(?:seizures|fits) back[- ]to[- ]back|(?:two|three|four|several|multiple|repeated|\\d) (?:seizures|fits) (?:in|within) (?:an hour|a row|the last hour|half an hour|quick succession)|(?:seizures|fits) (?:keep|keeps) (?:coming|happening)",
      `(?:two|three|four|several|multiple|repeated|\\d) (?:seizures|fits|convulsions) ${GAP}(?:without|not) (?:waking|regaining|coming round|recover\\w*)`,
    ),
  },
  { finding: "firstSeizure", pattern: words("first (?:ever )?(?:seizure|fit|convulsion)") },
  {
    finding: "notWaking",
    pattern: words(
      "(?:not|isn't|hasn't|won't|didn't|doesn't|still not|never) (?:woken|waking|wake|waken\\w*|come round|coming round|come to|coming to|regain\\w* consciousness|responding|respond)(?: up| properly)?",
      "still (?:unconscious|unresponsive|out of it|not responding)|without regaining consciousness",
    ),
  },
  {
    finding: "unresponsive",
    pattern: words(
      "unresponsive|unconscious|unconcious|unconsious|unrous\\w*|unarous\\w*|out cold|not rous\\w*|not arous\\w*",
      "(?:not|isn't|wasn't|stopped) respond\\w*(?! to (?:the |his |her |my )?(?:treatment|antibiotics?|meds|medications?|therapy|inhaler|steroids|painkillers|tablets|chemo|text|messages|calls|emails))",
      "(?:won't|can't|couldn't|unable to) (?:wake|rouse|waken) (?:him|her|them|my \\w+|up)|can't wake (?:him|her|them)(?: up)?|won't wake up|(?:won't|doesn't|isn't|not) (?:answer\\w*|react\\w*) (?:me|to (?:me|pain|his name|her name|anything))",
      "(?:drifting|going) in and out of consciousness|in and out of consciousness|barely conscious|semi[- ]?conscious|gcs (?:of )?(?:[3-8])(?![0-9])",
      "slumped (?:over )?(?:and )?(?:not|isn't|won't)",
    ),
  },
  {
    finding: "notBreathing",
    pattern: words(
      "(?:not|isn't|wasn't|stopped|stops|hasn't been) breathing(?! (?:properly )?through| (?:problems?|difficult\\w*|issues?|trouble))|agonal breath\\w*|no signs of life|breathing (?:very )?(?:slowly|shallow\\w*) and (?:not|won't)",
    ),
    accept: (_match, sentence) => !/sleep|snor|apnea/.test(sentence),
  },
  {
    finding: "arrest",
    pattern: words(
      "cardiac arrest|respiratory arrest|no pulse|pulseless|doing cpr|started cpr|starting cpr|giving cpr|performing cpr|cpr (?:started|in progress|ongoing)|compressions (?:started|in progress)|defibrillat\\w*|(?:used|using) (?:an |the )?aed",
    ),
  },
  {
    finding: "lowGcs",
    pattern: /(?<![a-z0-9])gcs\s*(?:of|is|was|=|:)?\s*(\d{1,2})(?!\d)/g,
    accept: (m) => Number(m[1]) <= 8,
  },
  {
    finding: "hardToWake",
    pattern: words(
      `(?:hard|difficult|impossible) to (?:wake|rouse|arouse)|can't keep ${POSSESSIVE} eyes open|barely responsive|barely responding|only responding to pain`,
    ),
  },
  {
    finding: "lowGlucose",
    pattern:
      /(?<![a-z0-9])(?:sugars?|glucose|bm|blood sugar|bg|cbg|sugar reading|sugar level)\s*(?:level )?(?:of|is|was|at|=|:)?\s*(\d{1,3}(?:\.\d)?)(?!\d)/g,
    accept: (match) => {
      const value = Number(match[1]);
      return value < 3 || (value >= 34 && value < 55);
    },
  },
  {
    finding: "lowGlucose",
    pattern: words(
      "(?:severe(?:ly)?|very) (?:hypo|hypoglyc\\w*)|hypoglyc\\w* (?:and|with) (?:drowsy|confused|unresponsive)",
    ),
  },
  // Head injury
  {
    finding: "headInjury",
    pattern: words(
      `(?:hit|hitting|bang\\w*|bump\\w*|knock\\w*|struck|strike|smash\\w*|crack\\w*|whack\\w*|blow to|injur\\w*|trauma to|landed on|fell on|fell onto|fall onto|fallen on) (?:[a-z'/-]+ ){0,4}(?:head|skull|forehead|temple)`,
      "head (?:injury|injuries|trauma|strike|knock|bump|wound|impact)|concussion|concussed|knocked (?:out|unconscious)|skull fracture|tbi|hit by a car|knocked off (?:his|her|my|their) bike",
      `(?:fell|fallen|landed|falling) (?:[a-z'/-]+ ){0,6}(?:and|onto|on|down) (?:[a-z'/-]+ ){0,4}(?:head|skull)`,
    ),
  },
  {
    finding: "fallFromHeight",
    pattern: words(
      "(?:fell|fall|fallen|falling) (?:\\d+ ?(?:m|metres|meters|feet|ft) )?(?:from|off) (?:a |the |his |her )?(?:height|ladder|roof|horse|scaffold\\w*|balcony|window|top bunk|bunk bed|wall|tree|kitchen counter|counter|changing table|stairs)|down (?:a |the )?(?:flight of )?stairs",
    ),
  },
  {
    finding: "lostConsciousness",
    pattern: words(
      "loss of consciousness|lost consciousness|knocked (?:out|unconscious)|blacked out|passed out|was out (?:for|cold)|unconscious for|brief(?:ly)? unconscious",
    ),
  },
  {
    finding: "csfLeak",
    pattern: words(
      "clear fluid (?:from|coming (?:out of|from)|leaking from|out of) (?:his|her|my|their|the) (?:nose|ear|ears)|blood (?:from|coming out of) (?:his|her|my|their|the) ear",
    ),
  },
  {
    finding: "unequalPupils",
    pattern: words(
      "pupils? (?:are )?(?:unequal|different sizes?|different|blown|fixed)|unequal pupils|one pupil (?:bigger|larger)",
    ),
  },
  {
    finding: "amnesia",
    pattern: words(
      "amnesi\\w*|(?:can't|doesn't|don't|didn't) remember (?:what happened|the fall|the accident|anything)|repeating (?:himself|herself|themselves|the same question)|keeps asking the same",
    ),
  },
  {
    finding: "headacheWorsening",
    pattern: words(
      "(?:headache|head pain) (?:is )?(?:getting worse|worsening|keeps getting worse)|worsening headache|(?:severe|bad|terrible|awful) headache",
    ),
  },
  // Thunderclap headache
  {
    finding: "worstHeadache",
    pattern: words(
      `worst (?:[a-z']+ ){0,2}(?:headache|head pain|pain in ${POSSESSIVE} head)|(?:headache|head pain) (?:of|in) (?:my|his|her|their) (?:life|lives)|worst (?:pain )?(?:of|in) (?:my|his|her|their) (?:life|lives)`,
      `never (?:had|felt|experienced) (?:a )?(?:headache|head pain|pain) like (?:this|it)|(?:headache|head pain) like nothing (?:i've|i have|he's|she's|they've) ever|(?:headache|head pain) like (?:i've|i have|he's|she's|they've) never|worst pain in (?:my|his|her|their) head`,
      "thunderclap|subarachnoid|explosive headache|like (?:being )?(?:hit|struck|kicked|whacked|smacked) (?:on|in|over|round) (?:the )?(?:back of (?:the|my|his|her) )?head",
    ),
  },
  {
    finding: "eyelidDroop",
    pattern: words(
      "(?:eyelid|lid) (?:is )?droop\\w*|drooping (?:eye)?lid|ptosis|third nerve palsy|blown pupil",
    ),
  },
  // Obstetric
  {
    finding: "pregnant",
    pattern: words(
      "pregnan(?:t|cy)(?! tests? (?:was |is |came back )?negative| planning)|expecting (?:a baby|twins)|(?:\\d{1,2}) ?(?:\\+\\d )?(?:weeks?|wks?) (?:pregnant|gestation|along)|\\d{1,2}(?:\\+\\d)?/40|gestation\\w*|antenatal|g\\d ?p\\d|positive (?:pregnancy )?test|gravid",
    ),
  },
  {
    finding: "postpartum",
    pattern: words(
      "postpartum|post[- ]partum|postnatal|post[- ]natal|gave birth|given birth|just had (?:a |my |the |her |our )?baby|after (?:the |my |her )?(?:delivery|birth|c-section|caesarean|cesarean)|(?:c-section|caesarean|cesarean|delivery) (?:\\d+ |a few |two |three )?(?:days?|weeks?) ago",
    ),
  },
  {
    finding: "preterm",
    pattern: /(?<![a-z0-9])(\d{1,2})\s*(?:\+\s*\d\s*)?(?:weeks?|wks?|\/40)(?![a-z0-9])/g,
    accept: (match, sentence) =>
      Number(match[1]) >= 20 && Number(match[1]) < 37 && /pregnan|gestation|\/40|along/.test(sentence),
  },
  {
    finding: "clots",
    pattern: words(
      "(?:passing|passed|large|huge|big|golf[- ]ball sized) (?:\\w+ )?clots|clots (?:the size of|as big as)",
    ),
  },
  {
    finding: "padSoaking",
    pattern: words(
      `soak\\w* ${GAP}(?:pads?|towels?|sanitary)|(?:pad|pads) (?:every|an) (?:hour|half hour|30 min\\w*)|through (?:a )?pads?`,
    ),
  },
  {
    finding: "oneSidedPelvicPain",
    pattern: words(
      `(?:pain|ache|cramp\\w*) ${GAP}(?:on|in|to) (?:one|the left|the right|my left|my right|her left|her right) (?:side|lower (?:belly|abdomen|tummy)|iliac fossa)`,
      "(?:left|right|one)[- ]sided (?:pelvic |abdominal |lower abdominal |tummy |belly )?pain|(?:rif|lif|right iliac fossa|left iliac fossa) (?:pain|tenderness)|(?:lower|pelvic) (?:belly|tummy|abdominal|abdomen) pain on the (?:left|right)|(?:left|right) lower (?:belly|abdominal|tummy) pain|(?:severe|sharp) lower (?:belly|abdominal|tummy) pain on the (?:left|right)|sharp pain on one side",
    ),
  },
  {
    finding: "shoulderTip",
    pattern: words(
      "shoulder[- ]tip (?:pain|ache)|shoulder tip hurts|pain in (?:the tip of )?(?:my|her) shoulder tip",
    ),
  },
  {
    finding: "missedPeriod",
    pattern: words(
      "missed (?:a |my |her )?period|period (?:is )?(?:late|overdue)|late period|positive (?:pregnancy )?test",
    ),
  },
  { finding: "ectopicWord", pattern: words("ectopic") },
  {
    finding: "visualDisturbance",
    pattern: words(
      "flashing lights|blurr\\w* vision|vision (?:is )?blurr\\w*|spots (?:in|before) (?:my|her) (?:eyes|vision)|seeing (?:spots|stars)|visual disturbance\\w*",
    ),
  },
  {
    finding: "highBp",
    pattern: /(?<![a-z0-9])(?:bp|blood pressure)\s*(?:of|is|was|at|=|:)?\s*(\d{2,3})\s*\/\s*(\d{2,3})/g,
    accept: (match) => Number(match[1]) >= 160 || Number(match[2]) >= 110,
  },
  { finding: "preEclampsiaWord", pattern: words("pre-?eclampsia|eclampsia|hellp") },
  {
    finding: "reducedMovements",
    pattern: words(
      "(?:reduced|less|fewer|no|decreased|slowed down) (?:fetal |baby's |babys |baby )?(?:movements?|kicks?)|(?:baby|babies) (?:is |has )?(?:not|hasn't|isn't|stopped) (?:moving|moved|kicking|kicked)|(?:haven't|hasn't|not) felt (?:the |my |her )?baby (?:move|moving|kick\\w*)",
    ),
  },
  {
    finding: "watersBroken",
    pattern: words(
      "waters? (?:have |has )?(?:broken|broke|gone|went)|broke (?:my|her) waters|rupture of membranes|leaking fluid",
    ),
  },
  {
    finding: "cordProlapse",
    pattern: words(
      `cord prolapse|prolapsed cord|it's the cord|the cord is|(?:feel|see|can see|something) ${GAP}cord|cord (?:is )?(?:hanging|coming) out`,
    ),
  },
  {
    finding: "contractions",
    pattern: words("(?:regular |painful |strong )*contractions|in labou?r|labou?r pains"),
  },
  // Abdominal
  {
    finding: "abdominalPain",
    pattern: words(
      "(?:abdominal|abdomen|stomach|belly|tummy|epigastric|pelvic|lower abdominal|upper abdominal|groin|loin|flank) (?:pains?|aches?|cramps?|hurts?|discomfort|is (?:painful|tender|sore))|abdominal tenderness",
      `(?:pain|ache|cramp\\w*) (?:in|on) ${POSSESSIVE}? ?(?:stomach|belly|tummy|abdomen|pelvis|lower belly|lower tummy|side)`,
      "(?:rif|lif|ruq|luq) (?:pain|tenderness)|stomach (?:is )?killing|pain (?:in|on) the (?:bottom right|lower right)",
    ),
  },
  {
    finding: "rigidAbdomen",
    pattern: words(
      "(?:abdomen|belly|stomach|tummy) (?:is |feels |very )*(?:rigid|hard as (?:a )?board|board[- ]like|rock[- ]hard|like a board)|rigid abdomen|board[- ]like (?:abdomen|rigidity)|guarding|rebound tenderness|peritoni\\w*",
    ),
  },
  {
    finding: "testicularPain",
    pattern: words(
      `(?:testic\\w*|scrot\\w*|testes|balls?|nuts) ${GAP}(?:pain|ache|hurts?|hurting|swollen|swelling)|pain (?:in|on) ${POSSESSIVE}? ?(?:left |right )?(?:testicles?|testes|balls|scrotum)|testicular torsion|torsion`,
    ),
  },
  {
    finding: "aneurysm",
    pattern: words("pulsat\\w* (?:mass|lump)|aaa|(?:abdominal )?aortic aneurysm|aneurysm"),
  },
  {
    finding: "biliousVomit",
    pattern: words(
      `(?:vomit\\w*|throw\\w* up|sick) ${GAP}green|green (?:vomit|bile|sick)|bilious vomit\\w*|vomiting (?:green )?bile`,
    ),
  },
  { finding: "redcurrant", pattern: words("red ?currant jelly|jelly[- ]like (?:blood|poo|stool)") },
  {
    finding: "obstruction",
    pattern: words(
      "(?:not|haven't|hasn't|can't|unable to) (?:pass\\w*|passing) (?:wind|gas)|(?:no|not) (?:bowel movement|passing stool)|haven't (?:pooed|been for a poo)|(?:not|hasn't|haven't) (?:pooed|pooped|opened (?:my|his|her) bowels)|bowel obstruction",
    ),
  },
  {
    finding: "distended",
    pattern: words(
      `(?:belly|stomach|tummy|abdomen) ${GAP}(?:swollen|distended|bloated|huge)|distended (?:abdomen|belly)`,
    ),
  },
  {
    finding: "cantWalk",
    pattern: words("(?:can't|unable to|won't) (?:walk|stand(?: up)?|move|get up)|doubled over"),
  },
  {
    finding: "backPain",
    pattern: words(
      "back pain|pain (?:\\w+ ){0,3}(?:to|into|through to) (?:the|my|his|her) back|through to (?:the|my|his|her) back",
    ),
  },
  { finding: "cramps", pattern: words("cramp\\w*|period[- ]like pain") },
];
