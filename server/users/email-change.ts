import type { Config } from '../../config/load.ts';
import type { AnyMailMessage } from '../mail/mailer.ts';
import type { EmailTokens } from './email-tokens.ts';
import type { User } from './store.ts';

/**
 * The mail to `newEmail` with the link that moves `user` to it once opened (the account
 * center's /account/email/confirm): the address proves itself before it replaces the old one.
 * For the owner's own request and for an admin's (admin API, PATCH /users/{id}).
 */
export async function emailChangeMail(
  { config, tokens }: { config: Config; tokens: EmailTokens },
  user: User,
  newEmail: string,
): Promise<AnyMailMessage> {
  const token = await tokens.issue(user.id, 'change_email', config.emailLinks.verifyTtl, {
    email: newEmail,
  });
  return {
    to: newEmail,
    template: 'verify-email',
    data: {
      link: `${config.issuer}/account/email/confirm?token=${token}`,
      expiresInHours: Math.round(config.emailLinks.verifyTtl / 3600),
      name: user.name ?? undefined,
    },
  };
}
