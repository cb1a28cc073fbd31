import { randomBytes } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { ClientMetadata, default as Provider } from 'oidc-provider';
import type { Services } from '../services.ts';
import { activityDue, grantsOfSession, noteSessionActivity } from '../users/session-activity.ts';
import { sessionStands } from '../users/session-rule.ts';
import type { User } from '../users/store.ts';
import { ACR, withSecondFactor } from '../mfa/mfa.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { queryText } from '../http/form.ts';

/**
 * The account pages' own client: first party, so its sign-ins ask no consent (see
 * loadExistingGrant in provider.ts). It only ever starts sign-ins: its codes are not redeemed,
 * as the pages read the session itself.
 */
export const ACCOUNT_CLIENT_ID = 'latchkey-account';
const CALLBACK_PATH = '/account/callback';

export function accountClient(issuer: string): ClientMetadata {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'your account',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${issuer}${CALLBACK_PATH}`],
  };
}

/** The signed-in user of an account page, set by `require` on ctx.state.account. */
export type AccountSession = {
  user: User;
  /** The oidc-provider session (its jti): forms are bound to it. */
  sessionId: string;
  /** The grants of the apps this browser's session signed in to. */
  grantIds: string[];
};

/**
 * complete: the user owes nothing of their sign-in (the second factor included, by the rule
 * of the `mfa` prompt). recent: and that full sign-in happened within REAUTH_MAX_AGE, as a
 * sensitive change asks.
 */
export type AccessLevel = 'complete' | 'recent';

type Deps = Pick<Services, 'config' | 'mfa' | 'csrf' | 'views' | 'log'> & {
  provider: () => Provider;
};

/** Who may see the account pages: a complete sign-in, and a recent one for sensitive changes. */
export function accountAccess({ config, provider, mfa, csrf, views, log }: Deps) {
  const maxAgeSeconds = config.mfa.reauthMaxAgeSeconds;

  // The page to come back to rides in `state`, signed so the callback cannot be made to
  // send the browser anywhere else.
  const sign = (path: string) => csrf.token(csrfBindings.accountReturn(path));
  const sealReturn = (path: string) => `${Buffer.from(path).toString('base64url')}.${sign(path)}`;
  function openReturn(state: string): string | undefined {
    const [encoded = '', signature] = state.split('.');
    const path = Buffer.from(encoded, 'base64url').toString('utf8');
    const ours = path === '/account' || path.startsWith('/account/');
    return ours && csrf.verify(csrfBindings.accountReturn(path), signature) ? path : undefined;
  }

  async function load(ctx: Context) {
    const session = await provider().Session.get(ctx as never);
    if (!session.accountId) return undefined;
    const found = await mfa.userWithState(session.accountId);
    if (!found || !sessionStands(found.user, session)) return undefined;
    const complete = !(await mfa.owesSecondFactor(
      found.user.id,
      session.acr,
      undefined,
      found.state,
    ));
    const account: AccountSession = {
      user: found.user,
      sessionId: session.jti,
      grantIds: grantsOfSession(session),
    };
    return { account, complete, loginTs: session.loginTs ?? 0, session };
  }

  type Loaded = NonNullable<Awaited<ReturnType<typeof load>>>;

  /**
   * A visit to the account pages is the session's activity too (its "last active", this
   * browser's IP): noted when the last note is old enough, keeping the session's expiry. Only
   * a note, so a store that fails to take it does not fail the page.
   */
  async function noteVisit(ctx: Context, { session }: Loaded) {
    if (typeof session.exp !== 'number' || !activityDue(session)) return;
    noteSessionActivity(ctx, session);
    await session.persist().catch((err: unknown) => {
      log.warn({ err, requestId: ctx.state.requestId }, 'session activity not noted');
    });
  }

  /** The authorization request that signs this browser in (again, with `reauth`) for `returnTo`. */
  function signInUrl(returnTo: string, reauth?: { loginHint: string }) {
    const params = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${config.issuer}${CALLBACK_PATH}`,
      state: sealReturn(returnTo),
      // Never redeemed (see ACCOUNT_CLIENT_ID); present because every code request carries PKCE.
      code_challenge: randomBytes(32).toString('base64url'),
      code_challenge_method: 'S256',
      ...(reauth && { prompt: 'login', login_hint: reauth.loginHint }),
    });
    return `/auth?${params}`;
  }

  /** The page a refused request comes back to: a form's own page, not its POST target. */
  function pageOf(ctx: Context): string {
    if (ctx.method === 'GET') return ctx.path;
    return ctx.path.startsWith('/account/mfa') ? '/account/mfa' : ctx.path;
  }

  return {
    /**
     * Lets the request through with ctx.state.account set, or sends the browser to sign in:
     * to finish its sign-in (the second factor it owes), or to sign in again when `recent` is
     * asked and the last full sign-in is older than REAUTH_MAX_AGE.
     */
    require(level: AccessLevel): Middleware {
      return async (ctx, next) => {
        const found = await load(ctx);
        const fresh = !!found && Math.floor(Date.now() / 1000) - found.loginTs <= maxAgeSeconds;
        if (found?.complete && (level === 'complete' || fresh)) {
          ctx.state.account = found.account;
          await noteVisit(ctx, found);
          return next();
        }
        ctx.status = 303;
        ctx.redirect(
          signInUrl(
            pageOf(ctx),
            found?.complete ? { loginHint: found.account.user.email } : undefined,
          ),
        );
      };
    },

    /**
     * A first factor added in this session counts as its second factor: the user has just shown
     * it, after a recent sign-in and the password, and is not asked for it again at once.
     */
    async factorAdded(ctx: Context, factor: Parameters<typeof withSecondFactor>[1]) {
      const session = await provider().Session.get(ctx as never);
      if (!session.accountId || session.acr === ACR.mfa) return;
      session.acr = ACR.mfa;
      session.amr = withSecondFactor(session.amr, factor);
      await session.persist();
    },

    /** Where those sign-ins end: back to the page that asked, once the session is complete. */
    callback: (async (ctx) => {
      const returnTo = openReturn(queryText(ctx, 'state'));
      if (ctx.query.error || !returnTo)
        return views.render(
          ctx,
          'error',
          {
            title: 'You are not signed in',
            description:
              ctx.query.error === 'access_denied'
                ? 'The sign-in was cancelled. Open your account page again to sign in.'
                : 'The sign-in did not complete. Open your account page again to sign in.',
          },
          400,
        );
      ctx.status = 303;
      ctx.redirect(returnTo);
    }) as Middleware,
  };
}

export type AccountAccess = ReturnType<typeof accountAccess>;

/** The account a `require`d route serves. */
export const accountOf = (ctx: Context): AccountSession => ctx.state.account as AccountSession;
