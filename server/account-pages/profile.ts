import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { requestFacts } from '../audit/audit.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { field, NAME_MAX, queryText, readForm } from '../http/form.ts';
import { displayName, UNFIT_IN_NAME, type Names } from '../users/display-name.ts';
import { profileUpdater } from '../users/profile.ts';
import type { User } from '../users/store.ts';
import { accountOf } from './access.ts';
import type { AccountDeps, AccountPages } from './router.ts';

const name = (label: string) =>
  field
    .text(`Enter the ${label} in at most ${NAME_MAX} characters.`, NAME_MAX)
    .refine(
      (v) => !UNFIT_IN_NAME.test(v),
      `The ${label} cannot hold line breaks, control characters or text-direction overrides.`,
    );
const profileForm = z.object({
  given_name: name('given name'),
  family_name: name('family name'),
  name: name('display name'),
});

export const FROM_DIRECTORY =
  'Your names and email address come from your organisation’s directory: ask its administrator to change them.';

// What the page says once the browser comes back from the form (Post/Redirect/Get).
const DONE: Record<string, string> = {
  saved: 'Your profile was saved.',
  unchanged: 'Nothing to save: your profile is as it was.',
};
const doneOf = (done: string) => (Object.hasOwn(DONE, done) ? DONE[done] : undefined);

type Shown = Record<keyof Names, string>;
const shownOf = (user: User): Shown => ({
  given_name: user.given_name ?? '',
  family_name: user.family_name ?? '',
  name: user.name ?? '',
});

/**
 * The user's own names (OIDC Core §5.1 given_name, family_name, name) and email address. A
 * complete sign-in may edit the names, as in Keycloak's and Auth0's account pages: a name
 * proves nothing and opens no account, unlike the email address, whose own page asks for a
 * recent sign-in and confirms by link. A directory user's are the directory's: shown, not edited.
 */
export function addProfile(router: Router, deps: AccountDeps & AccountPages): void {
  const { views, csrf, complete } = deps;
  const update = profileUpdater(deps);

  function page(ctx: Context, values?: Shown, problems: string[] = [], status = 400) {
    const { user, sessionId } = accountOf(ctx);
    const directory = user.source === 'ldap';
    views.render(
      ctx,
      'account-profile',
      {
        title: 'Your profile',
        names: values ?? shownOf(user),
        shownAs: displayName(user),
        email: user.email,
        verified: user.email_verified,
        directory,
        csrf: directory ? undefined : csrf.token(csrfBindings.profile(sessionId)),
        problems,
        done: problems.length ? undefined : doneOf(queryText(ctx, 'done')),
      },
      problems.length ? status : 200,
    );
  }

  router.get('/profile', complete, async (ctx) => page(ctx));

  router.post('/profile', complete, async (ctx) => {
    const { user, sessionId } = accountOf(ctx);
    // Refused, not ignored: the user must learn that the names stay as the directory has them.
    if (user.source === 'ldap') return page(ctx, undefined, [FROM_DIRECTORY], 403);
    const form = await readForm(ctx, profileForm, {
      csrf,
      binding: csrfBindings.profile(sessionId),
    });
    if (!form.ok) return page(ctx, form.input, form.problems);
    const names = form.fields;
    const saved = await update(user.id, names, requestFacts(ctx));
    if (!saved.ok) return page(ctx, names, [FROM_DIRECTORY], 403);
    ctx.status = 303;
    ctx.redirect(`/account/profile?done=${saved.changed.length ? 'saved' : 'unchanged'}`);
  });
}
