// The steady load a fault lands in, and the state held from before it: password sign-ins
// through the hosted login (local and directory users), refreshes, client_credentials, and
// password-reset requests whose mail must arrive. A few requests in flight, never more.
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { Browser, formAction, hiddenInput } from '../browser.ts';
import {
  authorizationRequest,
  REDIRECT_URI,
  signIn,
  silentAuthorizationUrl,
} from '../relying-party.ts';
import { ISSUER, type Cluster, type Credentials } from './cluster.ts';

/** The kinds of load; a fault has recovered when each of them succeeds again. */
export const KINDS = [
  'local sign-in',
  'directory sign-in',
  'refresh',
  'client_credentials',
  'reset mail',
] as const;
export type Kind = (typeof KINDS)[number];

/** Rotated refresh tokens the load keeps; older ones are let go (not lost: just not used). */
const TOKEN_POOL = 6;
const PAUSE_MS: Record<Kind, number> = {
  'local sign-in': 100,
  'directory sign-in': 100,
  refresh: 100,
  client_credentials: 100,
  'reset mail': 1000,
};

/** A signed-in browser and its application's refresh token, made before a fault. */
export type Held = { user: string; browser: Browser; refreshToken: string };

/** What one phase (one fault) promised and what it lost along the way. */
export type Ledger = {
  /** Refresh tokens the load holds, the latest of each chain. */
  tokens: string[];
  /** Refresh tokens answered invalid_grant though they were the latest of their chain. */
  tokensLost: number;
  /** Request ids of the login POSTs of sign-ins that completed: each needs its audit row. */
  signIns: string[];
  /** Interactions whose "check your email" page was shown: each needs its reset mail. */
  mails: string[];
};

export const newLedger = (): Ledger => ({ tokens: [], tokensLost: 0, signIns: [], mails: [] });

const isInvalidGrant = (err: unknown) =>
  err instanceof oidc.ResponseBodyError && err.error === 'invalid_grant';

/** A whole sign-in (login, consent, code redeemed); notes its login for the audit check. */
async function signInOnce(c: Cluster, ledger: Ledger, user: Credentials): Promise<Held> {
  const browser = new Browser({ transport: c.recorder.transport });
  const tokens = await signIn(c.web, browser, ISSUER, user);
  if (!tokens.refresh_token) throw new Error('no refresh token');
  const login = c.recorder
    .ownSamples()
    .find((s) => s.method === 'POST' && s.path.endsWith('/login'));
  if (login?.requestId) ledger.signIns.push(login.requestId);
  return { user: user.email, browser, refreshToken: tokens.refresh_token };
}

/** One refresh; the token that now stands for the chain, or `lost` after invalid_grant. */
export async function refreshOnce(c: Cluster, token: string): Promise<string | 'lost'> {
  try {
    const tokens = await oidc.refreshTokenGrant(c.web, token);
    return tokens.refresh_token ?? token;
  } catch (err) {
    if (isInvalidGrant(err)) return 'lost';
    throw err;
  }
}

/** Whether the browser is still signed in: prompt=none answers with a code, not login_required. */
export async function sessionCheck(c: Cluster, browser: Browser): Promise<'ok' | 'lost'> {
  const { url } = await browser.follow(
    await browser.get(await silentAuthorizationUrl(c.web)),
    ISSUER,
  );
  if (!url.href.startsWith(REDIRECT_URI)) throw new Error(`silent sign-in ended at ${url}`);
  if (url.searchParams.get('error') === 'login_required') return 'lost';
  if (!url.searchParams.get('code')) throw new Error(`no code: ${url.search}`);
  return 'ok';
}

/** "Forgot password" from a fresh login page; notes the interaction its mail must name. */
async function resetMail(c: Cluster, ledger: Ledger): Promise<void> {
  const browser = new Browser({ transport: c.recorder.transport });
  const { url } = await authorizationRequest(c.web);
  const login = await (await browser.follow(await browser.get(url), ISSUER)).res.text();
  const uid = /\/interaction\/([^/]+)\//.exec(formAction(login, '/login'))![1]!;
  const forgot = await browser.get(new URL(`/interaction/${uid}/forgot`, ISSUER));
  const html = await forgot.text();
  const sent = await browser.post(new URL(formAction(html, '/forgot'), ISSUER), {
    csrf: hiddenInput(html, 'csrf'),
    email: c.users.mail,
  });
  if (sent.status !== 200) throw new Error(`forgot answered ${sent.status}`);
  ledger.mails.push(uid);
}

const cycle = <T>(items: T[]) => {
  let i = 0;
  return () => items[i++ % items.length]!;
};

/** Signs `count` browsers in (local and directory users in turn), retrying a failed one. */
export async function establish(c: Cluster, ledger: Ledger, count: number): Promise<Held[]> {
  const users = cycle(c.users.local.flatMap((u, i) => [u, c.users.directory[i]!]));
  const held: Held[] = [];
  for (let tries = 0; held.length < count; tries++) {
    if (tries > count * 3) {
      const last = c.recorder.ops.findLast((o) => !o.ok);
      throw new Error(`could not sign in before the fault: ${last?.why}`);
    }
    const user = users();
    const done = await c.recorder.op('establish', () => signInOnce(c, ledger, user));
    if (done) held.push(done);
    else await sleep(500);
  }
  return held;
}

/** Starts the load; stop() waits for the operations in flight. */
export function startLoad(c: Cluster, ledger: Ledger) {
  let running = true;
  const local = cycle(c.users.local);
  const directory = cycle(c.users.directory);
  const keep = (token: string) => {
    ledger.tokens.push(token);
    if (ledger.tokens.length > TOKEN_POOL) ledger.tokens.shift();
  };

  async function refresh() {
    const token = ledger.tokens.shift();
    if (!token) return;
    let outcome: string | 'lost' | undefined;
    try {
      outcome = await refreshOnce(c, token);
    } finally {
      if (outcome === 'lost') ledger.tokensLost++;
      // A failed refresh leaves the client its token: it tries again with it.
      else if (outcome === undefined) ledger.tokens.unshift(token);
      else keep(outcome);
    }
    if (outcome === 'lost') throw new Error('refresh token lost: invalid_grant');
  }

  const work: Record<Kind, () => Promise<unknown>> = {
    'local sign-in': async () => keep((await signInOnce(c, ledger, local())).refreshToken),
    'directory sign-in': async () => keep((await signInOnce(c, ledger, directory())).refreshToken),
    refresh,
    client_credentials: () => oidc.clientCredentialsGrant(c.service),
    'reset mail': () => resetMail(c, ledger),
  };
  const workers = KINDS.map(async (kind) => {
    while (running) {
      if (kind !== 'refresh' || ledger.tokens.length) await c.recorder.op(kind, work[kind]);
      await sleep(PAUSE_MS[kind]);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}
