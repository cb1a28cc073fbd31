import type Router from '@koa/router';
import { displayName } from '../users/display-name.ts';
import { standingSessions } from '../users/session-rule.ts';
import { accountOf } from './access.ts';
import type { AccountDeps, AccountPages } from './router.ts';

/**
 * The account's home: who the user is, how they sign in, and a line on each section with its
 * link. Only sections that exist are listed (two-step verification is none with MFA_POLICY=off).
 */
export function addAccountHome(router: Router, deps: AccountDeps & AccountPages): void {
  const { views, mfa, passkeys, adapter, config, complete } = deps;

  router.get('/', complete, async (ctx) => {
    const { user } = accountOf(ctx);
    const [state, keys, sessions] = await Promise.all([
      mfa.enabled ? mfa.state(user.id) : undefined,
      mfa.enabled ? passkeys.list(user.id) : [],
      standingSessions(adapter, user),
    ]);
    views.render(ctx, 'account-home', {
      title: 'Your account',
      name: displayName(user),
      email: user.email,
      verified: user.email_verified,
      directory: user.source === 'ldap',
      passwordMessage: config.ldap?.passwordMessage,
      passkeyLogin: config.mfa.passkeyLogin && keys.length > 0,
      mfa: state && { totp: state.totp, passkeys: keys.length, required: state.required },
      sessions: sessions.length,
      canDelete: config.accountDeletion && user.source !== 'ldap',
    });
  });
}
