import type { User } from '../users/store.ts';
import type { ApiCaller } from './bearer.ts';
import { ApiProblem } from './problems.ts';
import { ADMIN_ROLE, ADMIN_SCOPES } from './scopes.ts';

/**
 * What a user change through the admin API may do with the admin role. The role opens every
 * scope of the API to its holder (through any console client allowed them), so only a caller
 * that already holds every scope may give or take it: users:write must not be a way to all the
 * others. And a person may not disable themselves or drop their own role (another admin can):
 * the last admin would lock everyone out.
 */
export function guardAdminRole(
  caller: ApiCaller,
  user: Pick<User, 'id' | 'roles'> | undefined,
  change: { roles?: string[] | undefined; disabled?: boolean | undefined },
): void {
  const before = user?.roles.includes(ADMIN_ROLE) ?? false;
  const after = change.roles ? change.roles.includes(ADMIN_ROLE) : before;
  if (before !== after && !ADMIN_SCOPES.every((scope) => caller.scopes.has(scope)))
    throw new ApiProblem(
      'forbidden',
      'Only a caller holding every admin API scope may give or take the admin role.',
    );
  const self = caller.kind === 'person' && caller.userId === user?.id;
  if (self && (change.disabled || !after))
    throw new ApiProblem(
      'forbidden',
      'You cannot disable yourself or drop your own admin role: another admin can.',
    );
}

/**
 * An admin's account is worth every scope: moving its address, resetting its factors or its
 * password, disabling or deleting it would hand it (or its power) to whoever asks. Only a caller
 * holding every scope may act on it with a change.
 */
export function guardAdminAccount(caller: ApiCaller, user: Pick<User, 'roles'>): void {
  if (user.roles.includes(ADMIN_ROLE) && !ADMIN_SCOPES.every((scope) => caller.scopes.has(scope)))
    throw new ApiProblem(
      'forbidden',
      "Only a caller holding every admin API scope may change an admin's account.",
    );
}
