import { z } from 'zod';
import { isUnavailable } from '../../adapters/outages.ts';
import { requestedSync } from '../ldap/directory.ts';
import { lastSyncRun, PROBLEMS_KEPT } from '../ldap/sync-report.ts';
import { LISTED } from '../ldap/sync-summary.ts';
import type { Services } from '../services.ts';
import { actorOf } from './bearer.ts';
import { problemSchema } from './openapi.ts';
import { ApiProblem } from './problems.ts';
import { apiRoute, type ApiRoute } from './route.ts';

const counts = {
  created: z.number().int(),
  updated: z.number().int(),
  disabled: z.number().int().meta({ description: 'Disabled, or gone from the directory' }),
  errors: z.number().int().meta({ description: 'Entries that could not be synced' }),
};
/** One line per error, naming the entry: the first `listed` of them. */
const problems = (listed: number) =>
  z.array(z.string()).meta({
    description: `One line per error, naming the entry: the first ${listed} errors`,
  });

const syncRunSchema = z
  .object({
    finishedAt: z.iso.datetime(),
    outcome: z.enum(['success', 'failure']).meta({
      description: 'failure: the run failed (`error`), or some entries did (`errors`)',
    }),
    mode: z.enum(['full', 'incremental']).nullable().meta({
      description: 'Null when the run failed before reading the directory',
    }),
    ...counts,
    problems: problems(PROBLEMS_KEPT),
    error: z.string().nullable().meta({ description: 'Why the whole run failed' }),
    by: z.object({
      type: z.enum(['user', 'client', 'admin', 'system']),
      id: z.string().optional(),
    }),
  })
  .meta({ id: 'DirectorySyncRun' });

const statusSchema = z
  .object({
    configured: z.boolean().meta({ description: 'LDAP_URL is set' }),
    canSync: z.boolean().meta({ description: 'A service account (LDAP_BIND_DN) to sync with' }),
    lastFullSyncAt: z.iso.datetime().nullable(),
    lastRun: syncRunSchema.nullable().meta({
      description:
        'The last sync that ran for real (scheduled or asked for); dry runs are not kept',
    }),
  })
  .meta({ id: 'DirectoryStatus' });

const reportSchema = z
  .object({
    mode: z.enum(['full', 'incremental']),
    dryRun: z.boolean(),
    ...counts,
    problems: problems(LISTED),
    problemsOmitted: z
      .number()
      .int()
      .meta({
        description: `Errors beyond the first ${LISTED}, which \`problems\` lists`,
      }),
    changes: z
      .array(z.object({ action: z.string(), directoryId: z.string(), dn: z.string().nullable() }))
      .meta({
        description: `What changed (or would, in a dry run), one entry each: the first ${LISTED} changes`,
      }),
    changesOmitted: z
      .number()
      .int()
      .meta({
        description: `Changes beyond the first ${LISTED}, counted in \`created\`, \`updated\` and \`disabled\` but not listed`,
      }),
  })
  .meta({ id: 'DirectorySyncReport' });

const syncBody = z
  .strictObject({
    dryRun: z.boolean().meta({ description: 'true: report what would change, change nothing' }),
  })
  .meta({ id: 'DirectorySyncRequest' });

/** The directory (LDAP / Active Directory): how the last sync went, and a sync now. */
export function directoryRoutes({ db, directory }: Pick<Services, 'db' | 'directory'>): ApiRoute[] {
  return [
    apiRoute({
      method: 'get',
      path: '/directory',
      scope: 'directory:sync',
      operationId: 'getDirectoryStatus',
      summary: 'Whether a directory is configured, and how its last sync went',
      tag: 'Directory',
      responses: {
        200: {
          description: 'The status; `configured: false` when no directory is set up',
          schema: statusSchema,
        },
      },
      async handle() {
        const { lastRun, lastFullSyncAt } = await lastSyncRun(db);
        return {
          status: 200,
          body: {
            configured: Boolean(directory),
            canSync: Boolean(directory?.canSync),
            lastFullSyncAt: lastFullSyncAt?.toISOString() ?? null,
            lastRun,
          },
        };
      },
    }),
    apiRoute({
      method: 'post',
      path: '/directory/sync',
      scope: 'directory:sync',
      operationId: 'syncDirectory',
      summary: 'Run a full sync now (as `ldap sync`), or a dry run, and get its report',
      tag: 'Directory',
      body: syncBody,
      responses: {
        200: { description: 'The sync ran; its report', schema: reportSchema },
        409: {
          description: 'No directory to sync with, or another process is syncing now',
          schema: problemSchema,
        },
        500: { description: 'The sync failed: GET /directory says why', schema: problemSchema },
      },
      async handle({ body, caller }) {
        if (!directory?.canSync)
          throw new ApiProblem(
            'conflict',
            directory
              ? 'The directory has no service account to sync with (LDAP_BIND_DN).'
              : 'No directory is configured (LDAP_URL).',
          );
        let report;
        try {
          report = await requestedSync(directory, { dryRun: body.dryRun, actor: actorOf(caller) });
        } catch (err) {
          if (isUnavailable(err)) throw err;
          throw new ApiProblem(
            'server-error',
            body.dryRun
              ? 'The dry run failed: the server log says why.'
              : 'The sync failed: GET /directory says why.',
          );
        }
        if (!report) throw new ApiProblem('conflict', 'Another process is syncing: try again.');
        return { status: 200, body: report };
      },
    }),
  ];
}
