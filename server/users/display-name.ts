/** The names an account keeps (server/users/store.ts). */
export type Names = {
  name: string | null;
  given_name: string | null;
  family_name: string | null;
};

/**
 * The name apps get in the `name` claim (OIDC Core §5.1: the full name, "in displayable form"):
 * the one the user set, or else their given and family names joined, as Keycloak derives it
 * from first and last name. Undefined when the account has no name at all.
 */
export function displayName(user: Names) {
  if (user.name) return user.name;
  const joined = [user.given_name, user.family_name].filter(Boolean).join(' ');
  return joined || undefined;
}

/**
 * What a name may not hold: control characters (a line break has no honest use in a name that
 * goes into ID tokens, pages and mails), and the bidirectional overrides, embeddings and
 * isolates that make text display in another order than it is stored ("Trojan Source",
 * CVE-2021-42574), so that one name reads as another. The marks (U+200E, U+200F) stay allowed.
 */
export const UNFIT_IN_NAME = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;
