import { Readable } from 'node:stream';
import { z } from 'zod';
import { auditJsonLines, auditRecords, type AuditFilter } from '../audit/export.ts';
import type { Services } from '../services.ts';
import { decodeCursor, encodeCursor, pageOf, pageQuery } from './pages.ts';
import { apiRoute, type ApiRoute } from './route.ts';

/** An audit row as `latchkey audit export` writes it (server/audit/export.ts AuditRecord). */
const auditEventSchema = z
  .object({
    id: z.number().int(),
    at: z.iso.datetime().meta({ description: 'UTC, to the microsecond' }),
    type: z.string(),
    outcome: z.enum(['success', 'failure']),
    actor_type: z.enum(['user', 'client', 'admin', 'system']),
    actor_id: z.string().nullable(),
    subject: z
      .string()
      .nullable()
      .meta({ description: 'Whom it is about: a user, a client, a key' }),
    ip: z.string().nullable(),
    user_agent: z.string().nullable(),
    request_id: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()),
    count: z.number().int().optional().meta({
      description: 'On a row standing for alike refusals: how many (their first is this row)',
    }),
    last_at: z.iso.datetime().optional().meta({ description: 'When the last of them was' }),
  })
  .meta({ id: 'AuditEvent' });

/** A time as ISO 8601: a date (its midnight UTC) or a date and time with its offset. */
const instant = (description: string) =>
  z
    .union([z.iso.datetime({ offset: true }), z.iso.date()])
    .transform((text) => new Date(text))
    .refine((date) => !Number.isNaN(date.getTime()), 'Not a real date')
    .optional()
    .meta({ description });

const id = (description: string) => z.string().min(1).max(256).optional().meta({ description });

const filterShape = {
  since: instant('From this time on (inclusive)'),
  until: instant('Before this time (exclusive)'),
  type: z
    .string()
    .max(1000)
    .regex(/^[\w.:-]+(,[\w.:-]+){0,19}$/, 'One to 20 event types, comma-separated')
    .transform((text) => text.split(','))
    .optional()
    .meta({ description: 'Event types, comma-separated: sign_in,token_issued' }),
  actor: id('Id of the actor: a user id, a client id'),
  subject: id('Whom the event is about: a user id, a client id, a key id'),
  outcome: z.enum(['success', 'failure']).optional(),
};

type FilterQuery = {
  since?: Date | undefined;
  until?: Date | undefined;
  type?: string[] | undefined;
  actor?: string | undefined;
  subject?: string | undefined;
  outcome?: 'success' | 'failure' | undefined;
};

// Strict: a misspelt filter must be refused, not ignored and answered with every row.
const rangeInOrder = (q: FilterQuery) => !(q.since && q.until && q.since >= q.until);
const rangeProblem = { message: 'since must be before until', path: ['since'] };
const listQuery = z
  .strictObject({ ...pageQuery.shape, ...filterShape })
  .refine(rangeInOrder, rangeProblem);
const exportQuery = z.strictObject(filterShape).refine(rangeInOrder, rangeProblem);

const toFilter = ({ since, until, type, actor, subject, outcome }: FilterQuery): AuditFilter => ({
  since,
  until,
  types: type,
  actor,
  subject,
  outcome,
});

// The position after a row; its time as the microsecond text the row was given with.
const positionSchema = z.object({
  at: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/)
    .refine((at) => new Date(at).toISOString().slice(0, 19) === at.slice(0, 19)),
  id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});

const exportFileName = () => `audit-${new Date().toISOString().replace(/[-:]|\.\d+/g, '')}.jsonl`;

/** The audit trail: query it a page at a time, or download it as JSON Lines. */
export function auditRoutes({ db }: Pick<Services, 'db'>): ApiRoute[] {
  return [
    apiRoute({
      method: 'get',
      path: '/audit',
      scope: 'audit:read',
      operationId: 'listAuditEvents',
      summary: 'Audit events matching the filters, newest first',
      tag: 'Audit',
      query: listQuery,
      responses: {
        200: { description: 'A page of events', schema: pageOf(auditEventSchema, 'AuditPage') },
      },
      async handle({ query }) {
        const { limit, cursor } = query;
        const after = decodeCursor(cursor, positionSchema);
        const items = [];
        const read = { order: 'desc' as const, limit: limit + 1, batch: limit + 1, after };
        for await (const record of auditRecords(db, toFilter(query), read)) items.push(record);
        const more = items.length > limit;
        if (more) items.pop();
        const last = items.at(-1);
        return {
          status: 200,
          body: { items, next: more && last ? encodeCursor({ at: last.at, id: last.id }) : null },
        };
      },
    }),
    apiRoute({
      method: 'get',
      path: '/audit/export',
      scope: 'audit:read',
      operationId: 'exportAuditEvents',
      summary: 'Download the matching events as JSON Lines, oldest first (as `audit export`)',
      tag: 'Audit',
      query: exportQuery,
      responses: {
        200: {
          description: 'One AuditEvent as JSON per line, streamed as it is read',
          content: {
            'application/jsonl': {
              schema: z.string().meta({ description: 'JSON Lines of AuditEvent objects' }),
            },
          },
          headers: {
            'Content-Disposition': {
              description: 'attachment; filename="audit-<time>.jsonl"',
              schema: { type: 'string' },
            },
          },
        },
      },
      async handle({ query }) {
        // Read in batches as the download is consumed: the table is never in memory at once.
        return {
          status: 200,
          headers: {
            'Content-Type': 'application/jsonl; charset=utf-8',
            'Content-Disposition': `attachment; filename="${exportFileName()}"`,
          },
          body: Readable.from(auditJsonLines(db, toFilter(query)), { objectMode: false }),
        };
      },
    }),
  ];
}
