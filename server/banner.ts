import type { Config } from '../config/load.ts';
import type { BootstrapReport } from './bootstrap.ts';
import { usesRedis } from './redis.ts';

/**
 * What a server prints to the terminal (not the log) once it is up: where it listens, on what
 * storage, and on first start the admin's login; that password is shown exactly once.
 */
export function startBanner(config: Config, port: number, report: BootstrapReport): string {
  const { admin, demoClient } = report;
  const workers = config.workers > 1 ? `, ${config.workers} workers` : '';
  const lines = [
    `Latchkey is up: issuer ${config.issuer} (listening on ${config.host}:${port}${workers})`,
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
  return lines.join('\n');
}
