import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startChildServer } from '../support/child-server.ts';
import { freshPostgresUrl, freshRedisUrl } from '../support/databases.ts';

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
