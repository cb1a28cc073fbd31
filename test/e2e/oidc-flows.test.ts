import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import {
  POST_LOGOUT_URI,
  REDIRECT_URI,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
} from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const API = 'https://api.example.test';
const USER = { email: 'Alice@Example.test', password: 'correct horse battery staple' };

describe.each(STORAGES)('OIDC flows on %s storage', (storage) => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let service: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv(storage)),
      REFRESH_REUSE_GRACE_SECONDS: '2',
      RESOURCE_SERVERS: JSON.stringify([{ audience: API, scopes: 'read write', format: 'jwt' }]),
    });
    await server.users.create({
      ...USER,
      name: 'Alice Liddell',
      roles: ['editor'],
      emailVerified: true,
    });
    const web = await server.clients.create({
      name: 'Test web app',
      redirectUris: [REDIRECT_URI],
      postLogoutRedirectUris: [POST_LOGOUT_URI],
    });
    rp = await relyingParty(server.url, web.clientId, web.clientSecret);
    const m2m = await server.clients.create({
      name: 'Billing job',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    service = await relyingParty(server.url, m2m.clientId, m2m.clientSecret);
  });
  afterAll(() => server?.cleanup());

  it('publishes discovery with code flow, S256 PKCE and our scopes', () => {
    const meta = rp.serverMetadata();
    expect(meta.issuer).toBe(server.url);
    expect(meta.response_types_supported).toEqual(['code']);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.scopes_supported).toEqual(
      expect.arrayContaining(['openid', 'profile', 'email', 'offline_access', 'roles']),
    );
    for (const endpoint of [
      'token_endpoint',
      'userinfo_endpoint',
      'introspection_endpoint',
      'revocation_endpoint',
      'end_session_endpoint',
      'jwks_uri',
    ])
      expect(meta[endpoint as keyof typeof meta]).toMatch(/^http:\/\/127\.0\.0\.1/);
  });

  it('signs a user in with code + PKCE through login and consent; the ID token verifies against the JWKS', async () => {
    const tokens = await signIn(rp, new Browser(), server.url, USER);
    const jwks = createRemoteJWKSet(new URL(rp.serverMetadata().jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token!, jwks, {
      issuer: server.url,
      audience: rp.clientMetadata().client_id,
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({
      email: 'Alice@Example.test',
      email_verified: true,
      name: 'Alice Liddell',
      roles: ['editor'],
    });
    const info = await oidc.fetchUserInfo(rp, tokens.access_token, payload.sub!);
    expect(info).toMatchObject({
      sub: payload.sub,
      email: 'Alice@Example.test',
      roles: ['editor'],
    });
    expect(tokens.refresh_token).toBeTruthy();
  });

  it('signs ID tokens with EdDSA for a client that asks for it', async () => {
    const ed = await server.clients.create({
      name: 'Ed app',
      redirectUris: [REDIRECT_URI],
      idTokenAlg: 'EdDSA',
    });
    const edRp = await relyingParty(server.url, ed.clientId, ed.clientSecret);
    const tokens = await signIn(edRp, new Browser(), server.url, USER);
    const jwks = createRemoteJWKSet(new URL(rp.serverMetadata().jwks_uri!));
    const { protectedHeader } = await jwtVerify(tokens.id_token!, jwks, {
      issuer: server.url,
      audience: ed.clientId,
    });
    expect(protectedHeader.alg).toBe('EdDSA');
  });

  it('remembers consent: a second sign-in in the same browser goes straight back to the app', async () => {
    const browser = new Browser();
    await signIn(rp, browser, server.url, USER);
    const shown: string[] = [];
    const again = await signIn(rp, browser, server.url, { ...USER, params: { prompt: '' }, shown });
    expect(shown).toEqual([]);
    expect(again.access_token).toBeTruthy();
  });

  it('remembers consent across sessions: a new browser signs in without the consent page', async () => {
    const first: string[] = [];
    await signIn(rp, new Browser(), server.url, { ...USER, shown: first });
    expect(first).toEqual(['login', 'consent']);
    const second: string[] = [];
    await signIn(rp, new Browser(), server.url, { ...USER, params: { prompt: '' }, shown: second });
    expect(second).toEqual(['login']);
    // prompt=consent still asks, as OIDC Core §3.1.2.1 requires, also together with login.
    const more: string[] = [];
    await signIn(rp, new Browser(), server.url, {
      ...USER,
      scope: 'openid email profile roles offline_access',
      params: { prompt: 'login consent' },
      shown: more,
    });
    expect(more).toEqual(['login', 'consent']);
  });

  it('gives each device a grant of its own: revoking one device leaves the other signed in', async () => {
    const laptop = await signIn(rp, new Browser(), server.url, USER);
    const phone = await signIn(rp, new Browser(), server.url, USER);
    await oidc.tokenRevocation(rp, laptop.refresh_token!);
    await expect(oidc.refreshTokenGrant(rp, laptop.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect((await oidc.refreshTokenGrant(rp, phone.refresh_token!)).access_token).toBeTruthy();
  });

  it('gives refresh tokens their own length, and introspects them too', async () => {
    const tokens = await signIn(rp, new Browser(), server.url, USER);
    expect(tokens.access_token).toHaveLength(43);
    expect(tokens.refresh_token).toHaveLength(44);
    expect(await oidc.tokenIntrospection(rp, tokens.refresh_token!)).toMatchObject({
      active: true,
      client_id: rp.clientMetadata().client_id,
    });
  });

  it('rotates refresh tokens, and reuse of a rotated one after the grace window revokes the grant', async () => {
    const first = await signIn(rp, new Browser(), server.url, USER);
    const second = await oidc.refreshTokenGrant(rp, first.refresh_token!);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    await new Promise((r) => setTimeout(r, 2200)); // REFRESH_REUSE_GRACE_SECONDS is 2 in these tests
    await expect(oidc.refreshTokenGrant(rp, first.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    await expect(oidc.refreshTokenGrant(rp, second.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect((await oidc.tokenIntrospection(rp, second.access_token)).active).toBe(false);
  });

  it('does not let repeated reuse within the grace window stretch it', async () => {
    const first = await signIn(rp, new Browser(), server.url, USER);
    await oidc.refreshTokenGrant(rp, first.refresh_token!);
    await new Promise((r) => setTimeout(r, 1000));
    await oidc.refreshTokenGrant(rp, first.refresh_token!); // within the 2 s grace: honoured
    await new Promise((r) => setTimeout(r, 1300)); // 2.3 s after the first use
    await expect(oidc.refreshTokenGrant(rp, first.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('honours a rotated refresh token presented again within the grace window (concurrent refresh)', async () => {
    const first = await signIn(rp, new Browser(), server.url, USER);
    const [a, b] = await Promise.all([
      oidc.refreshTokenGrant(rp, first.refresh_token!),
      oidc.refreshTokenGrant(rp, first.refresh_token!),
    ]);
    expect(a.access_token).toBeTruthy();
    expect(b.access_token).toBeTruthy();
    expect((await oidc.refreshTokenGrant(rp, a.refresh_token!)).access_token).toBeTruthy();
  });

  it('revocation makes introspection say inactive', async () => {
    const tokens = await signIn(rp, new Browser(), server.url, USER);
    expect(await oidc.tokenIntrospection(rp, tokens.access_token)).toMatchObject({
      active: true,
      client_id: rp.clientMetadata().client_id,
    });
    await oidc.tokenRevocation(rp, tokens.access_token);
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
    await oidc.tokenRevocation(rp, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('issues client_credentials tokens: opaque by default, a verifiable JWT for a registered API', async () => {
    const opaque = await oidc.clientCredentialsGrant(service);
    expect(opaque.access_token.split('.').length).toBe(1);
    expect(await oidc.tokenIntrospection(service, opaque.access_token)).toMatchObject({
      active: true,
    });
    const jwt = await oidc.clientCredentialsGrant(service, { resource: API, scope: 'read' });
    const jwks = createRemoteJWKSet(new URL(rp.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(jwt.access_token, jwks, {
      issuer: server.url,
      audience: API,
    });
    expect(payload).toMatchObject({ scope: 'read', client_id: service.clientMetadata().client_id });
    expect(decodeProtectedHeader(jwt.access_token).alg).toBe('ES256');
    await expect(
      oidc.clientCredentialsGrant(service, { resource: 'https://unknown.example.test' }),
    ).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('issues a JWT access token for an API in the code flow, with roles only when allowed', async () => {
    const withoutRoles = await signIn(rp, new Browser(), server.url, {
      ...USER,
      scope: 'openid read',
      resource: API,
      tokenParams: { resource: API },
    });
    expect(decodeJwt(withoutRoles.access_token).roles).toBeUndefined();
    const tokens = await signIn(rp, new Browser(), server.url, {
      ...USER,
      scope: 'openid roles read',
      resource: API,
      tokenParams: { resource: API },
    });
    const jwks = createRemoteJWKSet(new URL(rp.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(tokens.access_token, jwks, {
      issuer: server.url,
      audience: API,
    });
    expect(payload).toMatchObject({
      scope: 'read',
      roles: ['editor'],
      client_id: rp.clientMetadata().client_id,
    });
  });

  it('logs out: the confirmation page ends the session and returns to the app', async () => {
    const browser = new Browser();
    const tokens = await signIn(rp, browser, server.url, USER);
    const end = oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
      state: 'bye',
    });
    const { res, url } = await browser.follow(await browser.get(end), server.url);
    expect(url.pathname).toBe('/session/end');
    const html = await res.text();
    expect(html).toContain('Sign out?');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
    const action = /action="([^"]+)"/.exec(html)![1]!;
    const done = await browser.follow(
      await browser.post(new URL(action, server.url), { xsrf, logout: 'yes' }),
      server.url,
    );
    expect(done.url.href).toBe(`${POST_LOGOUT_URI}?state=bye`);
    // The session is gone: a silent authorization request now needs a login.
    const silent = await silentAuthorizationUrl(rp);
    const back = await browser.follow(await browser.get(silent), server.url);
    expect(back.url.searchParams.get('error')).toBe('login_required');
  });
});
