import type { Config } from '../../config/load.ts';
import type { AnyMailMessage, Mailer } from '../mail/mailer.ts';
import type { EmailTokens } from './email-tokens.ts';
import type { User } from './store.ts';

/** Without a sign-in waiting for the link, "-" stands where the interaction id would be. */
export const NO_INTERACTION = '-';

/**
 * Issues a password reset token and gives its link. The link lives under the interaction's
 * path, so that the browser that asked can finish signing in to its application.
 */
export async function resetLink(
  { config, tokens }: { config: Config; tokens: EmailTokens },
  user: User,
  interaction = NO_INTERACTION,
  ttlSeconds = config.emailLinks.resetTtl,
): Promise<string> {
  const token = await tokens.issue(user.id, 'reset_password', ttlSeconds, { interaction });
  return `${config.issuer}/interaction/${interaction}/reset?token=${token}`;
}

/**
 * The mail inviting the owner of an account an admin created to choose a password. Its link is
 * a reset link living INVITATION_TTL: the reset page sets the first password as it sets a new
 * one, and marks the address verified, which the link just proved.
 */
export async function invitationMail(
  deps: { config: Config; tokens: EmailTokens },
  user: User,
): Promise<AnyMailMessage> {
  const ttl = deps.config.emailLinks.inviteTtl;
  return {
    to: user.email,
    template: 'invitation',
    data: {
      link: await resetLink(deps, user, NO_INTERACTION, ttl),
      expiresInHours: Math.round(ttl / 3600),
      name: user.name ?? undefined,
    },
  };
}

/** The mail with a new password reset link (see resetLink). */
export async function resetLinkMail(
  deps: { config: Config; tokens: EmailTokens },
  user: User,
  interaction = NO_INTERACTION,
): Promise<{ mail: AnyMailMessage; link: string }> {
  const link = await resetLink(deps, user, interaction);
  const mail: AnyMailMessage = {
    to: user.email,
    template: 'password-reset',
    data: {
      link,
      expiresInMinutes: Math.round(deps.config.emailLinks.resetTtl / 60),
      name: user.name ?? undefined,
    },
  };
  return { mail, link };
}

/** Emails a password reset link now, saying whether it went out (for an admin who waits). */
export async function emailResetLink(
  deps: { config: Config; tokens: EmailTokens; mailer: Mailer },
  user: User,
  interaction = NO_INTERACTION,
): Promise<{ sent: boolean; link: string }> {
  const { mail, link } = await resetLinkMail(deps, user, interaction);
  return { sent: (await deps.mailer.send(mail)).sent, link };
}
