import './thread-pool.ts';
import './heap-growth.ts';
import cluster from 'node:cluster';
import { ConfigError, loadConfig } from '../config/load.ts';
import { withDevSecrets } from '../config/dev-secrets.ts';
import { startBanner } from './banner.ts';
import { announceReady } from './cluster/ready.ts';
import { createLogger } from './log.ts';

let config;
try {
  config = loadConfig(withDevSecrets(process.env));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

// WORKERS > 1: this process forks the workers and watches over them; each worker (a fork of
// this same module, cluster.isWorker) then runs the server as a single process would.
const worker = cluster.isWorker;
const clustered = config.workers > 1 || worker;
// With several processes writing to one terminal, each line says whose it is.
const log = clustered
  ? createLogger(config.logLevel).child({ pid: process.pid })
  : createLogger(config.logLevel);

if (clustered && !worker) {
  const { runPrimary } = await import('./cluster/primary.ts');
  await runPrimary(config, log).catch((err: Error) => {
    log.fatal({ err }, 'could not start');
    console.error(`Latchkey could not start: ${err.message}`);
    process.exit(1);
  });
} else {
  // Loaded here, not by the primary: it serves no request, and stays small.
  const { startLatchkey } = await import('./server.ts');
  // Tracing starts before the server opens anything; its SDK is loaded only when it is on.
  const stopTracing = config.tracing.endpoint
    ? (await import('./tracing/sdk.ts')).startTracing(config)
    : undefined;

  const running = await startLatchkey(config, log, { worker }).catch((err: Error) => {
    log.fatal({ err }, 'could not start');
    console.error(`Latchkey could not start: ${err.message}`);
    process.exit(1);
  });
  const { port } = running.server.address() as { port: number };
  // A worker's primary prints the banner, once for all of them.
  if (worker) announceReady(port, running.bootstrapReport);
  else console.log(startBanner(config, port, running.bootstrapReport));

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'shutting down');
      running
        .close()
        // The spans still in the batch are sent before the process ends.
        .then(() => stopTracing?.())
        .then(
          () => process.exit(0),
          (err) => {
            log.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
    });
  }
}
