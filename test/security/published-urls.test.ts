import { request as httpRequest } from 'node:http';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { authorizationRequest } from '../support/relying-party.ts';
import { startTestServer, storageEnv } from '../support/server.ts';
import { freePort } from '../support/services.ts';

const EVIL = 'evil.example';
/** What an attacker (or a proxy passing it on) puts in a request to move the URLs we publish. */
const FORGED = { host: EVIL, 'x-forwarded-host': EVIL, 'x-forwarded-proto': 'https' };
const USER = { email: 'hostile.host@example.test', password: 'marble orchard lantern 64 fjord' };

/** fetch, over node:http, with the forged headers (fetch itself refuses to set Host). */
const forgedFetch: typeof fetch = (input, init = {}) =>
  new Promise((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const req = httpRequest(url, {
      method: init.method ?? 'GET',
      headers: { ...(init.headers as Record<string, string>), ...FORGED },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers))
          for (const v of [value ?? []].flat()) headers.append(name, v);
        const status = res.statusCode!;
        resolve(new Response(status === 204 ? null : Buffer.concat(chunks), { status, headers }));
      });
    });
    if (init.body) req.write(String(init.body));
    req.end();
  });

/** Every absolute URL in a text (an HTML page, a JSON document, a mail). */
const urlsIn = (text: string) => [...text.matchAll(/[a-z]+:\/\/[^\s"'<>]+/g)].map((m) => m[0]);

describe.each([
  { proxy: 'a direct client', trustProxy: '' },
  { proxy: 'a trusted proxy', trustProxy: 'loopback' },
])(
  'published and emailed URLs name the issuer alone (forged headers from $proxy)',
  ({ trustProxy }) => {
    let app: MailApp;
    let rp: oidc.Configuration;
    let issuer: string;

    beforeAll(async () => {
      app = await startMailApp({
        clientName: 'Host app',
        env: { REGISTRATION_ENABLED: 'true', TRUST_PROXY: trustProxy },
        user: USER,
      });
      ({ rp } = app);
      issuer = app.server.url;
    });
    afterAll(() => app?.stop());

    it('discovery lists every endpoint and jwks_uri under the issuer, and the JWKS is there', async () => {
      const res = await forgedFetch(new URL('/.well-known/openid-configuration', issuer));
      const text = await res.text();
      const meta = JSON.parse(text) as Record<string, unknown>;
      expect(meta.issuer).toBe(issuer);
      expect(meta.jwks_uri).toBe(`${issuer}/jwks`);
      const urls = urlsIn(text);
      expect(urls.length).toBeGreaterThan(5);
      for (const url of urls) expect(url.startsWith(issuer)).toBe(true);
      const jwks = (await (await forgedFetch(new URL(meta.jwks_uri as string))).json()) as {
        keys: unknown[];
      };
      expect(jwks.keys.length).toBeGreaterThan(0);
    });

    it('the end_session page posts its confirmation to the issuer', async () => {
      const res = await forgedFetch(new URL('/session/end', issuer));
      const html = await res.text();
      expect(res.status).toBe(200);
      const action = /action="([^"]+)"/.exec(html)![1]!;
      expect(new URL(action, issuer).origin).toBe(issuer);
      expect(html).not.toContain(EVIL);
    });

    it('the authorization endpoint sends the browser on within the issuer', async () => {
      const { url } = await authorizationRequest(rp);
      const res = await forgedFetch(url);
      expect(res.status).toBeGreaterThanOrEqual(300);
      expect(new URL(res.headers.get('location')!, issuer).origin).toBe(issuer);
    });

    /** Opens the sign-in with forged headers on every request; returns the login page. */
    async function loginPage(browser: Browser) {
      const { url } = await authorizationRequest(rp);
      const login = await browser.follow(await browser.get(url), issuer);
      return login.res.text();
    }

    it('the password reset mail links to the issuer', async () => {
      const browser = new Browser({ transport: forgedFetch });
      const html = await loginPage(browser);
      const forgot = /href="([^"]*\/forgot)[^"]*"/.exec(html)![1]!;
      const form = await (await browser.get(new URL(forgot, issuer))).text();
      const before = app.smtp.messages.length;
      await browser.post(new URL(formAction(form, '/forgot'), issuer), {
        csrf: hiddenInput(form, 'csrf'),
        email: USER.email,
      });
      const { mail, link } = await linkFromMail(app.smtp, USER.email, before, /\S+\/reset\?\S+/);
      expect(link.startsWith(`${issuer}/`)).toBe(true);
      for (const url of urlsIn(`${mail.text} ${mail.html}`))
        expect(url.startsWith(issuer)).toBe(true);
    });

    it('the registration mail links to the issuer', async () => {
      const browser = new Browser({ transport: forgedFetch });
      const html = await loginPage(browser);
      const register = /href="([^"]*\/register)"/.exec(html)![1]!;
      const form = await (await browser.get(new URL(register, issuer))).text();
      const before = app.smtp.messages.length;
      const email = `new.${trustProxy || 'direct'}@example.test`;
      await browser.post(new URL(formAction(form, '/register'), issuer), {
        csrf: hiddenInput(form, 'csrf'),
        email,
        name: 'New Host',
        password: USER.password,
        confirm: USER.password,
      });
      const { mail, link } = await linkFromMail(app.smtp, email, before, /\S+\/verify\?\S+/);
      expect(link.startsWith(`${issuer}/`)).toBe(true);
      for (const url of urlsIn(`${mail.text} ${mail.html}`))
        expect(url.startsWith(issuer)).toBe(true);
    });
  },
);

describe('an issuer with a path, behind a proxy that strips it', () => {
  it('publishes every endpoint under the issuer path', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}/auth`;
    const server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      PORT: String(port),
      ISSUER: issuer,
    });
    try {
      const res = await forgedFetch(new URL('/.well-known/openid-configuration', server.url));
      const meta = (await res.json()) as Record<string, string>;
      expect(meta.issuer).toBe(issuer);
      expect(meta.jwks_uri).toBe(`${issuer}/jwks`);
      expect(meta.token_endpoint).toBe(`${issuer}/token`);
      expect(meta.end_session_endpoint).toBe(`${issuer}/session/end`);
    } finally {
      await server.cleanup();
    }
  }, 60_000);
});
