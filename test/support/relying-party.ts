import * as oidc from 'openid-client';
import { Browser, formAction, hiddenInput } from './browser.ts';

export const REDIRECT_URI = 'http://rp.example.test/callback';
export const POST_LOGOUT_URI = 'http://rp.example.test/';

/**
 * An openid-client relying party discovered from the server (plain http allowed: loopback tests);
 * `transport`, when given, sends its requests instead of fetch.
 */
export function relyingParty(
  issuer: string,
  clientId: string,
  clientSecret?: string,
  transport?: typeof fetch,
) {
  return oidc.discovery(
    new URL(issuer),
    clientId,
    clientSecret,
    clientSecret ? undefined : oidc.None(),
    {
      execute: [oidc.allowInsecureRequests],
      ...(transport && { [oidc.customFetch]: transport }),
    },
  );
}

export type SignIn = {
  email: string;
  password: string;
  scope?: string;
  resource?: string;
  params?: Record<string, string>;
  tokenParams?: Record<string, string>;
  /** false: no code_challenge (an old confidential client); default true. */
  pkce?: boolean;
  /** Filled with the hosted pages the flow went through: 'login', 'consent'. */
  shown?: string[];
};

/** Runs an authorization code (+ PKCE unless told not to) flow through the real login and consent pages. */
export async function signIn(
  rp: oidc.Configuration,
  browser: Browser,
  issuer: string,
  input: SignIn,
) {
  const verifier = input.pkce === false ? undefined : oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT_URI,
    scope: input.scope ?? 'openid email profile roles offline_access',
    ...(verifier && {
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }),
    state,
    prompt: 'consent',
    ...(input.resource && { resource: input.resource }),
    ...input.params,
  });
  let { res, url: at } = await browser.follow(await browser.get(url), issuer);
  // A browser signed in already goes to the consent page, if any, at once.
  let page = at.pathname.startsWith('/interaction/') ? await res.text() : '';
  if (page && !page.includes('/consent')) {
    const html = page;
    if (!html.includes('name="password"')) throw new Error(`expected the login page at ${at}`);
    input.shown?.push('login');
    ({ res, url: at } = await browser.follow(
      await browser.post(new URL(formAction(html, '/login'), issuer), {
        csrf: hiddenInput(html, 'csrf'),
        email: input.email,
        password: input.password,
      }),
      issuer,
    ));
    page = at.pathname.startsWith('/interaction/') ? await res.text() : '';
  }
  if (page) {
    const html = page;
    if (!html.includes('/consent'))
      throw new Error(`expected the consent page, got ${res.status}: ${html.slice(0, 300)}`);
    input.shown?.push('consent');
    ({ url: at } = await browser.follow(
      await browser.post(new URL(formAction(html, '/consent'), issuer), {
        csrf: hiddenInput(html, 'csrf'),
      }),
      issuer,
    ));
  }
  if (!at.href.startsWith(REDIRECT_URI)) throw new Error(`flow ended at ${at}`);
  return oidc.authorizationCodeGrant(
    rp,
    at,
    { pkceCodeVerifier: verifier, expectedState: state },
    input.tokenParams,
  );
}

/** An authorization code request with PKCE (S256); returns the URL and what the callback needs. */
export async function authorizationRequest(
  rp: oidc.Configuration,
  params: Record<string, string> = {},
) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { url, verifier, state };
}

/** Whether the server says the access token is active (RFC 7662), asked as the app. */
export async function isActive(rp: oidc.Configuration, accessToken: string): Promise<boolean> {
  return (await oidc.tokenIntrospection(rp, accessToken)).active;
}

/** An authorization request with prompt=none: answered with a code only if the browser has a session. */
export async function silentAuthorizationUrl(rp: oidc.Configuration): Promise<URL> {
  return oidc.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    prompt: 'none',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
}

/** Posts one login and password through a fresh login page in a new browser; the page that answers. */
export async function tryLogin(
  rp: oidc.Configuration,
  issuer: string,
  login: string,
  password: string,
) {
  const browser = new Browser();
  const { url } = await authorizationRequest(rp);
  const page = await browser.follow(await browser.get(url), issuer);
  const html = await page.res.text();
  const res = await browser.post(new URL(formAction(html, '/login'), issuer), {
    csrf: hiddenInput(html, 'csrf'),
    email: login,
    password,
  });
  return { status: res.status, html: await res.text() };
}

export type ClientCredentials = { clientId: string; clientSecret: string };
export type TokenAnswer = { status: number; body: Record<string, unknown>; ms: number };

/**
 * A raw token request (client_secret_basic), for what openid-client would hide: the status, the
 * error body, how long the answer took. A request that gets no answer within `timeoutMs` comes
 * back with status 0.
 */
export async function tokenRequest(
  issuer: string,
  client: ClientCredentials,
  params: Record<string, string>,
  { path = '/token', timeoutMs = 30_000 } = {},
): Promise<TokenAnswer> {
  const started = Date.now();
  try {
    const res = await fetch(`${issuer}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(params),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json()) as Record<string, unknown>;
    return { status: res.status, body, ms: Date.now() - started };
  } catch {
    return { status: 0, body: {}, ms: Date.now() - started };
  }
}
