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
  it('a session ended alone stays ended when a request of it in flight saves it again', async () => {
    const victim = new Flow(server, rp, OWNER);
    await victim.signIn();
    const owner = new Flow(server, rp, OWNER);
    await owner.signIn();
    const user = (await server.users.findByEmail(OWNER.email))!;
    const before = await server.adapter.sessionsOf(user.id);
    const page = await (await owner.browser.get(`${server.url}/account/sessions`)).text();
    // Ends every other session one at a time, as a user clicking "End" on each would.
    for (const handle of [...page.matchAll(/name="session" value="([^"]*)"/g)].map((m) => m[1]!)) {
      const res = await owner.browser.post(`${server.url}/account/sessions/end`, {
        csrf: hiddenInput(page, 'csrf'),
        session: handle,
      });
      expect(res.status).toBe(303);
    }
    const left = new Set((await server.adapter.sessionsOf(user.id)).map((s) => s.id));
    const ended = before.filter((s) => !left.has(s.id));
    expect(ended.length).toBeGreaterThan(0);
    // A request of an ended session that loaded it before the end saves it at its end (the
    // provider writes every session it reads: noteSessionActivity).
    for (const s of ended) await server.adapter('Session').upsert(s.id, s.payload, 3600);
    // The ended browser must still be signed out (end-others guarantees it with sessions_valid_from).
    const res = await victim.browser.get(`${server.url}/account`);
    expect(res.status).toBe(303);
    // ... and not listed among the account's sessions.
    const listed = await (await owner.browser.get(`${server.url}/account/sessions`)).text();
    expect([...listed.matchAll(/name="session" value="/g)]).toHaveLength(0);
  });
});
