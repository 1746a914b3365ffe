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

/**
 * A process's CPU time in ms and its main thread's involuntary context switches (times the kernel took the core
 * away while it had work); null where /proc is missing (not Linux).
 */
export function processCpu(pid: number): { cpuMs: number; preempted: number } | null {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, in 1/100 s
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return { cpuMs: ticks * 10, preempted: Number(status.match(/nonvoluntary_ctxt_switches:\s+(\d+)/)?.[1]) };
  } catch {
    return null;
  }
}

/**
 * CPU time in ms of every process named `postgres` on this machine (a local server's backends; they are this
 * bench's only while nothing else uses Postgres). A backend that exits between two readings takes its time with
 * it: read both while the pool's connections stay open. Null where /proc is missing.
 */
export function postgresCpuMs(): number | null {
  try {
    let ms = 0;
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
        if (!stat.includes(" (postgres) ")) continue;
        const fields = stat.split(") ")[1].split(" ");
        ms += (Number(fields[11]) + Number(fields[12])) * 10;
      } catch { /* it exited */ }
    }
    return ms;
  } catch {
    return null;
  }
}
