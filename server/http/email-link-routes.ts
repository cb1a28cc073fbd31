import type Router from '@koa/router';
import type { Knex } from 'knex';
import type { Context } from 'koa';
import { z } from 'zod';
import type { EmailTokenPurpose, EmailTokens, Redeemed } from '../users/email-tokens.ts';
import type { User, UserStore } from '../users/store.ts';
import type { Csrf } from '../security/csrf.ts';
import type { Views } from '../views.ts';
import { csrfBindings, type EmailLinkKind } from './csrf-bindings.ts';
import { field, queryText, readForm } from './form.ts';

export type LinkRefusal = Exclude<Redeemed, { ok: true }>['reason'];

const PROBLEMS: Record<LinkRefusal, string> = {
  invalid:
    'This link is not valid. Check that you opened the whole link from the email, or ask for a new one.',
  expired: 'This link has expired. Ask for a new one from the sign-in page.',
  used: 'This link was already used. Ask for a new one if you still need it.',
};

/** The page for an emailed link that cannot be used, saying why and what to do. */
export function linkError(views: Views, ctx: Context, reason: LinkRefusal): void {
  views.render(
    ctx,
    'error',
    { title: 'This link cannot be used', description: PROBLEMS[reason] },
    400,
  );
}

/** A link that can still be used, as its page sees it. */
export type OpenLink = {
  token: string;
  user: User;
  data: Record<string, unknown>;
  /** What its page's form needs (views/email-link-fields.eta): it posts to the link's path. */
  form: { action: string; token: string; csrf: string };
  /**
   * For a link `spentWithin`: spends it in `trx`, the transaction of what it does, or throws
   * (rolling that back) when it can no longer be spent.
   */
  spend?: (trx: Knex.Transaction) => Promise<void>;
};

/** A link that could not be spent after all (another request spent it first). */
class LinkRefused extends Error {
  readonly reason: LinkRefusal;
  constructor(reason: LinkRefusal) {
    super(`link ${reason}`);
    this.reason = reason;
  }
}

/** The form of an emailed link's page: its token; a page may extend it (a reset: the password). */
export const linkForm = z.object({ token: field.hidden() });

type Fields<S extends typeof linkForm> = z.output<S>;

export type EmailLink<S extends typeof linkForm> = {
  kind: EmailLinkKind;
  path: string;
  /** The token purposes the link may carry, tried in turn. */
  purposes: readonly EmailTokenPurpose[];
  /** Spending it leaves the user's earlier tokens of the purpose usable (email-tokens.ts). */
  keepEarlier?: boolean;
  /**
   * Spent by `redeem` itself, with `link.spend` in the transaction of what it does, rather than
   * before: should that fail, the link can still be used.
   */
  spentWithin?: boolean;
  /** The page with the button (or form) that spends the link; `problems` after a POST. */
  page: (ctx: Context, link: OpenLink, problems: string[]) => void | Promise<void>;
  /** What the page's form posts: linkForm, or linkForm extended. */
  schema: S;
  /** Before it is spent: a refusal, the problems of the fields, or nothing when it may be. */
  check?: (link: OpenLink, fields: Fields<S>) => Promise<LinkRefusal | string[] | undefined>;
  /** Once it is spent: what the link is for, and the answer. */
  redeem: (ctx: Context, link: OpenLink, fields: Fields<S>) => Promise<void>;
};

type Deps = { tokens: EmailTokens; users: UserStore; views: Views; csrf: Csrf };

/**
 * An emailed link: opening it (GET) shows a page and spends nothing, for mail scanners open
 * links too; its button posts the token back with a CSRF token bound to it, and only that POST
 * spends it, once, atomically. A link that cannot be used says why, the same way everywhere.
 */
export function addEmailLink<S extends typeof linkForm>(
  router: Router,
  { tokens, users, views, csrf }: Deps,
  link: EmailLink<S>,
): void {
  /** The token's purpose and user, or (having answered with the link error) undefined. */
  async function open(ctx: Context, token: string) {
    let found: Redeemed = { ok: false, reason: 'invalid' };
    let purpose = link.purposes[0]!;
    for (purpose of link.purposes) {
      found = await tokens.peek(token, purpose);
      if (found.ok || found.reason !== 'invalid') break;
    }
    const user = found.ok ? await users.findById(found.userId) : undefined;
    if (!found.ok || !user) return linkError(views, ctx, found.ok ? 'invalid' : found.reason);
    const form = {
      action: ctx.path,
      token,
      csrf: csrf.token(csrfBindings.emailLink(link.kind, token)),
    };
    return { purpose, opened: { token, user, data: found.data, form } };
  }

  router.get(link.path, async (ctx) => {
    const found = await open(ctx, queryText(ctx, 'token'));
    if (found) await link.page(ctx, found.opened, []);
  });

  router.post(link.path, async (ctx) => {
    const form = await readForm(ctx, link.schema, {
      csrf,
      binding: (raw) => csrfBindings.emailLink(link.kind, raw.token),
    });
    const found = await open(ctx, form.ok ? form.fields.token : form.input.token);
    if (!found) return;
    if (!form.ok) return link.page(ctx, found.opened, form.problems);
    const { fields } = form;
    const refused = await link.check?.(found.opened, fields);
    if (typeof refused === 'string') return linkError(views, ctx, refused);
    if (refused?.length) return link.page(ctx, found.opened, refused);
    const { keepEarlier } = link;
    const { token } = found.opened;
    if (link.spentWithin) {
      const spend = async (within: Knex.Transaction) => {
        const spent = await tokens.redeem(token, found.purpose, { keepEarlier, within });
        if (!spent.ok) throw new LinkRefused(spent.reason);
      };
      try {
        await link.redeem(ctx, { ...found.opened, spend }, fields);
      } catch (err) {
        if (!(err instanceof LinkRefused)) throw err;
        linkError(views, ctx, err.reason);
      }
      return;
    }
    const spent = await tokens.redeem(token, found.purpose, { keepEarlier });
    if (!spent.ok) return linkError(views, ctx, spent.reason);
    await link.redeem(ctx, { ...found.opened, data: spent.data }, fields);
  });
}
