import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { requestFacts } from '../audit/audit.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { field, noFields, queryText, readForm } from '../http/form.ts';
import { accountSessions, type SessionView } from '../users/account-sessions.ts';
import type { IpLocation } from '../ip-location.ts';
import { accountOf } from './access.ts';
import { dateTime } from './dates.ts';
import type { AccountDeps, AccountPages } from './router.ts';

const endForm = z.object({ session: field.hidden() });

// What the page says once the browser comes back from a form (Post/Redirect/Get).
const DONE: Record<string, string> = {
  one: 'That session has ended: that browser is signed out.',
  others: 'Every other session has ended: only this browser is still signed in.',
};
const doneOf = (ended: string) => (Object.hasOwn(DONE, ended) ? DONE[ended] : undefined);
const GONE = 'That session has already ended. The list below is up to date.';

const shown = (ipLocation: IpLocation) => (s: SessionView) => ({
  ...s,
  location: ipLocation.of(s.ip),
  signedIn: s.signedInAt === undefined ? undefined : dateTime(s.signedInAt),
  lastActive: s.lastActiveAt === undefined ? undefined : dateTime(s.lastActiveAt),
});

/**
 * The account's browser sessions: each with its browser, IP (and its approximate location, with
 * GEOIP_DB) and times, this browser's marked; end one, or all but this one. Ending one signs
 * nobody in, so the complete sign-in that shows the list is enough for it. Ending all others
 * needs a recent one: the session kept counts as signed in anew (server/users/sign-out.ts),
 * which must not make a stale session recent.
 */
export function addAccountSessions(router: Router, deps: AccountDeps & AccountPages): void {
  const { views, csrf, complete, recent } = deps;
  const sessions = accountSessions(deps);
  const binding = (ctx: Context) => csrfBindings.sessions(accountOf(ctx).sessionId);

  async function page(ctx: Context, problem?: string, status = 200) {
    const { user, sessionId } = accountOf(ctx);
    views.render(
      ctx,
      'account-sessions',
      {
        title: 'Where you are signed in',
        sessions: (await sessions.list(user, sessionId)).map(shown(deps.ipLocation)),
        csrf: csrf.token(binding(ctx)),
        done: problem ? undefined : doneOf(queryText(ctx, 'ended')),
        problem,
      },
      status,
    );
  }

  router.get('/sessions', complete, async (ctx) => page(ctx));

  router.post('/sessions/end', complete, async (ctx) => {
    const form = await readForm(ctx, endForm, { csrf, binding: binding(ctx) });
    if (!form.ok) return page(ctx, form.problems[0], 400);
    const { user } = accountOf(ctx);
    const owner = { type: 'user' as const, id: user.id };
    const name = { handle: form.fields.session };
    if (!(await sessions.end(user.id, name, owner, requestFacts(ctx)))) return page(ctx, GONE, 404);
    ctx.status = 303;
    ctx.redirect('/account/sessions?ended=one');
  });

  router.post('/sessions/end-others', recent, async (ctx) => {
    const form = await readForm(ctx, noFields, { csrf, binding: binding(ctx) });
    if (!form.ok) return page(ctx, form.problems[0], 400);
    const { user, sessionId } = accountOf(ctx);
    await sessions.endOthers(user.id, sessionId, { type: 'user', id: user.id }, requestFacts(ctx));
    ctx.status = 303;
    ctx.redirect('/account/sessions?ended=others');
  });
}
