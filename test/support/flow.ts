import * as oidc from 'openid-client';
import { generate } from 'otplib';
import { expect } from 'vitest';
import { Browser, formAction, hiddenInput } from './browser.ts';
import { authorizationRequest, REDIRECT_URI } from './relying-party.ts';
import type { TestServer } from './server.ts';

/** The authenticator app's code for `secret`, `offset` seconds from now. */
export const codeAt = (secret: string, offset = 0) =>
  generate({ secret, epoch: Math.floor(Date.now() / 1000) + offset });

/** The setup key shown on the enrolment page, without its spaces. */
export const setupKey = (html: string) =>
  /aria-label="Setup key">([A-Z2-7 ]+)</.exec(html)![1]!.replace(/ /g, '');

export const recoveryCodes = (html: string) =>
  [...html.matchAll(/<code>([0-9A-Z]{5}-[0-9A-Z]{5})<\/code>/g)].map((m) => m[1]!);

/**
 * One browser walking the hosted pages of a relying party's sign-in (and the account pages),
 * following redirects on the server's origin and keeping the last page it landed on.
 */
export class Flow {
  readonly browser = new Browser();
  html = '';
  url!: URL;
  status = 0;
  private request!: Awaited<ReturnType<typeof authorizationRequest>>;

  private readonly server: TestServer;
  private readonly rp: oidc.Configuration;
  private readonly user: { email: string; password: string };

  constructor(
    server: TestServer,
    rp: oidc.Configuration,
    user: { email: string; password: string },
  ) {
    this.server = server;
    this.rp = rp;
    this.user = user;
  }

  private async land(res: Response) {
    const { res: page, url } = await this.browser.follow(res, this.server.url);
    this.url = url;
    this.status = page.status;
    this.html = url.origin === this.server.url ? await page.text() : '';
  }

  async start(params: Record<string, string> = {}) {
    this.request = await authorizationRequest(this.rp, { scope: 'openid email', ...params });
    await this.land(await this.browser.get(this.request.url));
  }

  async get(path: string) {
    await this.land(await this.browser.get(new URL(path, this.server.url)));
  }

  /** Posts the form whose action contains `action`, with its CSRF token and `fields`. */
  async submit(action: string, fields: Record<string, string> = {}) {
    const target = new URL(formAction(this.html, action), this.server.url);
    await this.land(
      await this.browser.post(target, { csrf: hiddenInput(this.html, 'csrf'), ...fields }),
    );
  }

  async login(password = this.user.password) {
    await this.submit('/login', { email: this.user.email, password });
  }

  /** A whole sign-in through the relying party: login (no second factor), consent, tokens. */
  async signIn() {
    await this.start();
    await this.login();
    return this.tokens();
  }

  /** Sets up an authenticator app from the account pages; its key and recovery codes. */
  async enrolAuthenticator(password = this.user.password) {
    await this.get('/account/mfa/totp');
    const secret = setupKey(this.html);
    await this.submit('/account/mfa/totp', { password, code: await codeAt(secret) });
    const codes = recoveryCodes(this.html);
    expect(codes).toHaveLength(10);
    return { secret, codes };
  }

  /** Consents if asked, then redeems the code at the relying party (with `params`: resource). */
  async tokens(params?: Record<string, string>) {
    if (this.html.includes('/consent')) await this.submit('/consent');
    expect(this.url.href.startsWith(REDIRECT_URI)).toBe(true);
    return oidc.authorizationCodeGrant(
      this.rp,
      this.url,
      { pkceCodeVerifier: this.request.verifier, expectedState: this.request.state },
      params,
    );
  }
}
