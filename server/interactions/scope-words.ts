/** What each scope lets an application do, in the user's words (the consent and apps pages). */
const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are when you sign in',
  profile: 'See your name',
  email: 'See your email address and whether it is verified',
  roles: 'See the roles you hold',
  offline_access: 'Stay connected when you are not using it',
};

/** The words for each scope; a scope without words of its own is shown by its name. */
export const scopeWords = (scopes: string[]): string[] => scopes.map((s) => SCOPE_TEXT[s] ?? s);

/** An API (resource indicator) and the scopes allowed on it, as the pages list them. */
export type ApiScopes = { api: string; scopes: string[] };

/** Resource scopes as stored ("read write" per indicator) or asked (a list per indicator). */
export const apiScopes = (resources: Record<string, string | string[]>): ApiScopes[] =>
  Object.entries(resources).map(([api, scope]) => ({
    api,
    scopes: typeof scope === 'string' ? scope.split(' ').filter(Boolean) : scope,
  }));
