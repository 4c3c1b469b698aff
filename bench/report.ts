// Shared output of the benchmarks: an aligned table for people and one JSON
// line per result for machines, each with the machine's load average (these
// machines are shared: a figure means little without the load it was taken at).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

export type Result = { bench: string } & Record<string, string | number>;

/** A process's own CPU time (utime + stime, ms; clock ticks are 100 Hz on Linux) and RSS, from /proc. */
export function procStat(pid: number): { cpuMs: number; rssMb: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpuMs: (Number(f[11]) + Number(f[12])) * 10, rssMb: Number(rss) / 1024 };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

/** Prints the rows as a table and as JSON lines; a row without `load1` gets the 1-minute load average now. */
export function report(title: string, rows: Result[]): void {
  if (rows.length === 0) return;
  const [load1, load5, load15] = loadavg().map((l) => Math.round(l * 100) / 100) as [number, number, number];
  rows = rows.map((r) => ('load1' in r ? r : { ...r, load1 }));
  const cols = Object.keys(rows[0] as Result).filter((c) => c !== 'bench');
  const table = [cols, ...rows.map((r) => cols.map((c) => String(r[c])))];
  const widths = cols.map((_, i) => Math.max(...table.map((r) => (r[i] as string).length)));
  process.stdout.write(`\n${title}\n  (load average ${load1} ${load5} ${load15}, ${new Date().toISOString()})\n`);
  for (const r of table) process.stdout.write(`  ${r.map((c, i) => c.padEnd(widths[i] as number)).join('  ')}\n`);
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
}
