import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiAudience, apiCall, apiClient, documentChecker } from '../support/admin-api.ts';
import { launchChromium } from '../support/chromium.ts';
import { REDIRECT_URI } from '../support/relying-party.ts';
import { startTestServer, storageEnv, STORAGES, type TestServer } from '../support/server.ts';

// Issue 15's whole story: a machine client of the admin API, with a token from openid-client's
// client credentials grant, creates an app and a user; the user signs in to the app in
// Chromium; the API lists that browser session and ends it; the browser is signed out.

const PERSON = { email: 'rosa@example.test', password: 'harbour lights over a quiet bay' };

describe.each(STORAGES)('the admin API end to end (%s)', (storage) => {
  let server: TestServer;
  let chromium: Browser;

  beforeAll(async () => {
    server = await startTestServer({ ...(await storageEnv(storage)), MFA_POLICY: 'off' });
    chromium = await launchChromium();
  });
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
  });

  it("creates an app and a user, lists the user's browser session and ends it", async () => {
    const job = await apiClient(server, [
      'clients:write',
      'users:write',
      'sessions:read',
      'sessions:write',
    ]);
    const check = documentChecker((await apiCall(server, undefined, 'GET', '/openapi.json')).body);

    // openid-client's client credentials grant, for the admin API's resource indicator.
    const machine = await oidc.discovery(
      new URL(server.url),
      job.clientId,
      job.clientSecret,
      undefined,
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    const { access_token: token } = await oidc.clientCredentialsGrant(machine, {
      scope: 'clients:write users:write sessions:read sessions:write',
      resource: apiAudience(server),
    });

    const app = await apiCall(server, token, 'POST', '/clients', {
      body: { name: 'Harbour Notes', redirectUris: [REDIRECT_URI] },
    });
    expect(app.status, JSON.stringify(app.body)).toBe(201);
    check('POST', '/clients', app);
    const user = await apiCall(server, token, 'POST', '/users', {
      body: {
        email: PERSON.email,
        password: PERSON.password,
        emailVerified: true,
        givenName: 'Rosa',
      },
    });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    check('POST', '/users', user);
    const userId = user.body.id as string;

    // The user signs in to the app in Chromium (JavaScript off: the pages need none).
    const rp = await oidc.discovery(
      new URL(server.url),
      app.body.clientId,
      app.body.clientSecret,
      undefined,
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    const page = await (await chromium.newContext({ javaScriptEnabled: false })).newPage();
    await page.route(`${REDIRECT_URI}**`, (route) =>
      route.fulfill({ status: 200, body: 'back at the app' }),
    );
    const verifier = oidc.randomPKCECodeVerifier();
    await page.goto(
      oidc.buildAuthorizationUrl(rp, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid email',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).href,
    );
    await page.getByLabel('Email').fill(PERSON.email);
    await page.getByLabel('Password').fill(PERSON.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: /Allow|Continue/ }).click();
    await page.waitForURL((url) => url.href.startsWith(REDIRECT_URI));
    const back = new URL(page.url());
    expect(back.searchParams.get('code')).toBeTruthy();
    await page.goto(`${server.url}/account`);
    expect(new URL(page.url()).pathname).toBe('/account');

    // The API sees that one browser session and ends it.
    const listed = await apiCall(server, token, 'GET', `/users/${userId}/sessions`);
    expect(listed.status).toBe(200);
    check('GET', '/users/{id}/sessions', listed);
    expect(listed.body.items).toHaveLength(1);
    expect(listed.body.items[0].device).toMatch(/Chrome/);
    const sessionId = listed.body.items[0].id as string;
    const ended = await apiCall(server, token, 'DELETE', `/users/${userId}/sessions/${sessionId}`);
    expect(ended.status).toBe(200);
    check('DELETE', '/users/{id}/sessions/{sessionId}', ended);

    // The browser is signed out: the account page asks it to sign in again.
    await page.goto(`${server.url}/account`);
    expect(new URL(page.url()).pathname).not.toBe('/account');
    expect(await page.getByLabel('Password').isVisible()).toBe(true);
    expect(
      (await apiCall(server, token, 'GET', `/users/${userId}/sessions`)).body.items,
    ).toHaveLength(0);
  });
});
