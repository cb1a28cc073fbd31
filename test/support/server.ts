import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../server/log.ts';
import { startLatchkey, type Running } from '../../server/server.ts';
import { freshPostgresUrl, freshRedisUrl } from './databases.ts';
import { freePort } from './services.ts';

export type Storage = 'embedded' | 'postgres+redis';
export const STORAGES: Storage[] = ['embedded', 'postgres+redis'];

export const TEST_SECRETS = {
  SEALING_KEY: Buffer.alloc(32, 7).toString('base64'),
  COOKIE_KEYS: 'test-cookie-key-0123456789abcdefghijklmnop',
};

export type TestServer = Running & {
  env: Record<string, string>;
  logs: string[];
  cleanup(): Promise<void>;
};

/** Environment for a server on fresh storage of the given kind (a new PGlite folder, or new databases). */
export async function storageEnv(storage: Storage): Promise<Record<string, string>> {
  if (storage === 'embedded') return { DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-data-')) };
  return {
    DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-data-')),
    DATABASE_URL: await freshPostgresUrl(),
    REDIS_URL: await freshRedisUrl(),
  };
}

/** Starts a real server on a free loopback port; log lines are kept in `logs` for assertions. */
export async function startTestServer(env: Record<string, string>): Promise<TestServer> {
  const port = Number(env.PORT ?? (await freePort()));
  const fullEnv: Record<string, string> = {
    ...TEST_SECRETS,
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    ISSUER: `http://127.0.0.1:${port}`,
    LOG_LEVEL: 'info',
    ADMIN_PASSWORD: 'admin-password-for-tests',
    ...env,
  };
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const running = await startLatchkey(loadConfig(fullEnv), createLogger(fullEnv.LOG_LEVEL!, sink));
  return Object.assign(running, {
    env: fullEnv,
    logs,
    async cleanup() {
      await running.close();
      rmSync(fullEnv.DATA_DIR!, { recursive: true, force: true });
    },
  });
}
