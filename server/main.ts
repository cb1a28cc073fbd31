import './thread-pool.ts';
import './heap-growth.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { withDevSecrets } from '../config/dev-secrets.ts';
import { createLogger } from './log.ts';
import { usesRedis } from './redis.ts';
import { startLatchkey } from './server.ts';

let config;
try {
  config = loadConfig(withDevSecrets(process.env));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

// Tracing starts before the server opens anything; its SDK is loaded only when it is on.
const stopTracing = config.tracing.endpoint
  ? (await import('./tracing/sdk.ts')).startTracing(config)
  : undefined;

const log = createLogger(config.logLevel);
const running = await startLatchkey(config, log).catch((err: Error) => {
  log.fatal({ err }, 'could not start');
  console.error(`Latchkey could not start: ${err.message}`);
  process.exit(1);
});
const { admin, demoClient } = running.bootstrapReport;

// Printed to the terminal, not the log: the first-start password is shown exactly once.
const lines = [
  `Latchkey is up: issuer ${config.issuer} (listening on ${config.host}:${running.server.address() && (running.server.address() as { port: number }).port})`,
];
lines.push(
  `  storage: ${config.databaseUrl ? 'PostgreSQL server' : `PGlite in ${config.dataDir}/pglite`}${usesRedis(config) ? ' + Redis' : ''}`,
);
if (admin)
  lines.push(
    `  admin login created: ${admin.email} / ${admin.password ?? '(password from ADMIN_PASSWORD)'}  <- shown once`,
  );
if (demoClient)
  lines.push(
    `  demo client: client_id=${demoClient.clientId} client_secret=${demoClient.clientSecret} redirect_uri=${demoClient.redirectUri}`,
  );
lines.push(`  discovery: ${config.issuer}/.well-known/openid-configuration`);
console.log(lines.join('\n'));

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
