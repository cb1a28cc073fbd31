import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, hiddenInput } from '../support/browser.ts';
import { freshPostgresUrl } from '../support/databases.ts';
import { REDIRECT_URI, relyingParty, signIn, tokenRequest } from '../support/relying-party.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startRedis, type RestartableService } from '../support/services.ts';

// A second attack review of the account center (issue 14): Redis failing in the middle of a
// page's change. A Redis of its own, as the fault (CLIENT PAUSE) stops every client of it.

const USER = { email: 'half.done@example.test', password: 'a long enough password for this' };
const TIMEOUT_MS = 500;

describe('the sessions page when Redis stops taking writes mid-request', () => {
  let redis: RestartableService;
  let control: Redis;
  let server: TestServer;
  let app: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    redis = await startRedis();
    control = new Redis(redis.url);
    server = await startTestServer({
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-data-')),
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_URL: redis.url,
      DEPENDENCY_TIMEOUT_MS: String(TIMEOUT_MS),
      MFA_POLICY: 'off',
    });
    await server.users.create({ ...USER, emailVerified: true });
    const created = await server.clients.create({ name: 'App', redirectUris: [REDIRECT_URI] });
    app = { clientId: created.clientId, clientSecret: created.clientSecret! };
  });
  afterAll(async () => {
    await control?.quit();
    await server?.cleanup();
    await redis?.stop();
  });

  const handles = (html: string) =>
    [...html.matchAll(/name="session" value="([^"]*)"/g)].map((m) => m[1]!);

  it('ending a session is done whole or not at all: never hidden from the list with its apps still signed in', async () => {
    const rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    // The browser to end signed in to the app there alone: its refresh token goes with it.
    const stolen = new Browser();
    const { refresh_token: refreshToken } = await signIn(rp, stolen, server.url, USER);
    const owner = new Browser();
    await signIn(rp, owner, server.url, USER);

    const page = await (await owner.get(`${server.url}/account/sessions`)).text();
    const [handle] = handles(page);
    expect(handles(page)).toHaveLength(1);

    // Redis answers reads (the session loads, the page is served) but holds every write.
    await control.call('CLIENT', 'PAUSE', '4000', 'WRITE');
    let status: number;
    try {
      const res = await owner.post(`${server.url}/account/sessions/end`, {
        csrf: hiddenInput(page, 'csrf'),
        session: handle!,
      });
      status = res.status;
    } finally {
      await control.call('CLIENT', 'UNPAUSE');
    }
    // Done (the end commits in PostgreSQL; deleting the session is clean-up) or refused.
    expect([303, 503]).toContain(status);

    // Redis is back. Either nothing was done, and the user can end the session again from the
    // list; or it was all done, and the app's refresh token of that browser no longer works.
    const listed = handles(await (await owner.get(`${server.url}/account/sessions`)).text());
    const refresh = await tokenRequest(server.url, app, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken!,
    });
    const ended = await server.db('audit_events').where({ type: 'session_ended' });
    expect({
      listedAgain: listed.includes(handle!),
      refreshStillWorks: refresh.status === 200,
      audited: ended.length === 1,
    }).toSatisfy(
      (s: { listedAgain: boolean; refreshStillWorks: boolean; audited: boolean }) =>
        s.listedAgain || (!s.refreshStillWorks && s.audited),
    );
  });

  it('ending every other session is done whole or not at all: the asking browser is not signed out with the others still in their apps', async () => {
    const email = 'end.others@example.test';
    await server.users.create({ email, password: USER.password, emailVerified: true });
    const rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    const stolen = new Browser();
    const { refresh_token: refreshToken } = await signIn(rp, stolen, server.url, {
      email,
      password: USER.password,
    });
    const owner = new Browser();
    await signIn(rp, owner, server.url, { email, password: USER.password });
    const page = await (await owner.get(`${server.url}/account/sessions`)).text();
    expect(handles(page)).toHaveLength(1);

    await control.call('CLIENT', 'PAUSE', '4000', 'WRITE');
    let status: number;
    try {
      const res = await owner.post(`${server.url}/account/sessions/end-others`, {
        csrf: hiddenInput(page, 'csrf'),
      });
      status = res.status;
    } finally {
      await control.call('CLIENT', 'UNPAUSE');
    }
    // Done (the sign-out commits in PostgreSQL) or refused.
    expect([303, 503]).toContain(status);

    // Redis is back. Nothing done: this browser is still signed in and still lists the other
    // session, to end it again. Or all done: the other browser's app no longer refreshes.
    const after = await owner.get(`${server.url}/account/sessions`);
    const ownerStillIn = after.status === 200;
    const otherListed = ownerStillIn && handles(await after.text()).length === 1;
    const refresh = await tokenRequest(server.url, app, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken!,
    });
    expect({ ownerStillIn, otherListed, refreshStillWorks: refresh.status === 200 }).toSatisfy(
      (s: { otherListed: boolean; refreshStillWorks: boolean }) =>
        s.otherListed || !s.refreshStillWorks,
    );
  });
});
