import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountSessions } from '../../server/users/account-sessions.ts';
import { standingSessions } from '../../server/users/session-rule.ts';
import { Browser, hiddenInput } from '../support/browser.ts';
import {
  REDIRECT_URI,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
} from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// Review of b14832e: "end all other sessions" first saves the asking session as signed in now
// (keepSession), without checking in the same step that it still stands. A request of a
// session that passed its check just before the owner ended it writes it back as standing.

const USER = { email: 'kept.session@example.test', password: 'a kept session must still stand' };

describe('keeping the asking session when ending all others (review)', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let userId: string;
  beforeAll(async () => {
    server = await startTestServer(await storageEnv('embedded'));
    userId = (await server.users.create({ ...USER, emailVerified: true })).id;
    const client = await server.clients.create({ name: 'App', redirectUris: [REDIRECT_URI] });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  const silent = async (browser: Browser) => {
    const { url } = await browser.follow(
      await browser.get(await silentAuthorizationUrl(rp)),
      server.url,
    );
    return url.searchParams.get('code') ? 'signed in' : url.searchParams.get('error');
  };
  const sessionCookie = (browser: Browser) =>
    (browser as unknown as { cookies: Map<string, { value: string }> }).cookies.get('_session|/')!
      .value;

  it('does not bring back a session the owner ended while its own "end all others" was in flight', async () => {
    const owner = new Browser();
    const thief = new Browser();
    await signIn(rp, thief, server.url, USER);
    await signIn(rp, owner, server.url, USER);
    // Sign-ins count in whole seconds: one in the very second of the sign-out stands by design.
    await new Promise((resolve) => setTimeout(resolve, 1100));

    // The thief's POST /account/sessions/end-others has passed `recent` (a fresh sign-in) and
    // reads its session id; now the owner's "end all others" commits ...
    const thiefSession = sessionCookie(thief);
    const sessions = server.adapter('Session');
    const asLoaded = (await sessions.find(thiefSession))!;
    const listed = await (await owner.get(`${server.url}/account/sessions`)).text();
    const ended = await owner.post(`${server.url}/account/sessions/end-others`, {
      csrf: hiddenInput(listed, 'csrf'),
    });
    expect(ended.status).toBe(303);
    const standing = async () =>
      (await standingSessions(server.adapter, (await server.users.findById(userId))!)).map(
        (s) => s.id,
      );
    expect(await standing(), 'the thief is signed out').not.toContain(thiefSession);

    // A request of the thief's in flight writes its session back as it ends, as the sign-out
    // expects (session-rule.ts: it no longer stands, having signed in before the sign-out) ...
    await sessions.upsert(thiefSession, asLoaded, 3600);
    expect(await standing(), 'a written-back ended session does not stand').not.toContain(
      thiefSession,
    );

    // ... and the thief's end-others handler goes on (the service the page calls).
    await accountSessions(server).endOthers(
      userId,
      thiefSession,
      { type: 'user', id: userId },
      { ip: '203.0.113.9' },
    );

    expect(await silent(thief), 'the ended session stands again').toBe('login_required');
    expect(await silent(owner), "the owner's session was ended by the thief's").toBe('signed in');
  });
});
