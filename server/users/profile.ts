import type { Services } from '../services.ts';
import { userEvent, type RequestFacts } from '../audit/audit.ts';
import type { Names } from './display-name.ts';
import type { User } from './store.ts';

/** The standard claims (OIDC Core §5.1) a local user edits on the profile page. */
export const PROFILE_FIELDS = ['given_name', 'family_name', 'name'] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];

export type ProfileUpdate =
  | { ok: true; changed: ProfileField[] }
  /** The directory supplies a directory user's names (server/ldap/linked-users.ts planLink). */
  | { ok: false; reason: 'directory' };

/** An empty field is a name not given: stored as null, so the claim is left out. */
const stored = (value: string | null) => (value ? value : null);

/**
 * Saves a local user's names. The row is read and written under one lock, so `changed` names
 * exactly the fields this request changed; those, never their values, go in the
 * `profile_updated` audit row, written in the same transaction. Nothing changed, nothing written.
 */
export function profileUpdater({ db, audit }: Pick<Services, 'db' | 'audit'>) {
  return (userId: string, names: Names, facts: RequestFacts): Promise<ProfileUpdate> =>
    db.transaction(async (trx) => {
      const current = await trx<User>('users')
        .where({ id: userId, source: 'local' })
        .forUpdate()
        .first();
      if (!current) return { ok: false, reason: 'directory' };
      const changed = PROFILE_FIELDS.filter((key) => stored(names[key]) !== (current[key] ?? null));
      if (!changed.length) return { ok: true, changed };
      const patch = Object.fromEntries(changed.map((key) => [key, stored(names[key])]));
      await trx('users')
        .where({ id: userId })
        .update({ ...patch, updated_at: trx.fn.now() });
      await audit.within(trx, userEvent('profile_updated', userId, { fields: changed }), facts);
      return { ok: true, changed };
    });
}

export type ProfileUpdater = ReturnType<typeof profileUpdater>;
