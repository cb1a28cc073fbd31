import type { ActivityRow } from '../audit/activity.ts';
import { describeDevice } from '../users/devices.ts';

/** What each kind of event was, in the user's words; `app` is the client's name, when named. */
const EVENT_WORDS: Record<string, (detail: Record<string, unknown>, app: string) => string> = {
  sign_in: (d, app) => `Signed in${METHOD[String(d.method)] ?? ''}${app && ` to ${app}`}`,
  sign_out: () => 'Signed out',
  user_registered: () => 'Created the account',
  email_verified: () => 'Confirmed the email address',
  email_changed: () => 'Changed the email address',
  profile_updated: (d) => `Changed the ${fieldWords(d.fields)}`,
  password_changed: () => 'Changed the password',
  password_reset: () => 'Reset the password by email',
  mfa_enrolled: (d) =>
    d.factor === 'passkey' ? 'Added a passkey' : 'Turned on the authenticator app',
  mfa_removed: (d) =>
    d.factor === 'passkey' ? 'Removed a passkey' : 'Turned off the authenticator app',
  recovery_codes_regenerated: () => 'Made new recovery codes',
  recovery_code_used: () => 'Signed in with a recovery code',
  account_locked: () => 'The account was locked after failed sign-ins',
  account_unlocked: () => 'The account was unlocked',
  account_secured_by_owner: () => 'Secured the account from an email ("this was not me")',
  consent_granted: (_d, app) => `Allowed ${app || 'an app'} to use the account`,
  consent_withdrawn: (_d, app) => `Removed the access of ${app || 'an app'}`,
  session_ended: () => 'Ended a session',
  other_sessions_ended: () => 'Ended the other sessions',
  new_device_sign_in: (d) =>
    `Signed in from a new device${typeof d.device === 'string' ? `: ${d.device}` : ''}`,
  grant_revoked: (d, app) => (REVOKED[String(d.cause)] ?? REVOKED.other!)(app || 'an app'),
};

/** A grant's end in words, by its cause (server/audit/protocol-events.ts). */
const REVOKED: Record<string, (app: string) => string> = {
  app_revoked: (app) => `Signed out of ${app}: it gave up its access`,
  sign_out: (app) => `Signed out of ${app}: its access ended`,
  reused: (app) =>
    `The access of ${app} was ended: an old refresh token or sign-in code was used again`,
  other: (app) => `The access of ${app} ended`,
};

const METHOD: Record<string, string> = {
  password: ' with the password',
  passkey: ' with a passkey',
  totp: ' with an authenticator code',
  recovery: ' with a recovery code',
};

const FIELD_WORDS: Record<string, string> = {
  given_name: 'given name',
  family_name: 'family name',
  name: 'display name',
};

/** The names a profile change named, in its order: "given name and display name". */
function fieldWords(fields: unknown): string {
  const words = (Array.isArray(fields) ? fields : [])
    .filter((f) => Object.hasOwn(FIELD_WORDS, String(f)))
    .map((f) => FIELD_WORDS[String(f)]!);
  if (!words.length) return 'profile';
  return words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/** Why a sign-in failed, for those reasons a user can act on. */
const FAILURE_WORDS: Record<string, string> = {
  wrong_password: 'wrong password',
  wrong_totp: 'wrong authenticator code',
  wrong_recovery: 'wrong recovery code',
  wrong_passkey: 'passkey not accepted',
  rate_limited: 'too many attempts',
  locked: 'the account was locked',
  email_not_verified: 'email address not confirmed yet',
  disabled: 'the account is disabled',
};

export type ActivityLine = {
  what: string;
  at: Date;
  /** How many alike refusals the row stands for, and the last one's time. */
  times: number;
  lastAt: Date | undefined;
  device: string | undefined;
  ip: string | undefined;
  failed: boolean;
};

/**
 * One event in plain words. Only the event's kind, outcome and the client named in it are
 * used: the detail's other fields (a masked address, counts) are not shown.
 */
export function activityLine(row: ActivityRow, appName: (id: string) => string): ActivityLine {
  const client = typeof row.detail.client === 'string' ? appName(row.detail.client) : '';
  const words = EVENT_WORDS[row.type];
  const base = words ? words(row.detail, client) : humanise(row.type);
  const failed = row.outcome === 'failure';
  const why = FAILURE_WORDS[String(row.detail.reason)];
  const what = failed
    ? row.type === 'sign_in'
      ? `Failed sign-in${client && ` to ${client}`}${why ? `: ${why}` : ''}`
      : `${base} (refused)`
    : base;
  return {
    what,
    at: row.at,
    times: row.count,
    lastAt: row.count > 1 && row.lastAt ? row.lastAt : undefined,
    device: row.userAgent ? describeDevice(row.userAgent, '').description : undefined,
    ip: row.ip ?? undefined,
    failed,
  };
}

const humanise = (type: string) => {
  const text = type.replaceAll('_', ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
};
