import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import { withDeadline } from '../../adapters/outages.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';

export type MetricsListener = { url: string; close(): Promise<void> };

/**
 * Serves GET /metrics (Prometheus text format) on a listener of its own (METRICS_PORT), apart
 * from the public one: the metrics say much about the traffic (failure rates, clients' volume),
 * and a port the TLS proxy does not route needs no secret shared with Prometheus, escapes the
 * public rate limits and answers while the public side is busy. Each sampler gets `timeoutMs`:
 * a dependency that hangs leaves its gauges stale, the scrape answers all the same.
 */
export async function startMetricsListener({
  metrics,
  host,
  port,
  timeoutMs,
  log,
}: {
  metrics: Metrics;
  host: string;
  port: number;
  timeoutMs: number;
  log: Logger;
}): Promise<MetricsListener> {
  const registry = metrics.registry!;
  // Event loop lag, heap, GC, CPU and file descriptors, from prom-client.
  // Event loop lag sampled every 100 ms, not prom-client's 10: at 10 the sampling cost 5-14%
  // of client_credentials throughput in the bench (three runs), at 100 none measurable (two),
  // and a lag worth an alert lasts far longer than 100 ms.
  client.collectDefaultMetrics({
    register: registry,
    prefix: 'latchkey_',
    eventLoopMonitoringPrecision: 100,
  });

  const server = createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://x').pathname !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    void (async () => {
      await Promise.all(
        metrics.samplers.map((sample) =>
          withDeadline(Promise.resolve().then(sample), timeoutMs, 'metrics sample').catch(
            (err: Error) => log.warn({ error: err.message }, 'metrics sample failed'),
          ),
        ),
      );
      const body = await registry.metrics();
      res.writeHead(200, { 'Content-Type': registry.contentType }).end(body);
    })().catch((err: unknown) => {
      log.error({ err }, 'metrics scrape failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
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
