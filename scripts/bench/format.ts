// Number and table formatting for the benchmark's markdown report.
import type { Measurement } from './load.ts';

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A rate: one decimal below 100/s. */
export const rate = (perSecond: number) => fmt(perSecond, perSecond < 100 ? 1 : 0);

/** A ratio to a reference, as "0.78×". */
export const times = (ratio: number | undefined) =>
  ratio === undefined ? '–' : `${fmt(ratio, 2)}×`;

/** A markdown table; the first `textColumns` columns are left-aligned, the rest are numbers. */
export function table(header: string[], rows: string[][], textColumns = 2): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rule = header.map((_, i) => (i < textColumns ? '---' : '--:'));
  return [line(header), line(rule), ...rows.map(line)].join('\n');
}

export const CPU_COLUMNS = ['server CPU ms each', 'bench CPU ms each', 'machine CPU ms each'];

/** Count, rate, p50, p99, failed: the columns after the concurrency. */
export function resultCells(m: Measurement): string[] {
  return [fmt(m.count), rate(m.perSecond), fmt(m.p50Ms, 1), fmt(m.p99Ms, 1), String(m.failed)];
}

export function cpuCells(m: Measurement): string[] {
  return [
    m.serverCpuMs === undefined ? '–' : fmt(m.serverCpuMs, 2),
    fmt(m.benchCpuMs, 2),
    m.machineCpuMs === undefined ? '–' : fmt(m.machineCpuMs, 2),
  ];
}

export function measurementCells(m: Measurement): string[] {
  return [String(m.concurrency), ...resultCells(m), ...cpuCells(m)];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
