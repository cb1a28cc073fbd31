import type { User } from '../users/store.ts';
import { ApiProblem } from './problems.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The user with this id, found by `users` (the store, or a lookalike that reads more), or a 404
 * problem (an id that cannot be a user's never reaches SQL).
 */
export async function userOr404<U extends User = User>(
  users: { findById(id: string): PromiseLike<U | undefined> },
  id: string,
): Promise<U> {
  const user = UUID.test(id) ? await users.findById(id) : undefined;
  if (!user) throw new ApiProblem('not-found', 'No user with this id.');
  return user;
}
