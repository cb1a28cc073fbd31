import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hiddenInput } from '../support/browser.ts';
import { Flow } from '../support/flow.ts';
import { relyingParty, REDIRECT_URI } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// What an attack review of the account center found, each seen failing first.

const OWNER = { email: 'stale@example.test', password: 'the owner has a long passphrase' };

describe('account center under attack', () => {
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      REAUTH_MAX_AGE: '3s',
      MFA_POLICY: 'off',
    });
    const client = await server.clients.create({
      name: 'Review app',
      redirectUris: [REDIRECT_URI],
    });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    await server.users.create({ ...OWNER, emailVerified: true });
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('ending the other sessions does not make a stale session recent (export still asks to sign in again)', async () => {
    const stolen = new Flow(server, rp, OWNER);
    await stolen.signIn();
    const other = new Flow(server, rp, OWNER);
    await other.signIn();
    await new Promise((resolve) => setTimeout(resolve, 4500));

    // Stale: the export download asks for a fresh sign-in.
    const exportPage = await stolen.browser.get(`${server.url}/account/export`);
    const exportCsrf = hiddenInput(await exportPage.text(), 'csrf');
    const before = await stolen.browser.post(`${server.url}/account/export`, { csrf: exportCsrf });
    expect(before.status).toBe(303);

    // Ending the other sessions keeps this one as signed in now: it asks for a recent sign-in.
    const sessions = await stolen.browser.get(`${server.url}/account/sessions`);
    const csrf = hiddenInput(await sessions.text(), 'csrf');
    const ended = await stolen.browser.post(`${server.url}/account/sessions/end-others`, { csrf });
    expect(ended.status).toBe(303);

    // So no password or factor shown, no fresh sign-in: the export still asks for one.
    const after = await stolen.browser.post(`${server.url}/account/export`, { csrf: exportCsrf });
    expect(after.status).toBe(303);
    expect(after.headers.get('content-disposition')).toBeNull();
  });

  it('answers a well-formed cursor with an impossible date without a server error', async () => {
    const flow = new Flow(server, rp, OWNER);
    await flow.signIn();
    const res = await flow.browser.get(
      `${server.url}/account/activity?before=${encodeURIComponent('2024-13-45T25:61:61.000000Z~1')}`,
    );
    expect(res.status).toBe(200);
  });
});
