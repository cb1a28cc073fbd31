import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { afterAll, describe, expect, it } from 'vitest';
import { healthRouter } from '../../server/health.ts';
import { createLogger } from '../../server/log.ts';
import { useSlapdDirectory } from '../support/directory.ts';

describe('/readyz with a directory configured', () => {
  const fixture = useSlapdDirectory();
  const servers: Server[] = [];
  afterAll(async () => {
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
  });

  /** GET /readyz of a health router over the test database and directory. */
  async function readyz(required: boolean) {
    const app = new Koa();
    const ldap = { check: () => fixture.t.directory.check(), required };
    app.use(healthRouter({ db: fixture.t.db, ldap, log: createLogger('silent') }).routes());
    const server = createServer(app.callback()).listen(0, '127.0.0.1');
    servers.push(server);
    await new Promise((resolve) => server.once('listening', resolve));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`);
    return { status: res.status, body: await res.json() };
  }

  it('reports the directory check, failing readiness only when LDAP_READINESS_REQUIRED', async () => {
    expect(await readyz(false)).toEqual({
      status: 200,
      body: { status: 'ok', checks: { database: 'ok', ldap: 'ok' } },
    });
    await fixture.slapd.stop();
    try {
      expect(await readyz(false)).toEqual({
        status: 200,
        body: { status: 'ok', checks: { database: 'ok', ldap: 'fail' } },
      });
      expect(await readyz(true)).toEqual({
        status: 503,
        body: { status: 'fail', checks: { database: 'ok', ldap: 'fail' } },
      });
    } finally {
      await fixture.slapd.start();
    }
    expect((await readyz(true)).status).toBe(200);
  });
});
