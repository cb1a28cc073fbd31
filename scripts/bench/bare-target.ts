// Starts the bare oidc-provider reference (bare-provider.ts) as a child process, with its own
// Redis in the Redis mode, and the same user and client shapes as Latchkey's targets.
import { randomBytes } from 'node:crypto';
import { defaults } from '../../config/defaults.ts';
import { freePort, startRedis } from '../../test/support/services.ts';
import type { BareConfig } from './bare-provider.ts';
import { ARGON2 } from './plan.ts';
import { startServerProcess, type Cleanup, type ServerProcess } from './process.ts';
import { REDIRECT_URI, USER, type Client } from './target.ts';

export type BareMode = 'in-memory' | 'redis';

export type BareTarget = ServerProcess & {
  mode: BareMode;
  url: string;
  web: Client;
  service: Client;
};

const client = (id: string): Client => ({ id, secret: randomBytes(24).toString('base64url') });

export async function startBare(mode: BareMode, cleanup: Cleanup): Promise<BareTarget> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let redisUrl: string | undefined;
  if (mode === 'redis') {
    const redis = await startRedis();
    cleanup.defer(() => redis.stop());
    redisUrl = redis.url;
  }
  const config: BareConfig = {
    issuer: url,
    port,
    service: client('bench-service'),
    web: client('bench-web'),
    redirectUri: REDIRECT_URI,
    user: USER,
    argon2: ARGON2,
    // Latchkey's default lifetimes.
    ttl: {
      AccessToken: defaults.ACCESS_TOKEN_TTL,
      ClientCredentials: defaults.CLIENT_CREDENTIALS_TTL,
      AuthorizationCode: defaults.AUTHORIZATION_CODE_TTL,
      IdToken: defaults.ID_TOKEN_TTL,
      Interaction: defaults.INTERACTION_TTL,
      Session: defaults.SESSION_TTL,
      Grant: defaults.GRANT_TTL,
    },
    redisUrl,
  };
  const server = await startServerProcess(
    'scripts/bench/bare-provider.ts',
    { PATH: process.env.PATH ?? '', BARE_CONFIG: JSON.stringify(config) },
    `${url}/.well-known/openid-configuration`,
    cleanup,
  );
  return { mode, url, web: config.web, service: config.service, ...server };
}
