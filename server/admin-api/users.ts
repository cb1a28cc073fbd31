import type { Knex } from 'knex';
import type { Context } from 'koa';
import { requestFacts, type SuccessEvent } from '../audit/audit.ts';
import type { Services } from '../services.ts';
import { deleteAccount } from '../users/account-deletion.ts';
import { emailChangeMail } from '../users/email-change.ts';
import { invitationMail } from '../users/reset-link.ts';
import type { SignedOut } from '../users/sign-out.ts';
import { UserExistsError, type User } from '../users/store.ts';
import { actorOf, type ApiCaller } from './bearer.ts';
import {
  changedMeanwhile,
  entityTag,
  expectedVersion,
  ifMatch,
  rowVersion,
} from './conditional.ts';
import { userOr404 } from './lookups.ts';
import { problemSchema } from './openapi.ts';
import { decodeCursor, encodeCursor } from './pages.ts';
import { ApiProblem } from './problems.ts';
import { apiRoute, type ApiRoute } from './route.ts';
import { guardAdminAccount, guardAdminRole } from './admin-role.ts';
import {
  DIRECTORY_FIELDS,
  idParams,
  newUserSchema,
  userChangeSchema,
  userCursor,
  userListQuery,
  userPageSchema,
  userSchema,
  userView,
  type UserChange,
} from './user-schemas.ts';

type Deps = Pick<
  Services,
  'db' | 'config' | 'users' | 'policy' | 'audit' | 'signOut' | 'mailer' | 'tokens'
>;
type Versioned = User & { version: string };

const ETAG = {
  ETag: { description: 'The version, for If-Match', schema: { type: 'string' as const } },
};
const TAG = 'Users';
const taken = () => new ApiProblem('conflict', 'Another user has this email address.');
const isUniqueViolation = (err: unknown) =>
  err instanceof UserExistsError || (err as { code?: string }).code === '23505';

/** The answer carrying a user and its version. */
const withTag = (status: number, user: Versioned, headers: Record<string, string> = {}) => ({
  status,
  body: userView(user),
  headers: { ETag: entityTag(user.version), ...headers },
});

/** Users: search, read, create (with a password or an invitation), change, delete. */
export function userRoutes(deps: Deps): ApiRoute[] {
  const { db, users, policy, audit, signOut, mailer } = deps;

  const versioned = (id: string): Promise<Versioned | undefined> =>
    db('users')
      .select('users.*', db.raw(`${rowVersion('users')} as version`))
      .where({ id })
      .first();
  const read = async (id: string) => userOr404({ findById: versioned }, id);

  const event = (caller: ApiCaller, type: string, subject: string, detail?: object) =>
    ({
      type,
      outcome: 'success',
      actor: actorOf(caller),
      subject,
      detail: { by: 'admin_api', ...detail },
    }) satisfies SuccessEvent;

  async function checkedHash(password: string, input: { email: string; name?: string | null }) {
    const verdict = await policy.check(password, {
      email: input.email,
      name: input.name ?? undefined,
    });
    if (verdict.ok) return users.hashPassword(password);
    if (verdict.problems.some((p) => p.code === 'busy'))
      throw new ApiProblem('temporarily-unavailable', 'Too many passwords are being checked.', {
        headers: { 'Retry-After': '1' },
      });
    throw new ApiProblem('invalid-request', 'The password does not meet the password policy.', {
      errors: verdict.problems.map((p) => ({ in: 'body', path: 'password', message: p.message })),
    });
  }

  /** Carries out a change whose If-Match named `version`: check and write are one UPDATE. */
  async function change(ctx: Context, caller: ApiCaller, user: Versioned, body: UserChange) {
    const version = expectedVersion(ctx);
    const fields = Object.keys(body) as (keyof UserChange)[];
    guardAdminAccount(caller, user);
    guardAdminRole(caller, user, body);
    if (user.source === 'ldap') {
      const managed = fields.filter((f) => (DIRECTORY_FIELDS as readonly string[]).includes(f));
      if (managed.length)
        throw new ApiProblem(
          'conflict',
          `The directory manages ${managed.join(', ')} of this user: change them there.`,
        );
    }
    const newEmail = body.email?.trim();
    const moving = newEmail !== undefined && newEmail.toLowerCase() !== user.email.toLowerCase();
    const confirming = moving && !body.emailVerified;
    if (newEmail !== undefined && !moving && !body.emailVerified)
      throw new ApiProblem('invalid-request', 'That is already its address.', {
        errors: [{ in: 'body', path: 'email', message: 'The current address' }],
      });
    if (confirming && (await users.findByEmail(newEmail))) throw taken();

    const patch: Record<string, unknown> = {};
    if (body.givenName !== undefined) patch.given_name = body.givenName || null;
    if (body.familyName !== undefined) patch.family_name = body.familyName || null;
    if (body.name !== undefined) patch.name = body.name || null;
    if (body.roles) patch.roles = JSON.stringify([...new Set(body.roles)]);
    if (body.disabled !== undefined) patch.disabled = body.disabled;
    if (body.emailVerified) patch.email_verified = true;
    if (moving && body.emailVerified) patch.email = newEmail;

    const facts = requestFacts(ctx);
    let signedOut: SignedOut | undefined;
    try {
      signedOut = await db.transaction(async (trx: Knex.Transaction) => {
        const changed = await trx('users')
          .where({ id: user.id })
          .whereRaw(`${rowVersion('users')} = ?`, [version])
          .update({ ...patch, updated_at: trx.fn.now() });
        if (!changed) throw changedMeanwhile();
        await audit.within(trx, event(caller, 'user_updated', user.id, { fields }), facts);
        if (body.disabled === undefined || body.disabled === user.disabled) return undefined;
        const type = body.disabled ? 'user_disabled' : 'user_enabled';
        await audit.within(trx, event(caller, type, user.id), facts);
        // Disabled: no session or grant of theirs stands, with the change or not at all.
        if (body.disabled)
          return signOut.within(trx, user.id, { validFrom: Math.floor(Date.now() / 1000) });
        return undefined;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw taken();
      throw err;
    }
    if (signedOut) await signOut.cleanUp(signedOut);
    if (confirming) mailer.sendInBackground(() => emailChangeMail(deps, user, newEmail));
  }

  return [
    apiRoute({
      method: 'get',
      path: '/users',
      scope: 'users:read',
      operationId: 'listUsers',
      summary: 'Search users, by email order',
      tag: TAG,
      query: userListQuery,
      responses: { 200: { description: 'A page of users', schema: userPageSchema } },
      async handle({ query }) {
        const after = decodeCursor(query.cursor, userCursor);
        // Walks the unique index on lower(email) (users_email_lower) in order, filtering as it
        // goes, and stops when the page is full. A substring search cannot use a B-tree; a
        // trigram index would need pg_trgm, which PGlite only has as a separately loaded module.
        const rows = await db<User>('users')
          .modify((q) => {
            if (after) q.whereRaw('lower(email) > ?', [after.e]);
            if (query.q) {
              const part = query.q.toLowerCase();
              q.where((w) =>
                w
                  .whereRaw('strpos(lower(email), ?) > 0', [part])
                  .orWhereRaw(
                    "strpos(lower(concat_ws(' ', given_name, family_name, name)), ?) > 0",
                    [part],
                  ),
              );
            }
            if (query.role) q.whereRaw('roles @> ?::jsonb', [JSON.stringify([query.role])]);
            if (query.source) q.where({ source: query.source });
            if (query.disabled !== undefined) q.where({ disabled: query.disabled });
            const locked = '(locked_until > now() OR owner_locked_at IS NOT NULL)';
            if (query.locked === true) q.whereRaw(locked);
            if (query.locked === false) q.whereRaw(`NOT coalesce(${locked}, false)`);
          })
          .orderByRaw('lower(email)')
          .limit(query.limit + 1);
        const items = rows.slice(0, query.limit);
        const last = items.at(-1);
        const next = rows.length > query.limit && last;
        return {
          status: 200,
          body: {
            items: items.map(userView),
            next: next ? encodeCursor({ e: last.email.toLowerCase() }) : null,
          },
        };
      },
    }),
    apiRoute({
      method: 'get',
      path: '/users/{id}',
      scope: 'users:read',
      operationId: 'getUser',
      summary: 'One user, with its version in ETag',
      tag: TAG,
      params: idParams,
      responses: {
        200: { description: 'The user', schema: userSchema, headers: ETAG },
        404: { description: 'No such user', schema: problemSchema },
      },
      async handle({ params }) {
        return withTag(200, await read(params.id));
      },
    }),
    apiRoute({
      method: 'post',
      path: '/users',
      scope: 'users:write',
      operationId: 'createUser',
      summary: 'Create a local user, with a password or an emailed invitation',
      tag: TAG,
      body: newUserSchema,
      responses: {
        201: {
          description: 'Created',
          schema: userSchema,
          headers: { ...ETAG, Location: { description: 'The user', schema: { type: 'string' } } },
        },
        409: { description: 'Another user has this email address', schema: problemSchema },
      },
      async handle({ body, caller, ctx }) {
        guardAdminRole(caller, undefined, body);
        const passwordHash = body.password && (await checkedHash(body.password, body));
        let created: User;
        try {
          created = await db.transaction(async (trx) => {
            const user = await users.create(
              {
                email: body.email,
                givenName: body.givenName ?? undefined,
                familyName: body.familyName ?? undefined,
                name: body.name ?? undefined,
                roles: body.roles && [...new Set(body.roles)],
                emailVerified: body.emailVerified,
                passwordHash,
              },
              trx,
            );
            const detail = { invited: !!body.invite };
            const facts = requestFacts(ctx);
            await audit.within(trx, event(caller, 'user_created', user.id, detail), facts);
            return user;
          });
        } catch (err) {
          if (isUniqueViolation(err)) throw taken();
          throw err;
        }
        if (body.invite) mailer.sendInBackground(() => invitationMail(deps, created));
        const user = await read(created.id);
        return withTag(201, user, { Location: `${ctx.path}/${user.id}` });
      },
    }),
    apiRoute({
      method: 'patch',
      path: '/users/{id}',
      scope: 'users:write',
      operationId: 'updateUser',
      summary: 'Change names, roles, disabled or email; needs If-Match',
      tag: TAG,
      params: idParams,
      headers: ifMatch,
      body: userChangeSchema,
      responses: {
        200: { description: 'The user as it now is', schema: userSchema, headers: ETAG },
        404: { description: 'No such user', schema: problemSchema },
        409: {
          description: 'The directory manages the field, or another user has the address',
          schema: problemSchema,
        },
        412: { description: 'It changed since it was read (If-Match)', schema: problemSchema },
        428: { description: 'If-Match is missing', schema: problemSchema },
      },
      async handle({ params, body, caller, ctx }) {
        await change(ctx, caller, await read(params.id), body);
        return withTag(200, await read(params.id));
      },
    }),
    apiRoute({
      method: 'delete',
      path: '/users/{id}',
      scope: 'users:write',
      operationId: 'deleteUser',
      summary: "Delete a local user, as the account center's deletion does",
      tag: TAG,
      params: idParams,
      responses: {
        204: { description: 'Deleted: signed out everywhere, personal data erased' },
        403: { description: 'A person may not delete themselves here', schema: problemSchema },
        404: { description: 'No such user', schema: problemSchema },
        409: { description: 'A directory user: remove it in the directory', schema: problemSchema },
      },
      async handle({ params, caller, ctx }) {
        const user = await read(params.id);
        // Through the API, it would end the very token that asks, and could remove the last
        // admin; the account center asks the owner for a fresh sign-in first.
        if (caller.kind === 'person' && caller.userId === user.id)
          throw new ApiProblem('forbidden', 'Delete your own account from the account center.');
        guardAdminAccount(caller, user);
        // Deleted here, it would come back at the next sign-in or sync (as the CLI says).
        if (user.source === 'ldap')
          throw new ApiProblem('conflict', 'A directory user: remove it in the directory.');
        await deleteAccount(deps, user, actorOf(caller), requestFacts(ctx));
        return { status: 204 };
      },
    }),
  ];
}
