import type { Context } from 'koa';
import type { Mfa } from '../mfa/mfa.ts';
import type { Views } from '../views.ts';
import { HttpError } from './http-error.ts';

/**
 * The authenticator-app setup page (QR code, key, first code), in a sign-in or the account. The
 * key is the one of the enrolment `binding` names (server/mfa/totp.ts says why).
 */
export async function totpEnrolmentPage(
  { views, mfa }: { views: Views; mfa: Mfa },
  ctx: Context,
  user: { id: string; email: string },
  binding: string,
  form: {
    action: string;
    csrf: string;
    askPassword: boolean;
    error?: string | undefined;
    status?: number;
  },
) {
  if (await mfa.totp.enrolled(user.id))
    throw new HttpError(400, 'An authenticator app is already set up for this account.');
  const enrolment = await mfa.totp.offer(user, binding);
  const { status = 400, ...fields } = form;
  views.render(
    ctx,
    'mfa-enrol',
    {
      title: 'Set up two-step verification',
      secret: enrolment.secret,
      qrSvg: enrolment.qrSvg,
      email: user.email,
      ...fields,
    },
    form.error ? status : 200,
  );
}
