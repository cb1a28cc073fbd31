import type { Adapter, AdapterPayload } from 'oidc-provider';

export type { Adapter, AdapterPayload };

/** Our stores: oidc-provider's adapter, and an atomic read-and-delete for single-use values. */
export type StorageAdapter = Adapter & {
  /** The payload, deleted in the same step: of two concurrent takes, only one gets it. */
  take(id: string): Promise<AdapterPayload | undefined>;
  /**
   * Marks the payload consumed; true only for the first consume. With `until` (epoch ms), a
   * consume not done by then is undone and rejected, never left to land later.
   */
  consumeOnce(id: string, until?: number): Promise<boolean>;
};

/** A stored payload with its id (a session's id is its cookie's value: never show it whole). */
export type Stored = { id: string; payload: AdapterPayload };

/** Which of an account's sessions to end: all, all but one, or one. */
export type EndSessions = { except?: string | undefined; only?: string | undefined };

/**
 * What one store answers about an account: its live sessions and grants (for the account center
 * and the admin API), and ending its sessions (signing out everywhere).
 */
export type AccountStore = {
  sessionsOf(accountId: string): Promise<Stored[]>;
  /**
   * Ends every live session of the account but `except`, or only the session `only` when it is
   * the account's; returns how many it ended.
   */
  endSessions(accountId: string, options?: EndSessions): Promise<number>;
  grantsOf(accountId: string): Promise<Stored[]>;
};
