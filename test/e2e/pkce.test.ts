import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'pixy@example.test', password: 'lantern saddle orbit 35 quince' };

/** RFC 9700 §2.1.1: PKCE for every client, unless an old confidential client opted out. */
describe('PKCE is required for every client by default', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(await storageEnv('embedded'));
    await server.users.create({ ...USER, emailVerified: true });
  });
  afterAll(() => server?.cleanup());

  /** The answer the app's redirect_uri gets to an authorization request without code_challenge. */
  async function withoutChallenge(clientId: string) {
    const rp = await relyingParty(server.url, clientId, 'unused');
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      state: 'st',
    });
    const res = await new Browser().get(url);
    return { status: res.status, location: res.headers.get('location') };
  }

  it('refuses a confidential client without code_challenge (invalid_request), before any login', async () => {
    const web = await server.clients.create({ name: 'Web', redirectUris: [REDIRECT_URI] });
    const { status, location } = await withoutChallenge(web.clientId);
    expect(status).toBe(303);
    const answer = new URL(location!);
    expect(`${answer.origin}${answer.pathname}`).toBe(REDIRECT_URI);
    expect(answer.searchParams.get('error')).toBe('invalid_request');
    expect(answer.searchParams.get('error_description')).toMatch(/PKCE/);
    const rp = await relyingParty(server.url, web.clientId, web.clientSecret);
    await expect(signIn(rp, new Browser(), server.url, { ...USER, pkce: false })).rejects.toThrow();
  });

  it('signs in an old confidential client that opted out, without PKCE', async () => {
    const legacy = await server.clients.create({
      name: 'Legacy',
      redirectUris: [REDIRECT_URI],
      pkceRequired: false,
    });
    const rp = await relyingParty(server.url, legacy.clientId, legacy.clientSecret);
    const tokens = await signIn(rp, new Browser(), server.url, { ...USER, pkce: false });
    expect(tokens.access_token).toBeTruthy();
    // With the opt-out PKCE still works, and is still checked when sent.
    expect((await signIn(rp, new Browser(), server.url, USER)).access_token).toBeTruthy();
  });

  it('lets no public client opt out', async () => {
    await expect(
      server.clients.create({
        name: 'SPA',
        public: true,
        redirectUris: [REDIRECT_URI],
        pkceRequired: false,
      }),
    ).rejects.toThrow(/public client/);
    // Even a row written past the store: the provider refuses the client's metadata.
    await server.db('clients').insert({
      client_id: 'spa-opted-out',
      secret_sealed: null,
      metadata: JSON.stringify({
        client_name: 'SPA',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        pkce_required: false,
      }),
    });
    const { status, location } = await withoutChallenge('spa-opted-out');
    expect(new URL(location ?? 'http://no.where/').searchParams.get('code')).toBeNull();
    expect(status).toBe(400);
  });
});
