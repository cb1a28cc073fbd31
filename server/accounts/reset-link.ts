import type { Config } from '../../config/load.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { EmailTokens } from './email-tokens.ts';
import type { User } from './users.ts';

/** Without a sign-in waiting for the link, "-" stands where the interaction id would be. */
export const NO_INTERACTION = '-';

/**
 * Issues a password reset token and emails its link. The link lives under the interaction's
 * path, so that the browser that asked can finish signing in to its application.
 */
export async function emailResetLink(
  { config, tokens, mailer }: { config: Config; tokens: EmailTokens; mailer: Mailer },
  user: User,
  interaction = NO_INTERACTION,
): Promise<{ sent: boolean; link: string }> {
  const token = await tokens.issue(user.id, 'reset_password', config.emailLinks.resetTtl, {
    interaction,
  });
  const link = `${config.issuer}/interaction/${interaction}/reset?token=${token}`;
  const result = await mailer.send({
    to: user.email,
    template: 'password-reset',
    data: {
      link,
      expiresInMinutes: Math.round(config.emailLinks.resetTtl / 60),
      name: user.name ?? undefined,
    },
  });
  return { sent: result.sent, link };
}
