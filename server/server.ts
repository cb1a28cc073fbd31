import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/load.ts';
import { sweepExpired } from '../adapters/postgres.ts';
import { openMemoryStore } from '../adapters/write-behind.ts';
import { sweepGivenUpMail } from './mail/outbox-store.ts';
import { buildApp, type Latchkey } from './app.ts';
import { startAuditRetention } from './audit/retention.ts';
import { bootstrap, type BootstrapReport } from './bootstrap.ts';
import { closeDb, openDb } from './db.ts';
import { migrate } from './migrate.ts';
import { withAdvisoryLock } from './locks.ts';
import { startDirectorySync } from './ldap/directory.ts';
import { closeRedis, openRedis } from './redis.ts';
import { resealLegacy } from './security/reseal.ts';
import { openIpLocation } from './ip-location.ts';
import type { Logger } from './log.ts';
import type { MetricsListener } from './metrics/listener.ts';
import { createMetrics, NO_METRICS } from './metrics/metrics.ts';

const KEEP_ALIVE_MS = 65_000;
/** While closing, how often connections that finished their response are closed. */
const IDLE_SWEEP_MS = 100;
/**
 * Embedded: how long a change to short-lived state waits to be written to the database, with the
 * others of that time in one statement. A process killed outright loses at most this much; a
 * stop writes everything first.
 */
const WRITE_BEHIND_MS = 200;

export type Running = Latchkey & {
  url: string;
  server: Server;
  bootstrapReport: BootstrapReport;
  /** The Prometheus endpoint (METRICS_PORT), when metrics are on. */
  metricsUrl: string | undefined;
  /** Graceful stop: refuse new connections, let in-flight requests finish, close the pools. */
  close(): Promise<void>;
};

/**
 * Opens storage, migrates, builds the app and listens; the one way a Latchkey process starts.
 * `worker`: a cluster worker (WORKERS > 1), whose primary serves METRICS_PORT with the figures
 * this process gives it (cluster/metrics.ts).
 */
export async function startLatchkey(
  config: Config,
  log: Logger,
  { worker = false } = {},
): Promise<Running> {
  // First: a GEOIP_DB that cannot be read stops the start before any storage is touched.
  const ipLocation = await openIpLocation(config.geoipDb);
  const storage = { databaseUrl: config.databaseUrl, dataDir: config.dataDir, log };
  // Migrating and resealing may rightly take longer than a request may wait: on PostgreSQL they
  // have a connection of their own, without the dependency timeout.
  const setupDb = config.databaseUrl ? await openDb({ ...storage, poolMax: 2 }) : undefined;
  const db = await openDb({
    ...storage,
    poolMax: config.databasePoolMax,
    timeoutMs: config.dependencyTimeoutMs,
  });
  // While Redis is away a command fails at once (no offline queue: a request would wait out
  // each of its commands in turn), and one that gets no answer fails after the dependency
  // timeout. Reconnects are tried often enough that requests and readiness recover within a
  // second of Redis coming back.
  const redis = openRedis(config, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 2,
    // A command may wait for the batch in flight before it (auto-pipelining) and then for its
    // own answer: each wait gets half, so that a Redis that hangs costs at most the timeout.
    commandTimeout: Math.ceil(config.dependencyTimeoutMs / 2),
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    // Commands issued in the same tick go in one write: introspection's two lookups, and those of
    // concurrent requests (−8% of introspection's server CPU, measured A/B).
    enableAutoPipelining: true,
  });
  // Without a listener ioredis prints every failed reconnect to stderr; /readyz reports the outage.
  redis?.on('error', (err: Error) => log.warn({ error: err.message }, 'redis connection error'));
  await redis?.connect();
  try {
    const applied = await migrate(setupDb ?? db);
    if (applied.length) log.info({ applied }, 'migrations applied');
    // One process at a time; one that finds the lock taken goes on (old values still open).
    const resealed = await withAdvisoryLock(setupDb ?? db, 'reseal', (trx) =>
      resealLegacy(trx, config.sealingKey),
    );
    if (resealed) log.info({ resealed }, 'sealed values bound to their rows');
  } finally {
    if (setupDb) await closeDb(setupDb);
  }

  // prom-client and the listener are loaded only when metrics are on.
  const exposition =
    config.metrics.port === undefined ? undefined : await import('./metrics/listener.ts');
  const metrics = exposition ? createMetrics({ prom: await import('prom-client') }) : NO_METRICS;
  if (exposition) exposition.collectProcessMetrics(metrics);
  // Embedded without Redis: this process is the only one, and keeps short-lived state itself.
  const shortLived =
    !config.databaseUrl && !redis
      ? await openMemoryStore(db, {
          intervalMs: WRITE_BEHIND_MS,
          // The message and SQLSTATE only: the statement's values are tokens and session ids.
          onError: (err) =>
            log.warn(
              { error: (err as Error).message, code: (err as { code?: string }).code },
              'short-lived state not yet written; will retry',
            ),
        })
      : undefined;
  const latchkey = await buildApp({
    config,
    db,
    redis,
    memory: shortLived?.store,
    log,
    ipLocation,
    metrics,
  });
  const bootstrapReport = await bootstrap(config, latchkey.users, latchkey.clients);

  const sweeper = setInterval(() => {
    withAdvisoryLock(db, 'sweep', async (trx) => {
      await latchkey.limits.sweep(trx);
      await sweepGivenUpMail(trx);
      await latchkey.tokens.sweep(trx);
      return sweepExpired(trx);
    })
      .then((n) => n && log.info({ deleted: n }, 'expired protocol rows swept'))
      .catch((err) => log.error({ err }, 'sweep failed'));
  }, config.sweepIntervalSeconds * 1000).unref();
  const auditRetention = startAuditRetention({ db, config, log });
  // Every process sends from the shared outbox: mail stored by one that stopped is sent by another.
  latchkey.mailer.start();

  const directorySync =
    latchkey.directory &&
    startDirectorySync({ directory: latchkey.directory, config: config.ldap!, log });

  const server = createServer(latchkey.app.callback());
  // Longer than load balancers' idle timeout (AWS ALB: 60 s), or the balancer may send a request
  // on a connection Node is closing (a 502). Idle connections are closed by close() at once.
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let metricsListener: MetricsListener | undefined;
  const stopAnswering =
    exposition && worker
      ? (await import('./cluster/metrics.ts')).answerScrapes(
          metrics,
          config.dependencyTimeoutMs,
          log,
        )
      : undefined;
  if (exposition && !worker) {
    metricsListener = await exposition.startMetricsListener({
      scrape: exposition.scrapeOf(metrics, config.dependencyTimeoutMs, log),
      host: config.metrics.host,
      port: config.metrics.port!,
      log,
    });
    log.info({ url: metricsListener.url }, 'metrics listening');
  }

  let closing: Promise<void> | undefined;
  async function close() {
    closing ??= (async () => {
      clearInterval(sweeper);
      const retentionStopped = auditRetention.stop();
      latchkey.keys.stop();
      const metricsClosed = metricsListener?.close();
      stopAnswering?.();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // A busy connection goes idle when its response ends: close it then, not a keep-alive later.
      const idleSweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
      const timer = setTimeout(
        () => server.closeAllConnections(),
        config.shutdownTimeoutSeconds * 1000,
      );
      await closed;
      await metricsClosed;
      clearInterval(idleSweep);
      clearTimeout(timer);
      await retentionStopped;
      await directorySync?.stop();
      await latchkey.close();
      await shortLived?.close();
      await closeDb(db);
      await closeRedis(redis);
    })();
    return closing;
  }

  return {
    ...latchkey,
    url: `http://127.0.0.1:${port}`,
    server,
    bootstrapReport,
    metricsUrl: metricsListener?.url,
    close,
  };
}
