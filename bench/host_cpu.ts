/**
 * The machine's CPU time counters, for benchmarks on a shared host: how much CPU work a phase took machine-wide
 * (other processes included, such as Postgres's workers), and how much the hypervisor took away meanwhile.
 */

/** The machine's CPU time counters (user … steal, in 1/100 s) from /proc/stat; null where there is none. */
export function cpuTimes(): number[] | null {
  try {
    return Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1, 9).map(Number);
  } catch {
    return null;
  }
}

/** CPU time the hypervisor gave to other guests between two readings, as a share of all CPU time. */
export function stealPercent(before: number[] | null, after: number[] | null): number | null {
  if (!before || !after) return null;
  const total = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
  return total > 0 ? (100 * (after[7] - before[7])) / total : null;
}

/** CPU seconds the machine spent busy (not idle, waiting or stolen) between two readings; NaN without them. */
export function busySeconds(before: number[] | null, after: number[] | null): number {
  if (!before || !after) return NaN;
  const busy = (t: number[]) => t[0] + t[1] + t[2] + t[5] + t[6]; // user, nice, system, irq, softirq
  return (busy(after) - busy(before)) / 100; // USER_HZ is 100 on Linux
}
