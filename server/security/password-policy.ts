import {
  defaults,
  PASSWORD_MAX_LENGTH,
  settings as configSettings,
} from '../../config/defaults.ts';
import type { Db } from '../db.ts';
import { createPasswordHistory } from './password-history.ts';
import type { PasswordHasher } from './passwords.ts';
import { StrengthCheckBusyError, type StrengthPool } from './strength-pool.ts';

export type PasswordPolicyOptions = {
  minLength: number;
  maxLength: number;
  minStrength: number;
  historySize: number;
};

/**
 * The policy the settings give by default (config/defaults.ts says why each is what it is).
 * Lengths count Unicode code points (NIST SP 800-63B-4 §3.1.1.2), so "é" or "😀" is one character.
 */
export const passwordPolicyDefaults: Readonly<PasswordPolicyOptions> = Object.freeze({
  minLength: defaults.PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  minStrength: defaults.PASSWORD_MIN_STRENGTH,
  historySize: defaults.PASSWORD_HISTORY,
});

export type PasswordContext = {
  email?: string | undefined;
  name?: string | undefined;
  givenName?: string | undefined;
  familyName?: string | undefined;
  /** Given when the account exists: the password is then checked against its recent ones. */
  userId?: string | undefined;
};

/** `busy`: too many passwords are being checked at once; the same one may pass in a moment. */
export type PolicyProblemCode =
  | 'too_short'
  | 'too_long'
  | 'too_common'
  | 'too_weak'
  | 'contains_personal_info'
  | 'reused'
  | 'busy';

/** `code` is stable, for programs; `message` is for the person choosing the password. */
export type PolicyProblem = { code: PolicyProblemCode; message: string };

export type PolicyResult = { ok: true } | { ok: false; problems: PolicyProblem[] };

export type PasswordPolicyDeps = {
  db: Db;
  passwords: Pick<PasswordHasher, 'verify'>;
  /** Where zxcvbn runs (worker threads); shared by every policy of the process. */
  strength: Pick<StrengthPool, 'estimate'>;
};

const BUSY =
  'We could not check your password just now: many are being checked at once. Try again in a moment.';

/** A shorter local part ("ann", "jo") is inside too many ordinary words to refuse on sight. */
const LOCAL_PART_CONTAINED_MIN = 4;
export function createPasswordPolicy(
  options: Partial<PasswordPolicyOptions>,
  { db, passwords, strength }: PasswordPolicyDeps,
) {
  const settings = resolveOptions(options);
  const history = createPasswordHistory(db, passwords, settings.historySize);

  return {
    settings,
    isReused: history.isReused,
    remember: history.remember,

    /**
     * Every problem with the password, cheapest rules first. A password over maxLength is refused
     * before any other work. Reuse costs argon2 verifications, so it is only looked for when the
     * password passes everything else (the next attempt is checked again anyway).
     */
    async check(password: string, context: PasswordContext = {}): Promise<PolicyResult> {
      const length = characters(password, settings.maxLength + 1);
      if (length > settings.maxLength)
        return fail([
          { code: 'too_long', message: `Use at most ${settings.maxLength} characters.` },
        ]);
      const problems: PolicyProblem[] = [];
      if (length < settings.minLength)
        problems.push({
          code: 'too_short',
          message: `Use at least ${settings.minLength} characters.`,
        });
      const personal = personalInfoProblem(password, context);
      if (personal) problems.push(personal);
      try {
        const weak = await strength.estimate({
          password,
          userInputs: personalWords(context),
          minStrength: settings.minStrength,
        });
        if (weak) problems.push(weak);
      } catch (err) {
        if (!(err instanceof StrengthCheckBusyError)) throw err;
        return fail([{ code: 'busy', message: BUSY }]);
      }
      if (problems.length > 0) return fail(problems);
      if (context.userId && (await history.isReused(context.userId, password)))
        return fail([{ code: 'reused', message: reusedMessage(settings.historySize) }]);
      return { ok: true };
    },
  };
}

export type PasswordPolicy = ReturnType<typeof createPasswordPolicy>;

function resolveOptions(options: Partial<PasswordPolicyOptions>): Readonly<PasswordPolicyOptions> {
  const settings = {
    minLength: options.minLength ?? passwordPolicyDefaults.minLength,
    maxLength: options.maxLength ?? passwordPolicyDefaults.maxLength,
    minStrength: options.minStrength ?? passwordPolicyDefaults.minStrength,
    historySize: options.historySize ?? passwordPolicyDefaults.historySize,
  };
  // The same bounds as the settings that set them, so a policy built in code is held to them too.
  const bounds = {
    minLength: configSettings.PASSWORD_MIN_LENGTH.schema,
    minStrength: configSettings.PASSWORD_MIN_STRENGTH.schema,
    historySize: configSettings.PASSWORD_HISTORY.schema,
  };
  for (const [name, bound] of Object.entries(bounds)) {
    const result = bound.safeParse(settings[name as keyof typeof bounds]);
    if (!result.success)
      throw new Error(`Password policy: ${name}: ${result.error.issues[0]?.message}.`);
  }
  if (!Number.isSafeInteger(settings.maxLength) || settings.maxLength < settings.minLength)
    throw new Error('Password policy: maxLength must be a whole number no smaller than minLength.');
  return Object.freeze(settings);
}

const fail = (problems: PolicyProblem[]): PolicyResult => ({ ok: false, problems });

/** Code points in text, counting no further than limit, so a huge string costs no more to refuse. */
function characters(text: string, limit = Infinity): number {
  let count = 0;
  for (const _ of text) if (++count >= limit) break;
  return count;
}

/** Email, its local part and names, lower-cased and trimmed; absent ones left out. */
function personalDetails(context: PasswordContext) {
  const clean = (value: string | undefined) => value?.trim().toLowerCase() ?? '';
  const email = clean(context.email);
  const at = email.lastIndexOf('@');
  return {
    email,
    localPart: at > 0 ? email.slice(0, at) : '',
    names: [context.name, context.givenName, context.familyName].map(clean).filter(Boolean),
  };
}

/**
 * The password equals (ignoring case and surrounding spaces) the email, its local part or a
 * name, or contains a local part of 4+ characters. The messages never repeat the password.
 */
function personalInfoProblem(password: string, context: PasswordContext): PolicyProblem | null {
  const { email, localPart, names } = personalDetails(context);
  const typed = password.trim().toLowerCase();
  const problem = (message: string): PolicyProblem => ({ code: 'contains_personal_info', message });
  if (email && typed === email) return problem("Don't use your email address as your password.");
  if (localPart && typed === localPart)
    return problem("Don't use the part of your email address before the @ as your password.");
  if (names.includes(typed)) return problem("Don't use your name as your password.");
  if (characters(localPart) >= LOCAL_PART_CONTAINED_MIN && typed.includes(localPart))
    return problem("Don't include the part of your email address before the @ in your password.");
  return null;
}

/** What zxcvbn should count as cheap to guess: the details whole, and their words of 3+ letters. */
function personalWords(context: PasswordContext): string[] {
  const { email, localPart, names } = personalDetails(context);
  const words = [localPart, ...names]
    .flatMap((text) => text.split(/[^\p{L}\p{N}]+/u))
    .filter((word) => characters(word) >= 3);
  return [...new Set([email, localPart, ...names, ...words].filter(Boolean))];
}

function reusedMessage(historySize: number): string {
  const recent =
    historySize === 1
      ? 'your current or your previous password'
      : `your current password or one of your previous ${historySize}`;
  return `Choose a password you haven't used recently: this one is ${recent}.`;
}
