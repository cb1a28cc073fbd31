import type Router from '@koa/router';
import { addAccountDeletion } from './account-deletion.ts';
import { addDataExport } from './data-export.ts';
import type { AccountDeps, AccountPages } from './router.ts';

/** The user's rights over their data: a copy of it (/account/export), its erasure (/account/delete). */
export function addDataRights(router: Router, deps: AccountDeps & AccountPages): void {
  addDataExport(router, deps);
  addAccountDeletion(router, deps);
}
