import type { CsrfBinding } from '../security/csrf.ts';

/** A form's CSRF binding and what the page says when a posted token does not match it. */
export type FormBinding = CsrfBinding & { expired: string };

const RELOAD = 'The form expired. Reload the page and try again.';
const REOPEN = 'The form expired. Open the link from the email again.';

/** The emailed links, named as their forms' bindings are (a link's token is bound to its kind). */
export type EmailLinkKind = 'verify' | 'reset' | 'unlock' | 'email-confirm' | 'secure-account';

/**
 * What every form's CSRF token is bound to, in one place: a token is good only for the form,
 * the session or the emailed link it was made for, so a token of one form is none of another's.
 */
export const csrfBindings = {
  /** The hosted sign-in pages: the interaction they belong to. */
  interaction: (uid: string): FormBinding => ({ key: uid, expired: RELOAD }),
  /** "Continue" after saving the first recovery codes: only the browser that confirmed the code. */
  mfaContinue: (uid: string): FormBinding => ({
    key: `mfa-enrolled:${uid}`,
    expired: 'The form expired. Go back to the application and sign in again.',
  }),
  /** The account pages: the signed-in session, one binding per page. */
  password: (sessionId: string): FormBinding => ({ key: `password:${sessionId}`, expired: RELOAD }),
  email: (sessionId: string): FormBinding => ({ key: `email:${sessionId}`, expired: RELOAD }),
  profile: (sessionId: string): FormBinding => ({ key: `profile:${sessionId}`, expired: RELOAD }),
  mfaSettings: (sessionId: string): FormBinding => ({ key: `mfa:${sessionId}`, expired: RELOAD }),
  sessions: (sessionId: string): FormBinding => ({ key: `sessions:${sessionId}`, expired: RELOAD }),
  apps: (sessionId: string): FormBinding => ({ key: `apps:${sessionId}`, expired: RELOAD }),
  dataExport: (sessionId: string): FormBinding => ({ key: `export:${sessionId}`, expired: RELOAD }),
  accountDeletion: (sessionId: string): FormBinding => ({
    key: `delete:${sessionId}`,
    expired: RELOAD,
  }),
  /** The button of an emailed link: the link's own token (missing: bound to nothing usable). */
  emailLink: (kind: EmailLinkKind, token = ''): FormBinding => ({
    key: `${kind}:${token}`,
    expired: REOPEN,
  }),
  /** Not a form: the signature of the account page a sign-in returns to. */
  accountReturn: (path: string): CsrfBinding => ({ key: `account-return:${path}` }),
  /** Not a form: the handle that names a session in the account pages instead of its id. */
  sessionHandle: (sessionId: string): CsrfBinding => ({ key: `session-handle:${sessionId}` }),
};
