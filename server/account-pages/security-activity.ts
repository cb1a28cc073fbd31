import type Router from '@koa/router';
import { activityOf } from '../audit/activity.ts';
import { queryText } from '../http/form.ts';
import { accountOf } from './access.ts';
import { activityLine } from './activity-words.ts';
import { clientNames } from '../users/connected-apps.ts';
import type { AccountDeps, AccountPages } from './router.ts';

/** Events a page: enough to see a day's sign-ins at a glance, few enough for a phone. */
export const ACTIVITY_PAGE_SIZE = 20;

const when = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'medium',
  timeStyle: 'short',
  timeZone: 'UTC',
});

/**
 * The security activity page: the audit events about the signed-in user (and only them),
 * newest first, a page at a time by a cursor (`?before=`), each in plain words with the device
 * and IP address it came from (and that address's approximate location, with GEOIP_DB).
 */
export function addSecurityActivity(router: Router, deps: AccountDeps & AccountPages): void {
  const { db, views, complete } = deps;

  router.get('/activity', complete, async (ctx) => {
    const { user } = accountOf(ctx);
    const before = queryText(ctx, 'before');
    const { rows, next } = await activityOf(db, user.id, { before, limit: ACTIVITY_PAGE_SIZE });
    const nameOf = clientNames(deps.clients);
    const clientIds = [
      ...new Set(rows.map((r) => r.detail.client).filter((c) => typeof c === 'string')),
    ];
    const names = new Map(
      await Promise.all(clientIds.map(async (id) => [id, await nameOf(id)] as const)),
    );
    views.render(ctx, 'account-activity', {
      title: 'Security activity',
      events: rows.map((row) => {
        const line = activityLine(row, (id) => names.get(id) ?? id);
        return {
          ...line,
          at: when.format(line.at),
          iso: line.at.toISOString(),
          lastAt: line.lastAt && when.format(line.lastAt),
          location: deps.ipLocation.of(line.ip),
        };
      }),
      later: before !== '',
      next: next && `/account/activity?before=${encodeURIComponent(next)}`,
    });
  });
}
