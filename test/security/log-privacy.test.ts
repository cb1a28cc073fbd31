import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskEmails } from '../../server/log.ts';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { leaks, type Secret } from '../support/log-leaks.ts';
import { linkFromMail, smtpEnv } from '../support/mailbox.ts';
import {
  authorizationRequest,
  POST_LOGOUT_URI,
  REDIRECT_URI,
  relyingParty,
} from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const EMAIL = 'Zephyrine.Quillfeather@example.test';
const NAME = 'Zephyrine Quillfeather';
const PASSWORD = 'velvet harbour crane 58 tundra';
const WRONG_PASSWORD = 'not my password at all 19 ok';
const NEW_PASSWORD = 'saffron glacier ribbon 27 otter';
// The sign-up form takes any something@domain.tld, so a log line may carry non-ASCII addresses.
const UNICODE_EMAIL = 'José.García@example.test';
const UNICODE_NAME = 'José García';

const VERIFY_LINK = /https?:\/\/\S+\/verify\?token=[\w-]+/;
const RESET_LINK = /https?:\/\/\S+\/reset\?token=[\w-]+/;

/**
 * The address, its local part, the local part past the two characters the mask keeps, and each
 * word of it (a first or last name) long enough not to turn up by chance.
 */
function emailSecrets(what: string, email: string): Secret[] {
  const local = email.split('@')[0]!;
  const words = local.split(/[^\p{L}\p{N}]+/u).filter((w) => [...w].length >= 4);
  return [
    { what, value: email, anyCase: true },
    { what: `${what} (local part)`, value: local, anyCase: true },
    {
      what: `${what} (local part past the mask)`,
      value: [...local].slice(2).join(''),
      anyCase: true,
    },
    ...words.map((word) => ({ what: `${what} (word "${word}")`, value: word, anyCase: true })),
  ];
}

describe('log privacy over a full sign-up and sign-in run', () => {
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;
  /** Whatever the process printed outside the logger while the run went on. */
  const printed: string[] = [];
  const secrets: Secret[] = [];
  const seen = (what: string, value: string | undefined) => {
    if (!value) throw new Error(`expected a ${what}`);
    secrets.push({ what, value });
  };
  let stopCapture = () => {};

  /**
   * Records what is printed around the logger: console calls (oidc-provider prints its warnings
   * with console.warn), writes to stdout/stderr, and process warnings.
   */
  function capturePrinted() {
    const restore: (() => void)[] = [];
    const wrap = <T extends object, K extends keyof T>(target: T, key: K) => {
      const original = target[key] as (...args: unknown[]) => unknown;
      target[key] = function (this: unknown, ...args: unknown[]) {
        printed.push(args.map(String).join(' '));
        return original.apply(this, args);
      } as T[K];
      restore.push(() => (target[key] = original as T[K]));
    };
    for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const)
      wrap(console, method);
    wrap(process.stdout, 'write');
    wrap(process.stderr, 'write');
    const onWarning = (warning: Error) => printed.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    restore.push(() => process.off('warning', onWarning));
    return () => restore.forEach((undo) => undo());
  }

  /**
   * From a page of the server, goes through login (with `credentials`) and consent until the
   * browser is sent back to the app; returns the callback URL.
   */
  async function toApp(
    browser: Browser,
    landing: { res: Response; url: URL },
    credentials?: { email: string; password: string },
  ): Promise<URL> {
    let { res, url } = landing;
    for (let step = 0; url.origin === server.url; step++) {
      const html = await res.text();
      if (step > 3) throw new Error(`stuck at ${url}: ${res.status} ${html.slice(0, 300)}`);
      const form =
        credentials && html.includes('name="password"')
          ? { path: '/login', fields: credentials }
          : { path: '/consent', fields: {} };
      ({ res, url } = await browser.follow(
        await browser.post(new URL(formAction(html, form.path), server.url), {
          csrf: hiddenInput(html, 'csrf'),
          ...form.fields,
        }),
        server.url,
      ));
    }
    if (!url.href.startsWith(REDIRECT_URI)) throw new Error(`flow ended at ${url}`);
    return url;
  }

  /** Redeems the code at the app's callback, then uses the tokens as an app would. */
  async function redeem(callback: URL, request: { verifier: string; state: string }) {
    seen('authorization code', callback.searchParams.get('code') ?? undefined);
    seen('PKCE code verifier', request.verifier);
    const tokens = await oidc.authorizationCodeGrant(rp, callback, {
      pkceCodeVerifier: request.verifier,
      expectedState: request.state,
    });
    seen('access token', tokens.access_token);
    seen('ID token', tokens.id_token);
    seen('refresh token', tokens.refresh_token);
    const info = await oidc.fetchUserInfo(rp, tokens.access_token, tokens.claims()!.sub);
    expect(info.email?.toLowerCase()).toBe(EMAIL.toLowerCase());
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    seen('refreshed access token', refreshed.access_token);
    seen('rotated refresh token', refreshed.refresh_token);
    return { ...tokens, id_token: refreshed.id_token ?? tokens.id_token };
  }

  /** Opens the app's sign-in in `browser`: the login page, and what the callback will need. */
  async function openSignIn(browser: Browser) {
    const request = await authorizationRequest(rp, {
      scope: 'openid email profile offline_access',
      prompt: 'consent',
    });
    const login = await browser.follow(await browser.get(request.url), server.url);
    return { request, login, html: await login.res.text() };
  }

  async function signInWith(password: string) {
    const browser = new Browser();
    const { request, login, html } = await openSignIn(browser);
    const landing = { res: new Response(html), url: login.url };
    const callback = await toApp(browser, landing, { email: EMAIL, password });
    return { browser, tokens: await redeem(callback, request) };
  }

  async function register(browser: Browser, email: string, name: string) {
    const { request, html } = await openSignIn(browser);
    const href = /href="([^"]*\/register)"/.exec(html)![1]!;
    const formHtml = await (await browser.get(new URL(href, server.url))).text();
    const res = await browser.post(new URL(formAction(formHtml, '/register'), server.url), {
      csrf: hiddenInput(formHtml, 'csrf'),
      email,
      name,
      password: PASSWORD,
      confirm: PASSWORD,
    });
    return { request, res };
  }

  beforeAll(async () => {
    stopCapture = capturePrinted();
    smtp = await startSmtpServer();
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      ...smtpEnv(smtp),
      LOG_LEVEL: 'trace',
      REGISTRATION_ENABLED: 'true',
    });
    const client = await server.clients.create({
      name: 'Privacy app',
      redirectUris: [REDIRECT_URI],
      postLogoutRedirectUris: [POST_LOGOUT_URI],
    });
    seen('client secret', client.clientSecret);
    for (const key of ['ADMIN_PASSWORD', 'SEALING_KEY', 'COOKIE_KEYS'])
      seen(`configured ${key}`, server.env[key]);
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    secrets.push(
      ...emailSecrets('email address', EMAIL),
      ...emailSecrets('non-ASCII email address', UNICODE_EMAIL),
      { what: 'display name', value: NAME, anyCase: true },
      { what: 'display name', value: UNICODE_NAME, anyCase: true },
      { what: 'password', value: PASSWORD },
      { what: 'wrong password', value: WRONG_PASSWORD },
      { what: 'new password', value: NEW_PASSWORD },
    );

    // Sign up, then follow the emailed link: it lands signed in at the app.
    let mails = smtp.messages.length;
    const signup = new Browser();
    const registered = await register(signup, EMAIL, NAME);
    expect(await registered.res.text()).toContain('Check your email');
    const verify = await linkFromMail(smtp, EMAIL, mails, VERIFY_LINK);
    seen('verification link token', new URL(verify.link).searchParams.get('token') ?? undefined);
    const confirm = await (await signup.get(verify.link)).text();
    const verified = await signup.follow(
      await signup.post(new URL(formAction(confirm, '/verify'), server.url), {
        csrf: hiddenInput(confirm, 'csrf'),
        token: hiddenInput(confirm, 'token'),
      }),
      server.url,
    );
    await redeem(await toApp(signup, verified), registered.request);

    // A code + PKCE sign-in with the password: tokens, userinfo, a refresh.
    await signInWith(PASSWORD);

    // A wrong password, then "forgot password" from the page that refused it.
    const forgetful = new Browser();
    const { request, login, html } = await openSignIn(forgetful);
    const refused = await forgetful.post(new URL(formAction(html, '/login'), login.url), {
      csrf: hiddenInput(html, 'csrf'),
      email: EMAIL,
      password: WRONG_PASSWORD,
    });
    const refusedHtml = await refused.text();
    expect(refusedHtml).toContain('The email or password is incorrect.');
    const forgotHref = /href="([^"]*\/forgot[^"]*)"/.exec(refusedHtml)![1]!.replace(/&amp;/g, '&');
    const forgotHtml = await (await forgetful.get(new URL(forgotHref, server.url))).text();
    mails = smtp.messages.length;
    const asked = await forgetful.post(new URL(formAction(forgotHtml, '/forgot'), server.url), {
      csrf: hiddenInput(forgotHtml, 'csrf'),
      email: EMAIL,
    });
    expect(asked.status).toBe(200);
    const reset = await linkFromMail(smtp, EMAIL, mails, RESET_LINK);
    seen('reset link token', new URL(reset.link).searchParams.get('token') ?? undefined);
    const resetHtml = await (await forgetful.get(reset.link)).text();
    const afterReset = await forgetful.follow(
      await forgetful.post(new URL(formAction(resetHtml, '/reset'), server.url), {
        csrf: hiddenInput(resetHtml, 'csrf'),
        token: hiddenInput(resetHtml, 'token'),
        password: NEW_PASSWORD,
        confirm: NEW_PASSWORD,
      }),
      server.url,
    );
    await redeem(await toApp(forgetful, afterReset), request);

    // The new password signs in; then sign out through RP-initiated logout.
    const { browser, tokens } = await signInWith(NEW_PASSWORD);
    const end = oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
    });
    const confirmOut = await browser.follow(await browser.get(end), server.url);
    const outHtml = await confirmOut.res.text();
    const signedOut = await browser.follow(
      await browser.post(new URL(/action="([^"]+)"/.exec(outHtml)![1]!, server.url), {
        xsrf: /name="xsrf" value="([^"]+)"/.exec(outHtml)![1]!,
        logout: 'yes',
      }),
      server.url,
    );
    expect(signedOut.url.href).toBe(POST_LOGOUT_URI);

    // A second sign-up, with an address that is not plain ASCII (its verification mail goes out
    // in the background: wait for it).
    const other = await register(new Browser(), UNICODE_EMAIL, UNICODE_NAME);
    expect(await other.res.text()).toContain('Check your email');
    await smtp.waitForMessage((m) => JSON.stringify(m.to).includes('Garc'), 10_000);

    // Notices (password changed, new device) go out in the background and are logged once
    // delivered: wait until every mail the SMTP server took has its log line.
    const mailLines = () => server.logs.filter((line) => line.includes('"mail sent"')).length;
    for (const deadline = Date.now() + 5000; mailLines() < smtp.messages.length;) {
      if (Date.now() > deadline) throw new Error('some delivered mails were never logged');
      await new Promise((r) => setTimeout(r, 20));
    }
  }, 120_000);

  afterAll(async () => {
    stopCapture();
    await server?.cleanup();
    await smtp?.stop();
  });

  it('captured the run: the log has request lines and shows both addresses masked', () => {
    expect(server.logs.length).toBeGreaterThan(20);
    for (const [email, masked] of [
      [EMAIL, 'ze***@example.test'],
      [UNICODE_EMAIL, 'jo***@example.test'],
    ] as const) {
      expect(maskEmails(email).toLowerCase()).toBe(masked);
      expect(server.logs.some((line) => line.toLowerCase().includes(masked))).toBe(true);
    }
  });

  it('never logs an email address, its local part or the display name', () => {
    const pii = secrets.filter((s) => s.anyCase);
    expect(leaks(server.logs, pii)).toEqual([]);
  });

  it('never logs a password, whether accepted or refused', () => {
    const passwords = secrets.filter((s) => /password/i.test(s.what) && !s.anyCase);
    expect(passwords.length).toBeGreaterThanOrEqual(4);
    expect(leaks(server.logs, passwords)).toEqual([]);
  });

  it('never logs link tokens, codes, PKCE verifiers, tokens or configured secrets', () => {
    const tokens = secrets.filter((s) => !s.anyCase && !/password/i.test(s.what));
    expect(tokens.map((s) => s.what)).toEqual(
      expect.arrayContaining([
        'verification link token',
        'reset link token',
        'authorization code',
        'access token',
        'refresh token',
        'rotated refresh token',
      ]),
    );
    expect(leaks(server.logs, tokens)).toEqual([]);
  });

  it('prints none of them outside the logger either', () => {
    expect(leaks(printed, secrets)).toEqual([]);
  });

  it('would notice a leak: the same search finds each secret planted in a line', () => {
    for (const secret of secrets) {
      const line = JSON.stringify({
        msg: 'planted',
        form: `x=${encodeURIComponent(secret.value)}`,
      });
      expect(leaks([line], [secret])).toHaveLength(1);
    }
  });
});
