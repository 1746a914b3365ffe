/**
 * A case as Markdown: the whole case for an educator's notes, with the hypothetical label first. Text from the
 * case is escaped so that it reads as written, whatever characters it holds.
 */
import { resultFlag } from "./reference_range.ts";
import { formatAge } from "./consistency.ts";
import { type Case, HYPOTHETICAL_NOTICE, type VitalSigns } from "./schema.ts";

/** Escapes Markdown syntax (and raw HTML) in a line of case text. */
export function mdText(text: string | number): string {
  return String(text).replace(/\s*\r?\n\s*/g, " ")
    .replace(/[\\`*_\[\]<>|~]/g, (ch) => `\\${ch}`)
    .replace(/^([#+-])/, "\\$1").replace(/^(\d+)([.)])/, "$1\\$2");
}

/** Vital signs as display strings, in a fixed order. */
export function vitalSignLines(v: VitalSigns): [string, string][] {
  const out: [string, string][] = [];
  if (v.heartRate) out.push(["Heart rate", `${v.heartRate.value} ${v.heartRate.unit}`]);
  if (v.bloodPressure) {
    out.push([
      "Blood pressure",
      `${v.bloodPressure.systolic}/${v.bloodPressure.diastolic} ${v.bloodPressure.unit}`,
    ]);
  }
  if (v.respiratoryRate) {
    out.push(["Respiratory rate", `${v.respiratoryRate.value} ${v.respiratoryRate.unit}`]);
  }
  if (v.oxygenSaturation) {
    const on = v.oxygenSaturation.on ? ` on ${v.oxygenSaturation.on}` : "";
    out.push(["Oxygen saturation", `${v.oxygenSaturation.value}%${on}`]);
  }
  if (v.temperature) out.push(["Temperature", `${v.temperature.value} ${v.temperature.unit}`]);
  if (v.capillaryGlucose) {
    out.push(["Capillary glucose", `${v.capillaryGlucose.value} ${v.capillaryGlucose.unit}`]);
  }
  if (v.gcs) out.push(["Glasgow Coma Scale", `${v.gcs.value}/15`]);
  if (v.painScore) out.push(["Pain score", `${v.painScore.value}/10`]);
  if (v.weight) out.push(["Weight", `${v.weight.value} ${v.weight.unit}`]);
  return out;
}

/** "Maya Patel, 34 years, female, primary school teacher". */
export function patientLine(c: Case): string {
  const p = c.patient;
  return [p.name, formatAge(p.age), p.sex, p.occupation].filter(Boolean).join(", ");
}

const bullets = (items: string[]) => items.map((i) => `- ${mdText(i)}`).join("\n");

/** The whole case as Markdown. */
export function caseMarkdown(c: Case): string {
  const md: string[] = [];
  md.push(`# ${mdText(c.title)}`, "");
  md.push(`> **${HYPOTHETICAL_NOTICE}**`, "");
  md.push(
    `**Specialty:** ${mdText(c.specialty)} · **Setting:** ${
      mdText(c.setting)
    } · **Difficulty:** ${c.difficulty} · ` +
      `**Learner level:** ${c.learnerLevel}`,
  );
  if (c.tags.length) md.push("", `**Tags:** ${c.tags.map(mdText).join(", ")}`);
  md.push("", "## Learning objectives", "", bullets(c.learningObjectives));
  md.push("", "## Patient", "", mdText(patientLine(c)));
  md.push("", "## Chief complaint", "", mdText(c.chiefComplaint));
  if (c.candidateTask) md.push("", "## Candidate's task", "", mdText(c.candidateTask));
  md.push("", "## History of present illness", "", mdText(c.historyOfPresentIllness));
  md.push(
    "",
    "## Past medical history",
    "",
    c.pastMedicalHistory.length ? bullets(c.pastMedicalHistory) : "None.",
  );
  md.push(
    "",
    "## Medications",
    "",
    c.medications.length
      ? bullets(c.medications.map((m) => [m.name, m.dose, m.frequency].filter(Boolean).join(" ")))
      : "None.",
  );
  md.push(
    "",
    "## Allergies",
    "",
    c.allergies.length
      ? bullets(c.allergies.map((a) => a.reaction ? `${a.substance}: ${a.reaction}` : a.substance))
      : "No known allergies.",
  );
  if (c.socialHistory) md.push("", "## Social history", "", mdText(c.socialHistory));
  if (c.familyHistory) md.push("", "## Family history", "", mdText(c.familyHistory));
  if (c.reviewOfSystems.length) {
    md.push(
      "",
      "## Review of systems",
      "",
      bullets(c.reviewOfSystems.map((r) => `${r.system}: ${r.findings}`)),
    );
  }
  const vitals = vitalSignLines(c.vitalSigns);
  md.push(
    "",
    "## Vital signs",
    "",
    vitals.length ? bullets(vitals.map(([k, v]) => `${k}: ${v}`)) : "Not recorded.",
  );
  md.push("", "## Examination", "", bullets(c.examination.map((e) => `${e.system}: ${e.findings}`)));
  if (c.investigations.length) {
    md.push(
      "",
      "## Investigations",
      "",
      "| Investigation | Result | Unit | Reference range | Flag |",
      "| --- | --- | --- | --- | --- |",
    );
    for (const inv of c.investigations) {
      const cells = [
        inv.name,
        inv.value,
        inv.unit,
        inv.referenceRange,
        resultFlag(inv.value, inv.referenceRange) ?? "",
      ];
      md.push(`| ${cells.map(mdText).join(" | ")} |`);
    }
  }
  md.push("", "## Differential diagnosis", "");
  c.differential.forEach((d, i) =>
    md.push(`${i + 1}. **${mdText(d.diagnosis)}** (${d.likelihood}): ${mdText(d.reasoning)}`)
  );
  md.push("", "## Final diagnosis", "", mdText(c.finalDiagnosis));
  md.push("", "## Management plan", "");
  c.managementPlan.forEach((step, i) => md.push(`${i + 1}. ${mdText(step)}`));
  md.push("", "## Teaching points", "", bullets(c.teachingPoints));
  md.push("", "## Questions for learners", "");
  c.learnerQuestions.forEach((q, i) =>
    md.push(`${i + 1}. ${mdText(q.question)}`, `   - *Model answer:* ${mdText(q.modelAnswer)}`)
  );
  md.push("", "## Standardized-patient script", "", `**Opening line:** “${mdText(c.script.openingLine)}”`);
  if (c.script.emotionalCues.length) md.push("", "**Emotional cues**", "", bullets(c.script.emotionalCues));
  if (c.script.patientQuestions.length) {
    md.push("", "**Questions the patient asks**", "", bullets(c.script.patientQuestions));
  }
  md.push("", "**Facts to reveal only when asked**", "");
  for (const f of c.script.facts) {
    md.push(
      `- **${mdText(f.topic)}** (if asked about ${f.triggers.map(mdText).join(", ")}): ${mdText(f.detail)}`,
    );
  }
  md.push("", "## Examiner checklist", "");
  for (const item of c.checklist) md.push(`- [ ] ${mdText(item.item)} *(${item.category})*`);
  md.push("", "---", "", `*${HYPOTHETICAL_NOTICE}*`, "");
  return md.join("\n");
}
