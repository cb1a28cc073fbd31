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

/** Lengths count Unicode code points (NIST SP 800-63B-4 §3.1.1.2), so "é" or "😀" is one character. */
export const passwordPolicyDefaults: Readonly<PasswordPolicyOptions> = Object.freeze({
  /**
   * OWASP ASVS 4.0 V2.1.1's minimum. NIST SP 800-63B-4 asks for 15 where the password is the
   * only factor: raise it when accounts have no second factor and users can live with it.
   */
  minLength: 12,
  /**
   * OWASP ASVS 4.0 V2.1.2: allow at least 64, refuse more than 128. argon2 itself takes up to
   * 2^32-1 bytes, so this is our bound on what reaches it and zxcvbn: a DoS guard, since both
   * cost grows with the input and nobody types a 129-character password.
   */
  maxLength: 128,
  /**
   * zxcvbn score 0-4. 3 means an estimated 10^8 guesses or more: out of reach of online guessing
   * and slow to crack offline against argon2id hashes. 4 (10^10) refuses many memorable passphrases.
   */
  minStrength: 3,
  /**
   * Previous passwords remembered besides the current one; 0 turns the reuse check off, the
   * current password included. We never force periodic changes (NIST SP 800-63B-4 §3.1.1.2), so
   * history only has to stop switching straight back after a change, e.g. after a leak; 5 does
   * that at a cost of at most 6 argon2 verifications per change.
   */
  historySize: 5,
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
  const wrong = (what: string) => new Error(`Password policy: ${what}.`);
  const isCount = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!isCount(settings.minLength) || settings.minLength < 1)
    throw wrong('minLength must be a whole number of at least 1');
  if (!isCount(settings.maxLength) || settings.maxLength < settings.minLength)
    throw wrong('maxLength must be a whole number no smaller than minLength');
  if (![0, 1, 2, 3, 4].includes(settings.minStrength))
    throw wrong('minStrength must be a zxcvbn score from 0 to 4');
  if (!isCount(settings.historySize)) throw wrong('historySize must be a whole number (0 is off)');
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
