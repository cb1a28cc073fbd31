// The catalogue of mails: what each template needs and its subject. The bodies live in
// views/mail/<name>.html.eta and views/mail/<name>.text.eta.

/** Shown in the greeting when known ("Hello Ada,"); the mail reads fine without it. */
type Greeting = { name?: string | undefined };

/** The "this wasn't me" link of a security notice, and the days it works. */
type ThisWasntMe = { link: string; expiresInDays: number };

export type MailTemplates = {
  /** After registration or an email change: proves the address belongs to the user. */
  'verify-email': Greeting & { link: string; expiresInHours: number };
  /** Asked for on the "forgot password" page; ignoring it changes nothing. */
  'password-reset': Greeting & { link: string; expiresInMinutes: number };
  /**
   * Notice after a password change. `link` is the single-use "this wasn't me" link
   * (server/users/secure-account.ts): it locks the account and signs it out everywhere.
   */
  'password-changed': Greeting & ThisWasntMe & { time: Date };
  /**
   * Sent to the old address, so a hijacked account's owner still hears of it. `link` lets them
   * take the account back from this address (a password reset would go to the new one): it
   * gives the address back, locks the account and signs it out everywhere.
   */
  'email-changed': Greeting & ThisWasntMe & { newEmail: string; time: Date };
  /** A sign-in from a device not seen before on this account; `link` as for password-changed. */
  'new-device': Greeting & ThisWasntMe & { device: string; ip: string; time: Date };
  /** A second factor added or removed, or new recovery codes; `change` says which, in words. */
  'factor-changed': Greeting & ThisWasntMe & { change: string; time: Date };
  /**
   * Someone registered with an address that already has an account. Registration answers the
   * same either way (no account enumeration); the owner learns of it here.
   */
  'registration-attempt': Greeting & { link: string; resetLink: string };
  /**
   * The account was locked after failed sign-ins. It unlocks by itself at `until`; `link` unlocks
   * it now, and `resetLink` is for the owner who suspects someone knows or is guessing it.
   */
  'account-locked': Greeting & { until: Date; link: string; resetLink: string };
  /**
   * A signed-in user asked to move their account to this address, which another account has.
   * The page answers as if the link went out (no enumeration); this address's owner learns of it.
   */
  'email-in-use': Greeting & { link: string };
  /**
   * The owner (or an admin) deleted the account: its last word to the address, which no longer
   * signs in anywhere. `link` is the service's home page: no action is left to take on it.
   */
  'account-deleted': Greeting & { time: Date; link: string };
  /**
   * An admin created the account and invites its owner to choose a password: `link` is a
   * single-use set-password link (the reset page, server/users/reset-link.ts).
   */
  invitation: Greeting & { link: string; expiresInHours: number };
};

export type MailTemplate = keyof MailTemplates;

export const MAIL_SUBJECTS: { readonly [T in MailTemplate]: (productName: string) => string } = {
  'verify-email': (p) => `Verify your email address for ${p}`,
  'password-reset': (p) => `Reset your ${p} password`,
  'password-changed': (p) => `Your ${p} password was changed`,
  'email-changed': (p) => `The email address of your ${p} account was changed`,
  'new-device': (p) => `New sign-in to your ${p} account`,
  'factor-changed': (p) => `Two-step verification of your ${p} account changed`,
  'registration-attempt': (p) => `Someone tried to register at ${p} with your email address`,
  'account-locked': (p) => `Your ${p} account was locked after failed sign-ins`,
  'email-in-use': (p) => `Someone tried to move a ${p} account to your email address`,
  'account-deleted': (p) => `Your ${p} account was deleted`,
  invitation: (p) => `You are invited to ${p}: choose your password`,
};

export const MAIL_TEMPLATES = Object.keys(MAIL_SUBJECTS) as MailTemplate[];
