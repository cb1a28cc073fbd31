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
