import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import { describe, expect, it } from 'vitest';
import { startChildServer } from '../support/child-server.ts';
import { freshPostgresUrl, freshRedisUrl } from '../support/databases.ts';
import { startTestServer } from '../support/server.ts';

describe('several processes starting at once on a fresh PostgreSQL', () => {
  it('all come up: migrations and the first signing keys are done once, by one of them', async () => {
    const env = { DATABASE_URL: await freshPostgresUrl(), REDIS_URL: await freshRedisUrl() };
    const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'latchkey-race-')));
    const servers = await Promise.all(
      dirs.map((DATA_DIR) => startChildServer({ ...env, DATA_DIR })),
    );
    try {
      const jwks = await Promise.all(
        servers.map(
          async (s) => (await (await fetch(`${s.url}/jwks`)).json()) as { keys: { kid: string }[] },
        ),
      );
      const kids = jwks.map((j) =>
        j.keys
          .map((k) => k.kid)
          .sort()
          .join(),
      );
      expect(jwks[0]!.keys).toHaveLength(3); // one key per algorithm, not one set per process
      expect(new Set(kids).size).toBe(1);
    } finally {
      for (const server of servers) expect(await server.stop()).toBe(0);
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a process starting while another holds the signing-key lock', () => {
  it('waits its turn rather than failing on the dependency timeout', async () => {
    const env = { DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-race-')) };
    const url = await freshPostgresUrl();
    // Another process creating the first keys (RSA generation on a busy machine) holds the lock.
    const other = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
    await other.raw(`SELECT pg_advisory_lock(hashtext('latchkey:keys'))`);
    const released = new Promise((r) => setTimeout(r, 2500)).then(() =>
      other.raw(`SELECT pg_advisory_unlock(hashtext('latchkey:keys'))`),
    );
    try {
      const server = await startTestServer({
        ...env,
        DATABASE_URL: url,
        DEPENDENCY_TIMEOUT_MS: '1000',
      });
      try {
        expect((await fetch(`${server.url}/jwks`)).status).toBe(200);
      } finally {
        await server.cleanup();
      }
    } finally {
      await released;
      await other.destroy();
    }
  });
});
