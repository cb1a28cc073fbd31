import { z } from 'zod';
import { parseDuration } from './protection.ts';

// Multi-factor sign-in settings: the schema fragment and the typed view loadConfig builds.

export const mfaSchema = {
  MFA_POLICY: z.enum(['off', 'optional', 'required']),
  MFA_REQUIRED_ROLES: z.string(),
  PASSKEY_LOGIN: z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]),
  REAUTH_MAX_AGE: z
    .string()
    .transform((text) => parseDuration(text) ?? NaN)
    .refine((seconds) => seconds > 0, { message: 'a duration like 5m' }),
};

type Parsed = { [K in keyof typeof mfaSchema]: z.output<(typeof mfaSchema)[K]> };

export type MfaConfig = {
  /**
   * off: no second factor anywhere. optional: users may enrol; those who did are asked at each
   * sign-in. required: everyone must, and enrols at the next sign-in if not yet.
   */
  policy: 'off' | 'optional' | 'required';
  /** With optional: users with any of these roles are treated as under `required`. */
  requiredRoles: string[];
  /** A passkey alone may sign in (passwordless), not only as a second factor. */
  passkeyLogin: boolean;
  /** Seconds a full sign-in counts as recent enough for a sensitive change in the account. */
  reauthMaxAgeSeconds: number;
};

export function mfaConfig(c: Parsed): { mfa: MfaConfig } {
  return {
    mfa: {
      policy: c.MFA_POLICY,
      requiredRoles: c.MFA_REQUIRED_ROLES.split(',')
        .map((r) => r.trim())
        .filter(Boolean),
      passkeyLogin: [true, 'true', '1', 'yes'].includes(c.PASSKEY_LOGIN),
      reauthMaxAgeSeconds: c.REAUTH_MAX_AGE,
    },
  };
}
