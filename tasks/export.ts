/**
 * deno task export training [--out DIR] [--template NAME | --model ID] [--test-fraction F] [--seed S]
 *                           [--no-references] [--dataset FILE [--format F] [--source-name NAME]]
 *
 * Training data for the next fine-tune (chat/training.ts): from clinicians' feedback in the configured database,
 * or converted from a dataset file ingest reads. Writes JSON Lines per kind and split, and a manifest.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { loadConfig } from "../config.ts";
import { loadModels, ModelsError } from "../inference/models.ts";
import { DEFAULT_SYSTEM_PROMPT } from "../inference/templates.ts";
import { inputFiles } from "../knowledge/ingest.ts";
import { parseFile, UnknownFormatError } from "../knowledge/parsers.ts";
import { type FormatName, FORMATS } from "../knowledge/records.ts";
import {
  chooseTemplate,
  type ExampleKind,
  examplesFromDataset,
  exportFeedback,
  type SkipCounts,
  type Split,
  trainingWriter,
} from "../chat/training.ts";
import { openTaskDatabase, parseTaskArgs, runTask, TaskExit } from "./cli.ts";

const USAGE = `Usage: deno task export training [options]

Writes training data for the next fine-tune as JSON Lines (TRL's prompt-completion and preference shapes):
from the answers clinicians marked good, their corrections, and good-versus-bad versions of an answer; or, with
--dataset, from a dataset file ingest reads. Identifiers are replaced with placeholders; duplicates are dropped.

  --out DIR            where to write (default: training-<date>); files: sft-train.jsonl, sft-test.jsonl,
                       preference-train.jsonl, preference-test.jsonl, manifest.json
  --template NAME      the prompt format: chat (conversational messages), llama2-meddialog, llama2-chat,
                       mistral, chatdoctor, mashqa (default: the default model's template, else chat)
  --model ID           the format of this configured model (MODELS_FILE id)
  --test-fraction F    share of conversations (or dialogues) held out, 0-0.5 (default 0.1)
  --seed S             which conversations are held out (default "rounds"); the same seed, the same split
  --no-references      leave the quoted sources out of the prompts
  --dataset PATH       convert this dataset file, or the files under a folder (MedDialog, HealthCareMagic,
                       iCliniq, MASHQA…), instead
  --format F           the dataset's format when it cannot be told (${FORMATS.join(", ")})
  --source-name NAME   the dataset's name in the records' source field`;

async function main(): Promise<number> {
  const { values, positionals } = parseTaskArgs(() =>
    parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        out: { type: "string" },
        template: { type: "string" },
        model: { type: "string" },
        "test-fraction": { type: "string" },
        seed: { type: "string" },
        "no-references": { type: "boolean" },
        dataset: { type: "string" },
        format: { type: "string" },
        "source-name": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }), USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== "training") {
    throw new TaskExit(2, `Say what to export: training.\n\n${USAGE}`);
  }
  if (values.template && values.model) throw new TaskExit(2, "Give --template or --model, not both.");
  const testFraction = Number(values["test-fraction"] ?? 0.1);
  if (!(testFraction >= 0 && testFraction <= 0.5)) {
    throw new TaskExit(2, `--test-fraction must be a number from 0 to 0.5, got ${values["test-fraction"]}`);
  }
  const format = values.format as FormatName | undefined;
  if (format && !FORMATS.includes(format)) {
    throw new TaskExit(2, `--format must be one of ${FORMATS.join(", ")}, got ${format}`);
  }
  const config = loadConfig(Deno.env.toObject());
  const models = await loadModels(config, { readTextFile: Deno.readTextFile, env: Deno.env.toObject() })
    .catch((error) => {
      throw error instanceof ModelsError ? new TaskExit(1, error.message) : error;
    });
  const chosen = chooseTemplate(values.model ? `model:${values.model}` : values.template ?? null, models);
  if ("error" in chosen) throw new TaskExit(2, chosen.error);
  const seed = values.seed ?? "rounds";
  const out = values.out ?? `training-${new Date().toISOString().slice(0, 10)}`;
  await Deno.mkdir(out, { recursive: true });

  const files = new Map<string, Deno.FsFile>();
  const encoder = new TextEncoder();
  const write = async (kind: ExampleKind, split: Split, line: string) => {
    const name = `${kind}-${split}.jsonl`;
    let file = files.get(name);
    if (!file) {
      file = await Deno.open(join(out, name), { write: true, create: true, truncate: true });
      files.set(name, file);
    }
    const bytes = encoder.encode(line);
    for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
  };
  // Files from an earlier export into the same folder would otherwise sit beside this one's.
  for (const kind of ["sft", "preference"]) {
    for (const split of ["train", "test"]) {
      await Deno.remove(join(out, `${kind}-${split}.jsonl`)).catch(() => {});
    }
  }
  const writer = trainingWriter({ template: chosen.template, testFraction, seed, write });
  const systemPrompt = config.systemPrompt ?? DEFAULT_SYSTEM_PROMPT;
  let skipped: SkipCounts = {};
  let from: Record<string, unknown>;
  try {
    if (values.dataset) {
      const paths = await inputFiles(values.dataset).catch((error) => {
        if (error instanceof Deno.errors.NotFound) throw new TaskExit(1, `No such file: ${values.dataset}`);
        throw error;
      });
      const onSkip = (reason: string) => skipped[reason] = (skipped[reason] ?? 0) + 1;
      const formats: Record<string, string> = {};
      for (const path of paths) {
        const parsed = await parseFile(path, { format, sourceName: values["source-name"] }).catch((error) => {
          if (error instanceof UnknownFormatError) throw new TaskExit(1, error.message);
          throw error;
        });
        formats[path] = parsed.format;
        const examples = examplesFromDataset(parsed.events, { systemPrompt, fileName: path, onSkip });
        for await (const example of examples) await writer.add(example);
      }
      from = { dataset: values.dataset, formats };
    } else {
      const database = await openTaskDatabase(config);
      try {
        const result = await exportFeedback(database.db, writer, {
          systemPrompt,
          references: !values["no-references"],
        });
        skipped = result.skipped;
        from = { database: database.description, conversations: result.conversations };
      } finally {
        await database.close();
      }
    }
  } finally {
    for (const file of files.values()) file.close();
  }
  const { counts } = writer;
  const manifest = {
    created: new Date().toISOString(),
    from,
    template: chosen.name,
    shape: chosen.template.kind === "chat" ? "conversational" : "standard",
    system_prompt: chosen.template.kind === "raw" && chosen.template.omitsSystem ? null : systemPrompt,
    references: !values["no-references"] && !values.dataset,
    test_fraction: testFraction,
    seed,
    redaction: "identifiers replaced with placeholders (safety/phi.ts), one redactor per conversation",
    files: Object.fromEntries(
      (["sft", "preference"] as const).flatMap((kind) =>
        (["train", "test"] as const).map((split) => [`${kind}-${split}.jsonl`, counts.written[kind][split]])
      ).filter(([, n]) => (n as number) > 0),
    ),
    by_origin: counts.byOrigin,
    duplicates_dropped: counts.duplicates,
    skipped,
  };
  await Deno.writeTextFile(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");

  const w = counts.written;
  const total = w.sft.train + w.sft.test + w.preference.train + w.preference.test;
  console.log(`Wrote ${out}/ in the ${chosen.name} format:`);
  console.log(`  SFT:        ${w.sft.train} train, ${w.sft.test} held out`);
  console.log(`  preference: ${w.preference.train} train, ${w.preference.test} held out`);
  if (counts.duplicates) console.log(`  ${counts.duplicates} duplicate record(s) dropped`);
  for (const [reason, n] of Object.entries(skipped)) console.log(`  skipped ${n}: ${reason}`);
  if (total === 0) {
    console.log(
      values.dataset
        ? "Nothing to write: the file has no question-and-answer exchanges."
        : "Nothing to write yet: no reply has been marked good or corrected. Clinicians' thumbs and " +
          "corrections under answers become training data.",
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await runTask(main));
