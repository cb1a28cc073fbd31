import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import { withDeadline } from '../../adapters/outages.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';

export type MetricsListener = { url: string; close(): Promise<void> };

/** What a scrape answers: the Prometheus text and its content type. */
export type Scrape = { contentType: string; body: string };

/** Event loop lag, heap, GC, CPU and file descriptors of this process, from prom-client. */
export function collectProcessMetrics(metrics: Metrics): void {
  // Event loop lag sampled every 100 ms, not prom-client's 10: at 10 the sampling cost 5-14%
  // of client_credentials throughput in the bench (three runs), at 100 none measurable (two),
  // and a lag worth an alert lasts far longer than 100 ms.
  client.collectDefaultMetrics({
    register: metrics.registry!,
    prefix: 'latchkey_',
    eventLoopMonitoringPrecision: 100,
  });
}

/**
 * Runs the samplers, then reads the registry. Each sampler gets `timeoutMs`: a dependency that
 * hangs leaves its gauges stale, the scrape answers all the same.
 */
export async function sampledRegistry(
  metrics: Metrics,
  timeoutMs: number,
  log: Logger,
): Promise<client.Registry> {
  await Promise.all(
    metrics.samplers.map((sample) =>
      withDeadline(Promise.resolve().then(sample), timeoutMs, 'metrics sample').catch(
        (err: Error) => log.warn({ error: err.message }, 'metrics sample failed'),
      ),
    ),
  );
  return metrics.registry!;
}

/** This process's scrape: its samplers run, its registry read. */
export function scrapeOf(metrics: Metrics, timeoutMs: number, log: Logger) {
  return async (): Promise<Scrape> => {
    const registry = await sampledRegistry(metrics, timeoutMs, log);
    return { contentType: registry.contentType, body: await registry.metrics() };
  };
}

/**
 * Serves GET /metrics (Prometheus text format) on a listener of its own (METRICS_PORT), apart
 * from the public one: the metrics say much about the traffic (failure rates, clients' volume),
 * and a port the TLS proxy does not route needs no secret shared with Prometheus, escapes the
 * public rate limits and answers while the public side is busy. `scrape` gives the answer: this
 * process's figures, or with WORKERS the workers' summed (server/cluster/metrics.ts).
 */
export async function startMetricsListener({
  scrape,
  host,
  port,
  log,
}: {
  scrape: () => Promise<Scrape>;
  host: string;
  port: number;
  log: Logger;
}): Promise<MetricsListener> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://x').pathname !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    scrape().then(
      ({ contentType, body }) => res.writeHead(200, { 'Content-Type': contentType }).end(body),
      (err: unknown) => {
        log.error({ err }, 'metrics scrape failed');
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/metrics`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
