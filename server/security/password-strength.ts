// The zxcvbn strength estimate, run on a worker thread of server/security/strength-pool.ts (it
// costs up to ~160 ms of CPU, which on the event loop would hold up every other request). Piscina
// calls the default export; this module is loaded by Node itself, from source (type stripping)
// or from dist/, so it imports only packages and types.
import { ZxcvbnFactory, type MatchExtended, type ZxcvbnResult } from '@zxcvbn-ts/core';
import * as zxcvbnCommon from '@zxcvbn-ts/language-common';
import * as zxcvbnEn from '@zxcvbn-ts/language-en';

export type StrengthProblem = { code: 'too_common' | 'too_weak'; message: string };

export type StrengthTask = {
  password: string;
  /** Details of the person (email, names and their words) zxcvbn counts as cheap to guess. */
  userInputs: string[];
  /** zxcvbn score 0-4 the password must reach. */
  minStrength: number;
};

/**
 * zxcvbn's cost is (l33t variants tried) x (characters looked at). It runs on a worker thread,
 * but its time is still a thread's time and a wait for everyone queued behind it.
 * With its own defaults (100 variants, 256 characters) a random 128-character password took ~1 s
 * on a 2-core machine; 25 variants of the first 64 characters take ~160 ms at worst. 25 still
 * find substitutions like "p@ssw0rd": of 1,500 heavily l33t-spoken passwords, ~1% passed or
 * failed score 3 differently than with 100.
 */
const STRENGTH_L33T_VARIANTS = 25;
/**
 * Only the first 64 characters are estimated. That cannot pass a weak password: a password whose
 * first 64 characters are hard to guess is at least as hard. It may refuse one that only gets
 * strong after its 64th character, which is an odd enough password to ask for another.
 */
const STRENGTH_WINDOW = 64;

/** What to say when zxcvbn gave no advice (it gives none for scores above 2). */
const MORE_WORDS = 'Add another word or two that are less common.';
const UNPREDICTABLE = 'Choose something less predictable: a few unrelated words work well.';

/** Built once per worker thread (~130 ms) as it starts: the dictionaries never change. */
const estimator = new ZxcvbnFactory({
  dictionary: { ...zxcvbnCommon.dictionary, ...zxcvbnEn.dictionary },
  graphs: zxcvbnCommon.adjacencyGraphs,
  translations: {
    ...zxcvbnEn.translations,
    warnings: {
      ...zxcvbnEn.translations.warnings,
      userInputs: 'Your name and email address are among the first things an attacker tries.',
    },
  },
  l33tMaxSubstitutions: STRENGTH_L33T_VARIANTS,
  maxLength: STRENGTH_WINDOW,
});

/**
 * too_common: the whole password is on zxcvbn's list of commonly used passwords (ignoring case,
 * l33t substitutions and reversal), whatever minStrength says; or it scores below minStrength
 * and the longest pattern zxcvbn found in it is on that list ("password" in "password1234").
 * too_weak: any other score below minStrength, with zxcvbn's warning and suggestions.
 */
function judge(result: ZxcvbnResult, minStrength: number): StrengthProblem | null {
  const [only] = result.sequence;
  if (result.sequence.length === 1 && only && isCommonPassword(only))
    return {
      code: 'too_common',
      message: `This is one of the most commonly used passwords. ${UNPREDICTABLE}`,
    };
  if (result.score >= minStrength) return null;
  if (isCommonPassword(longestMatch(result.sequence)))
    return {
      code: 'too_common',
      message: `This password is built on a commonly used password. ${UNPREDICTABLE}`,
    };
  const { warning, suggestions } = result.feedback;
  const advice = suggestions.length > 0 ? suggestions : [MORE_WORDS];
  return {
    code: 'too_weak',
    message: ['This password is too easy to guess.', warning, ...advice].filter(Boolean).join(' '),
  };
}

const isCommonPassword = (match: MatchExtended | undefined) =>
  match?.pattern === 'dictionary' && String(match.dictionaryName).startsWith('passwords');

/** The first of the longest patterns, as zxcvbn picks the one its feedback is about. */
function longestMatch(sequence: MatchExtended[]): MatchExtended | undefined {
  let longest = sequence[0];
  for (const match of sequence)
    if (longest && match.token.length > longest.token.length) longest = match;
  return longest;
}

/** The worker's task: what is wrong with the password's strength, or null. */
export default function estimateStrength({
  password,
  userInputs,
  minStrength,
}: StrengthTask): StrengthProblem | null {
  return judge(estimator.check(password, userInputs), minStrength);
}
