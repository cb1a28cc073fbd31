import { z } from 'zod';
import { requestFacts } from '../audit/audit.ts';
import { unlockByAdmin } from '../protection/lockout.ts';
import type { Services } from '../services.ts';
import { EXPORT_FORMAT, exportAccount } from '../users/data-export.ts';
import { resetSecondFactors } from '../users/factor-reset.ts';
import { forcePasswordReset } from '../users/force-reset.ts';
import { actorOf } from './bearer.ts';
import { userOr404 } from './lookups.ts';
import { problemSchema } from './openapi.ts';
import { guardAdminAccount } from './admin-role.ts';
import { ApiProblem } from './problems.ts';
import { apiRoute, type ApiRoute } from './route.ts';

/** The path of a route about one user. */
export const userParams = z.object({ id: z.string().meta({ description: 'The user id' }) });

/** What every route about one user may answer besides its own. */
export const noSuchUser = { 404: { description: 'No user with this id', schema: problemSchema } };

const unlockedSchema = z
  .object({
    wasLocked: z.boolean().meta({ description: 'Failed sign-ins had locked the account' }),
    ownerLockLifted: z.boolean().meta({
      description: 'The owner had locked the account from a security email ("this wasn\'t me")',
    }),
  })
  .meta({ id: 'AccountUnlocked' });

const removedFactorsSchema = z
  .object({
    authenticatorApp: z.boolean(),
    recoveryCodes: z.number().int().meta({ description: 'Unused recovery codes removed' }),
    passkeys: z.number().int(),
  })
  .meta({ id: 'SecondFactorsRemoved' });

const forcedResetSchema = z
  .object({
    emailed: z.boolean().meta({
      description:
        'The reset link was emailed; false: the email could not be sent (call again for a new link)',
    }),
  })
  .meta({ id: 'PasswordResetForced' });

const record = z.looseObject({});
const exportSchema = z
  .looseObject({
    format: z.literal(EXPORT_FORMAT),
    exportedAt: z.iso.datetime(),
    issuer: z.string(),
    profile: z.looseObject({ id: z.string(), email: z.string() }),
    roles: z.array(z.string()),
    consents: z.array(record),
    grants: z.array(record),
    sessions: z.array(record),
    knownDevices: z.array(record),
    secondFactors: record,
    passwordChanges: z.array(z.string().nullable()),
    emailLinks: z.array(record),
    auditEvents: z.array(record),
  })
  .meta({
    id: 'AccountExport',
    description: "The account center's download, field by field in docs/account-export.md",
  });

/** Unlock, reset the second factors, force a password reset, export the data of a user. */
export function userActionRoutes(services: Services): ApiRoute[] {
  const { users } = services;
  return [
    apiRoute({
      method: 'post',
      path: '/users/{id}/unlock',
      scope: 'users:write',
      operationId: 'unlockUser',
      summary: "End a lockout of failed sign-ins, and the owner's own lock",
      tag: 'Users',
      params: userParams,
      responses: {
        200: { description: 'Unlocked (it may not have been locked)', schema: unlockedSchema },
        ...noSuchUser,
      },
      async handle({ params, caller, ctx }) {
        const user = await userOr404(users, params.id);
        guardAdminAccount(caller, user);
        const body = await unlockByAdmin(services, user, actorOf(caller), requestFacts(ctx));
        return { status: 200, body };
      },
    }),
    apiRoute({
      method: 'post',
      path: '/users/{id}/reset-mfa',
      scope: 'users:write',
      operationId: 'resetUserMfa',
      summary: 'Remove every second factor (a lost phone); the owner is told by email',
      tag: 'Users',
      params: userParams,
      responses: {
        200: { description: 'What was removed', schema: removedFactorsSchema },
        ...noSuchUser,
      },
      async handle({ params, caller, ctx }) {
        const user = await userOr404(users, params.id);
        guardAdminAccount(caller, user);
        const body = await resetSecondFactors(services, user, actorOf(caller), requestFacts(ctx));
        return { status: 200, body };
      },
    }),
    apiRoute({
      method: 'post',
      path: '/users/{id}/force-password-reset',
      scope: 'users:write',
      operationId: 'forceUserPasswordReset',
      summary: 'The password stops working, every session and grant ends, a reset link is emailed',
      tag: 'Users',
      params: userParams,
      responses: {
        200: { description: 'Done', schema: forcedResetSchema },
        ...noSuchUser,
        409: {
          description: 'A directory user: its password is changed in the directory',
          schema: problemSchema,
        },
      },
      async handle({ params, caller, ctx }) {
        const user = await userOr404(users, params.id);
        guardAdminAccount(caller, user);
        if (user.source === 'ldap')
          throw new ApiProblem('conflict', 'A directory user: its password is changed there.');
        const event = {
          type: 'password_reset_forced',
          outcome: 'success' as const,
          actor: actorOf(caller),
          subject: user.id,
        };
        // The link is for the owner alone: it is emailed, never answered to the caller.
        const { emailed } = await forcePasswordReset(user, services, (trx) =>
          services.audit.within(trx, event, requestFacts(ctx)),
        );
        return { status: 200, body: { emailed } };
      },
    }),
    apiRoute({
      method: 'get',
      path: '/users/{id}/export',
      scope: 'users:read',
      operationId: 'exportUser',
      summary: "Everything kept about a user: the account center's download",
      tag: 'Users',
      params: userParams,
      responses: {
        200: {
          description: 'The JSON document, as an attachment',
          schema: exportSchema,
          headers: {
            'Content-Disposition': {
              description: 'attachment; filename="account-data-<date>.json"',
              schema: { type: 'string' },
            },
          },
        },
        ...noSuchUser,
      },
      async handle({ params, caller, ctx }) {
        const user = await userOr404(users, params.id);
        const body = await exportAccount(services, user);
        const event = { type: 'data_exported', outcome: 'success' as const, subject: user.id };
        await services.audit({ ...event, actor: actorOf(caller) }, requestFacts(ctx));
        const day = body.exportedAt.slice(0, 10);
        const disposition = `attachment; filename="account-data-${day}.json"`;
        return { status: 200, body, headers: { 'Content-Disposition': disposition } };
      },
    }),
  ];
}
