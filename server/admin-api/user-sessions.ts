import { z } from 'zod';
import { requestFacts } from '../audit/audit.ts';
import type { Services } from '../services.ts';
import { accountSessions } from '../users/account-sessions.ts';
import { connectedApps, removeAppAccess } from '../users/connected-apps.ts';
import { actorOf } from './bearer.ts';
import { userOr404 } from './lookups.ts';
import { problemSchema } from './openapi.ts';
import { ApiProblem } from './problems.ts';
import { apiRoute, type ApiRoute } from './route.ts';
import { noSuchUser, userParams } from './user-actions.ts';

// A session's uid is oidc-provider's nanoid; a client id is printable ASCII. Anything else names
// nothing, and is answered 404 without a look in storage (a NUL byte would upset PostgreSQL).
const SESSION_UID = /^[\w-]{1,64}$/;
const CLIENT_ID = /^[\x21-\x7e]{1,255}$/;

const iso = (epochSeconds: number | undefined) =>
  epochSeconds === undefined ? null : new Date(epochSeconds * 1000).toISOString();

const sessionSchema = z
  .object({
    id: z.string().meta({
      description: "The session's uid: names it in this API (never its cookie's value)",
    }),
    device: z.string().meta({ description: 'Browser and system, as "Firefox on Linux"' }),
    ip: z.string().nullable().meta({ description: 'Where it was last used from' }),
    signedInAt: z.iso.datetime().nullable(),
    lastActiveAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'UserSession' });

const sessionListSchema = z
  .object({ items: z.array(sessionSchema).meta({ description: 'Most recently active first' }) })
  .meta({ id: 'UserSessions' });

const endedSchema = z
  .object({
    ended: z.number().int().meta({ description: 'Sessions ended' }),
    grantsRevoked: z.number().int().meta({
      description: 'Grants of the apps used only in those sessions, revoked with their tokens',
    }),
  })
  .meta({ id: 'SessionsEnded' });

const grantSchema = z
  .object({
    clientId: z.string(),
    name: z.string().meta({ description: 'The name the client registered, or its id' }),
    scopes: z.array(z.string()).meta({ description: 'OpenID scopes allowed' }),
    apis: z
      .array(z.object({ api: z.string(), scopes: z.array(z.string()) }))
      .meta({ description: 'Scopes allowed per API (resource indicator)' }),
    offline: z.boolean().meta({ description: 'It may refresh tokens while the user is away' }),
    firstUse: z.iso.datetime().nullable(),
    lastUse: z.iso.datetime().nullable(),
  })
  .meta({ id: 'UserGrant' });

const grantListSchema = z
  .object({ items: z.array(grantSchema).meta({ description: 'By app name' }) })
  .meta({ id: 'UserGrants' });

const accessRemovedSchema = z
  .object({
    consentWithdrawn: z.boolean().meta({ description: 'The next sign-in to the app asks again' }),
    grantsRevoked: z.number().int(),
  })
  .meta({ id: 'AppAccessRemoved' });

const sessionParams = userParams.extend({ sessionId: z.string() });
const grantParams = userParams.extend({ clientId: z.string() });

/** A user's browser sessions and the apps they allowed: listed, ended, revoked. */
export function userSessionRoutes(services: Services): ApiRoute[] {
  const { users } = services;
  const sessions = accountSessions(services);
  return [
    apiRoute({
      method: 'get',
      path: '/users/{id}/sessions',
      scope: 'sessions:read',
      operationId: 'listUserSessions',
      summary: "A user's browser sessions",
      tag: 'Sessions',
      params: userParams,
      responses: { 200: { description: 'The sessions', schema: sessionListSchema }, ...noSuchUser },
      async handle({ params }) {
        const user = await userOr404(users, params.id);
        const items = (await sessions.list(user, ''))
          .filter((s) => s.uid !== undefined)
          .map((s) => ({
            id: s.uid!,
            device: s.device,
            ip: s.ip ?? null,
            signedInAt: iso(s.signedInAt),
            lastActiveAt: iso(s.lastActiveAt),
          }));
        return { status: 200, body: { items } };
      },
    }),
    apiRoute({
      method: 'delete',
      path: '/users/{id}/sessions/{sessionId}',
      scope: 'sessions:write',
      operationId: 'endUserSession',
      summary: 'End one session: that browser is signed out',
      tag: 'Sessions',
      params: sessionParams,
      responses: {
        200: { description: 'Ended', schema: endedSchema },
        404: { description: 'No such user, or no such session of theirs', schema: problemSchema },
      },
      async handle({ params, caller, ctx }) {
        const user = await userOr404(users, params.id);
        const uid = SESSION_UID.test(params.sessionId) ? params.sessionId : undefined;
        const ended =
          uid && (await sessions.end(user.id, { uid }, actorOf(caller), requestFacts(ctx)));
        if (!ended) throw new ApiProblem('not-found', 'No such session of this user.');
        return { status: 200, body: { ended: 1, grantsRevoked: ended.grants } };
      },
    }),
    apiRoute({
      method: 'delete',
      path: '/users/{id}/sessions',
      scope: 'sessions:write',
      operationId: 'endUserSessions',
      summary: 'End every session of a user: signed out everywhere',
      tag: 'Sessions',
      params: userParams,
      responses: { 200: { description: 'Ended', schema: endedSchema }, ...noSuchUser },
      async handle({ params, caller, ctx }) {
        const user = await userOr404(users, params.id);
        const done = await sessions.endOthers(
          user.id,
          undefined,
          actorOf(caller),
          requestFacts(ctx),
        );
        return { status: 200, body: { ended: done.sessions, grantsRevoked: done.grants } };
      },
    }),
    apiRoute({
      method: 'get',
      path: '/users/{id}/grants',
      scope: 'sessions:read',
      operationId: 'listUserGrants',
      summary: 'The apps a user allowed, with what each holds and when it was used',
      tag: 'Sessions',
      params: userParams,
      responses: { 200: { description: 'The apps', schema: grantListSchema }, ...noSuchUser },
      async handle({ params }) {
        const user = await userOr404(users, params.id);
        const items = (await connectedApps(services, user.id)).map((app) => ({
          ...app,
          firstUse: app.firstUse?.toISOString() ?? null,
          lastUse: app.lastUse?.toISOString() ?? null,
        }));
        return { status: 200, body: { items } };
      },
    }),
    apiRoute({
      method: 'delete',
      path: '/users/{id}/grants/{clientId}',
      scope: 'sessions:write',
      operationId: 'revokeUserGrant',
      summary: "Withdraw a user's consent to an app and revoke its grants and tokens",
      tag: 'Sessions',
      params: grantParams,
      responses: {
        200: { description: 'Removed', schema: accessRemovedSchema },
        404: { description: 'No such user, or no access of this app', schema: problemSchema },
      },
      async handle({ params, caller, ctx }) {
        const user = await userOr404(users, params.id);
        const removed = CLIENT_ID.test(params.clientId)
          ? await removeAppAccess(
              services,
              user.id,
              params.clientId,
              actorOf(caller),
              requestFacts(ctx),
            )
          : undefined;
        if (!removed?.consentWithdrawn && !removed?.grantsRevoked)
          throw new ApiProblem('not-found', 'This user has allowed this app nothing.');
        return { status: 200, body: removed };
      },
    }),
  ];
}
