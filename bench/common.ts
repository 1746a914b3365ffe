/** What every bench reads the same way: its `--name value` arguments, and percentiles of its timings. */

/** The command line's `--name value` pairs (a flag with no value maps to ""). */
export function benchArgs(argv: readonly string[] = Deno.args): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) args.set(argv[i].slice(2), argv[i + 1] ?? "");
  }
  return args;
}

/** The p-th percentile (0–100) of values, nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
