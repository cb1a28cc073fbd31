// Latchkey's rows as ratios to the bare oidc-provider's, taken between runs of the same point and
// round (minutes apart at most), so that a noisy machine moves both sides alike.
import type { Measurement } from './load.ts';
import { median } from './format.ts';
import { REFERENCE, type Run, type ServerName } from './plan.ts';

const samePoint = (a: Run, b: Run) =>
  a.name === b.name &&
  a.round === b.round &&
  a.measurement.concurrency === b.measurement.concurrency;

/** Throughput of a Latchkey run over its reference's at the same point and round. */
export function ratioToReference(runs: Run[], run: Run): number | undefined {
  const reference = REFERENCE[run.name];
  if (!reference || run.server.startsWith('bare')) return undefined;
  const ref = runs.find((r) => r.server === reference && samePoint(r, run));
  return ref ? run.measurement.perSecond / ref.measurement.perSecond : undefined;
}

/** One server's figures at one point, over its rounds: medians (with two rounds, the mean). */
export type PointSummary = {
  rounds: Measurement[];
  perSecond: number;
  p99Ms: number;
  serverCpuMs: number | undefined;
  /** The median of the rounds' ratios to the reference, each within its round. */
  ratio: number | undefined;
};

export function summarize(
  runs: Run[],
  server: ServerName,
  name: string,
  concurrency: number,
): PointSummary | undefined {
  const mine = runs.filter(
    (r) => r.server === server && r.name === name && r.measurement.concurrency === concurrency,
  );
  if (!mine.length) return undefined;
  const rounds = mine.map((r) => r.measurement);
  const ratios = mine.map((r) => ratioToReference(runs, r)).filter((x) => x !== undefined);
  const cpu = rounds.map((m) => m.serverCpuMs).filter((x) => x !== undefined);
  return {
    rounds,
    perSecond: median(rounds.map((m) => m.perSecond)),
    p99Ms: median(rounds.map((m) => m.p99Ms)),
    serverCpuMs: cpu.length ? median(cpu) : undefined,
    ratio: ratios.length === mine.length ? median(ratios) : undefined,
  };
}

/** A server's fastest run of `name` (flows: the best worker count). */
export function fastest(runs: Run[], server: ServerName, name: string): Run | undefined {
  return runs
    .filter((r) => r.server === server && r.name === name)
    .sort((a, b) => b.measurement.perSecond - a.measurement.perSecond)[0];
}
