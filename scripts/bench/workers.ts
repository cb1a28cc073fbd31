// One worker against two (WORKERS): client_credentials (opaque) at 50 connections against two
// servers on one PostgreSQL + Redis, alternated (1 2 1 2), with the CPU and peak RSS of each
// server's whole process tree (primary and workers) and the machine's CPU per request. With
// the load generator on the same cores, a second worker can only take what it leaves free.
import { hammer, opaqueClientCredentials, type Measurement } from './load.ts';
import { TOKEN_WARMUP } from './plan.ts';
import { fmt } from './format.ts';
import type { Cleanup } from './process.ts';
import { startSibling, startTarget, type Target } from './target.ts';

export const WORKER_COUNTS = [1, 2] as const;
const ROUNDS = 2;
const CONNECTIONS = 50;
const REQUESTS = 10_000;

export type WorkersRun = { workers: number; round: number; measurement: Measurement };
export type WorkersResult = { runs: WorkersRun[]; peakRssMiB: Record<number, number> };

export async function benchWorkers(
  cleanup: Cleanup,
  note: (line: string) => void,
): Promise<WorkersResult> {
  note('workers: starting WORKERS=1 and WORKERS=2 on one postgres+redis');
  // Outside production WORKERS defaults to 1.
  const one = await startTarget('postgres+redis', cleanup);
  const servers: Record<number, Target> = {
    1: one,
    2: await startSibling(one, { WORKERS: '2' }, cleanup),
  };
  const endpoint = (t: Target) => opaqueClientCredentials(t.url, t.service);
  // Over 10 connections: each of two workers gets five, and warms up.
  for (const n of WORKER_COUNTS) await hammer(endpoint(servers[n]!), 10, TOKEN_WARMUP);
  const runs: WorkersRun[] = [];
  for (let round = 1; round <= ROUNDS; round++)
    for (const workers of WORKER_COUNTS) {
      const server = servers[workers]!;
      const measurement = await hammer(endpoint(server), CONNECTIONS, REQUESTS, server.cpuMs);
      server.assertAlive();
      runs.push({ workers, round, measurement });
      note(`workers=${workers}, round ${round}: ${fmt(measurement.perSecond)}/s`);
    }
  const peakRssMiB = Object.fromEntries(WORKER_COUNTS.map((n) => [n, servers[n]!.peakRssMiB()]));
  return { runs, peakRssMiB };
}

/** The report's section: each run, and two workers' figures as a ratio to one's in the same round. */
export function workersReport(result: WorkersResult | undefined): string[] {
  if (!result?.runs.length) return [];
  const { runs, peakRssMiB } = result;
  const cells = (m: Measurement) => [
    fmt(m.perSecond),
    fmt(m.p99Ms, 1),
    fmt(m.serverCpuMs ?? NaN, 3),
    fmt(m.machineCpuMs ?? NaN, 3),
  ];
  const ratios = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const [a, b] = WORKER_COUNTS.map(
      (n) => runs.find((r) => r.round === round && r.workers === n)?.measurement,
    );
    if (a && b)
      ratios.push(
        `round ${round}: ${fmt(b.perSecond / a.perSecond, 2)}× the requests/s, ${fmt((b.serverCpuMs ?? NaN) / (a.serverCpuMs ?? NaN), 2)}× the server CPU per request`,
      );
  }
  return [
    '',
    `### WORKERS: 1 against 2, client_credentials (opaque) on postgres+redis, ${CONNECTIONS} conns, ${fmt(REQUESTS)} requests a run, alternated`,
    '',
    '| workers | round | req/s | p99 ms | server CPU ms each (tree) | machine CPU ms each |',
    '| --: | --: | --: | --: | --: | --: |',
    ...runs.map((r) => `| ${r.workers} | ${r.round} | ${cells(r.measurement).join(' | ')} |`),
    '',
    `Two workers against one: ${ratios.join('; ')}. Peak RSS of the process tree: ${WORKER_COUNTS.map((n) => `${n} worker${n > 1 ? 's' : ''} ${fmt(peakRssMiB[n]!)} MiB`).join(', ')} (each process's peak, summed).`,
  ];
}

export function workersFailures(result: WorkersResult | undefined): string[] {
  return (result?.runs ?? [])
    .filter(({ measurement: m }) => m.failed > 0)
    .map(
      ({ workers, measurement: m }) =>
        `FAILED: workers=${workers} client_credentials: ${m.failed} failures; first: ${m.firstFailure}`,
    );
}
