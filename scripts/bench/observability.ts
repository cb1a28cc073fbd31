// What metrics and tracing cost: client_credentials against a server with neither, one with
// METRICS_PORT set and one with OTEL_EXPORTER_OTLP_ENDPOINT set (a receiver in this process that
// accepts and drops), all on one PostgreSQL + Redis, alternated round by round.
import { startOtlpReceiver } from '../../test/support/otlp-receiver.ts';
import { hammer, opaqueClientCredentials, type Measurement } from './load.ts';
import {
  METRICS_MAX_COST,
  OBSERVABILITY,
  OBSERVABILITY_CONNECTIONS,
  OBSERVABILITY_REQUESTS,
  OBSERVABILITY_ROUNDS,
  OBSERVABILITY_WARMUP,
  type Observability,
  type Results,
} from './plan.ts';
import { fmt, median } from './format.ts';
import type { Cleanup } from './process.ts';
import { startSibling, startTarget, type Target } from './target.ts';

export async function benchObservability(
  results: Results,
  cleanup: Cleanup,
  note: (line: string) => void,
): Promise<void> {
  note('observability: starting three servers on postgres+redis');
  const off = await startTarget('postgres+redis', cleanup);
  const receiver = await startOtlpReceiver({ keep: false });
  cleanup.defer(() => receiver.close());
  const servers: Record<Observability, Target> = {
    off,
    'metrics on': await startSibling(
      off,
      { METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' },
      cleanup,
    ),
    'tracing on': await startSibling(
      off,
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint },
      cleanup,
    ),
  };
  const endpoint = (t: Target) => opaqueClientCredentials(t.url, t.service);
  for (const variant of OBSERVABILITY)
    await hammer(endpoint(servers[variant]), OBSERVABILITY_CONNECTIONS, OBSERVABILITY_WARMUP);
  for (let round = 0; round < OBSERVABILITY_ROUNDS; round++) {
    const order = OBSERVABILITY.map((_, i) => OBSERVABILITY[(i + round) % OBSERVABILITY.length]!);
    for (const variant of order) {
      const server = servers[variant];
      const measurement = await hammer(
        endpoint(server),
        OBSERVABILITY_CONNECTIONS,
        OBSERVABILITY_REQUESTS,
        server.cpuMs,
      );
      server.assertAlive();
      results.observability.push({ variant, measurement });
      note(`observability round ${round + 1}, ${variant}: ${fmt(measurement.perSecond)}/s`);
    }
  }
}

/**
 * The report's section. A ratio is taken within each round, between runs minutes apart at
 * most, and the median over rounds is reported: the machine's load drifts more between rounds
 * (another process, the JIT still warming) than the thing measured.
 */
export function observabilityReport(results: Results): string[] {
  if (!results.observability.length) return [];
  const rounds = OBSERVABILITY.map((variant) =>
    results.observability.filter((r) => r.variant === variant).map((r) => r.measurement),
  );
  const [off] = rounds;
  const ratio = (runs: Measurement[], of: (m: Measurement) => number) =>
    median(runs.map((m, round) => of(m) / of(off![round]!)));
  const rows = OBSERVABILITY.map((variant, i) => {
    const runs = rounds[i]!;
    return [
      variant,
      fmt(median(runs.map((m) => m.perSecond))),
      fmt(
        ratio(runs, (m) => m.perSecond),
        3,
      ),
      fmt(median(runs.map((m) => m.serverCpuMs ?? 0)), 3),
      fmt(
        ratio(runs, (m) => m.serverCpuMs ?? 0),
        3,
      ),
    ];
  });
  const metricsCost = 1 - ratio(rounds[1]!, (m) => m.perSecond);
  return [
    '',
    `### Metrics and tracing against off: client_credentials (opaque) on postgres+redis, ${OBSERVABILITY_CONNECTIONS} conns, ${OBSERVABILITY_ROUNDS} rounds of ${fmt(OBSERVABILITY_REQUESTS)} requests each, the order rotated every round (medians over the rounds)`,
    '',
    '| server | req/s | throughput vs off | server CPU ms each | CPU vs off |',
    '| --- | --: | --: | --: | --: |',
    ...rows.map((cells) => `| ${cells.join(' | ')} |`),
    '',
    `Metrics cost ${fmt(metricsCost * 100, 1)}% of throughput (bound: ${fmt(METRICS_MAX_COST * 100)}%): ${metricsCost <= METRICS_MAX_COST ? 'met' : '**not met**'}.`,
  ];
}
