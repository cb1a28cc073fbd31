import type { User, UserStore } from '../users/store.ts';
import { ApiProblem } from './problems.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The user with this id, or a 404 problem (an id that cannot be a user's never reaches SQL). */
export async function userOr404(users: Pick<UserStore, 'findById'>, id: string): Promise<User> {
  const user = UUID.test(id) ? await users.findById(id) : undefined;
  if (!user) throw new ApiProblem('not-found', 'No user with this id.');
  return user;
}
