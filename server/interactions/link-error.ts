import type { Context } from 'koa';
import type { Redeemed } from '../users/email-tokens.ts';
import type { Views } from '../views.ts';

type Reason = Exclude<Redeemed, { ok: true }>['reason'];

const PROBLEMS: Record<Reason, string> = {
  invalid:
    'This link is not valid. Check that you opened the whole link from the email, or ask for a new one.',
  expired: 'This link has expired. Ask for a new one from the sign-in page.',
  used: 'This link was already used. Ask for a new one if you still need it.',
};

/** The page for an emailed link that cannot be used, saying why and what to do. */
export function linkError(views: Views, ctx: Context, reason: Reason): void {
  views.render(
    ctx,
    'error',
    { title: 'This link cannot be used', description: PROBLEMS[reason] },
    400,
  );
}
