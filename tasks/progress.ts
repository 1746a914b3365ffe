/**
 * Progress for long command-line work: a redrawn bar with rate and ETA on a terminal, plain lines every few
 * seconds otherwise (CI logs, pipes). Writes to stderr so stdout stays clean for results.
 */

/** A running progress display. */
export interface Progress {
  /** Reports how far the work is: `done` of `total` units (total may be unknown), plus a short detail. */
  update(done: number, detail?: string, fraction?: number): void;
  /** Clears the bar (the caller prints the summary). */
  finish(): void;
}

const encoder = new TextEncoder();

/** Formats seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** Starts a progress display for `label`, counting `unit`s (without a unit: no counts, only the time). */
export function startProgress(
  label: string,
  options: {
    unit?: string;
    total?: number;
    terminal?: boolean;
    intervalMs?: number;
    /** Where the display goes (stderr unless given). */
    write?: (text: string) => void;
  } = {},
): Progress {
  const terminal = options.terminal ?? Deno.stderr.isTerminal();
  const interval = options.intervalMs ?? (terminal ? 100 : 5000);
  const started = performance.now();
  // A terminal gets the bar at once; a log gets its first line only if the work lasts a while.
  let last = terminal ? 0 : started;
  let drawn = false;
  const write = options.write ?? ((text: string) => Deno.stderr.writeSync(encoder.encode(text)));
  return {
    update(done, detail = "", fraction) {
      const now = performance.now();
      if (now - last < interval) return;
      last = now;
      const elapsed = (now - started) / 1000;
      const rate = elapsed > 0 ? done / elapsed : 0;
      const part = fraction ?? (options.total ? done / options.total : undefined);
      const eta = part && part > 0 ? elapsed * (1 - part) / part : NaN;
      const counts = options.unit
        ? `${done.toLocaleString("en")}${options.total ? `/${options.total.toLocaleString("en")}` : ""} ` +
          `${options.unit} · ${Math.round(rate).toLocaleString("en")}/s`
        : "";
      const timing = part === undefined
        ? formatDuration(elapsed)
        : `${options.unit ? "" : `${formatDuration(elapsed)} · `}ETA ${formatDuration(eta)}`;
      if (terminal) {
        const width = 24;
        const bar = part === undefined
          ? ""
          : `[${"#".repeat(Math.round(Math.min(1, part) * width)).padEnd(width, "-")}] ${
            Math.floor(Math.min(1, part) * 100)
          }%`;
        const columns = (() => {
          try {
            return Deno.consoleSize().columns;
          } catch {
            return 120;
          }
        })();
        const line = [label + (bar ? ` ${bar}` : ""), counts, timing, detail].filter(Boolean).join(" · ");
        write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
        drawn = true;
      } else {
        const percent = part === undefined ? "" : `${Math.floor(Math.min(1, part) * 100)}%`;
        const amount = counts && percent ? `${counts} (${percent})` : counts || percent;
        write(`${label}: ${[amount, timing, detail].filter(Boolean).join(" · ")}\n`);
      }
    },
    finish() {
      if (terminal && drawn) write("\r\x1b[2K");
    },
  };
}
