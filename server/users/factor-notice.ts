import type { Config } from '../../config/load.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { EmailTokens } from './email-tokens.ts';
import { secureAccountLink } from './secure-account.ts';

export type FactorChange =
  | 'totp_added'
  | 'totp_removed'
  | 'passkey_added'
  | 'passkey_removed'
  | 'recovery_codes_renewed'
  | 'factors_reset';

const WORDS: Record<FactorChange, string> = {
  totp_added: 'an authenticator app was set up',
  totp_removed: 'the authenticator app was removed',
  passkey_added: 'a passkey was added',
  passkey_removed: 'a passkey was removed',
  recovery_codes_renewed: 'new recovery codes were made (the old ones no longer work)',
  factors_reset:
    'an administrator removed every second factor (authenticator app, recovery codes and passkeys)',
};

/**
 * Tells the owner by email that a second factor changed, with a "this wasn't me" link: whoever
 * added a factor to an account they took could otherwise keep it unnoticed. The link locks the
 * account and signs it out, but does not remove the factor it reports (that would let whoever
 * reads the mailbox strip a factor the owner has just set up); the new-sign-in notice that came
 * before an intruder's factor removes it, or an admin does (`users reset-mfa`). Sent in the
 * background; failures are logged.
 */
export function factorNotice(deps: {
  mailer: Pick<Mailer, 'sendInBackground'>;
  config: Config;
  tokens: EmailTokens;
}) {
  return (user: { id: string; email: string; name: string | null }, change: FactorChange) => {
    const at = new Date();
    deps.mailer.sendInBackground(async () => ({
      to: user.email,
      template: 'factor-changed',
      data: {
        change: WORDS[change],
        time: new Date(),
        ...(await secureAccountLink(deps, user.id, 'factor_changed', { at })),
        name: user.name ?? undefined,
      },
    }));
  };
}

export type FactorNotice = ReturnType<typeof factorNotice>;
