// The audit table at 10,000,000 rows: the account center's security activity (activityOf) and
// the admin API's list (auditRecords, as GET /audit calls it), each call's real statement
// captured and run under EXPLAIN (ANALYZE, BUFFERS).
import pg from 'pg';
import { activityOf } from '../../../server/audit/activity.ts';
import {
  auditRecords,
  type AuditFilter,
  type AuditPosition,
} from '../../../server/audit/export.ts';
import { ACTIVITY_PAGE_SIZE } from '../../../server/account-pages/security-activity.ts';
import { migrate } from '../../../server/migrate.ts';
import { startPostgres } from '../../../test/support/services.ts';
import { fmt } from '../format.ts';
import type { Cleanup } from '../process.ts';
import { capturing, explainAnalyze, knexOf, planBlock, type Captured } from './sql.ts';

export const ROWS = 10_000_000;
const USERS = 100_000;
const ADMIN_PAGE = 50; // GET /audit's default limit
const TARGET_MS = 50;

// Realistic shares: protocol events dominate; people's own actions are the rarer rows.
const GENERATE = `
INSERT INTO audit_events (at, type, outcome, actor_type, actor_id, subject, ip, user_agent, request_id, detail)
SELECT now() - interval '180 days' + g * (interval '180 days' / ${ROWS}),
       t.type, CASE WHEN t.type = 'sign_in' AND r < 0.05 THEN 'failure' ELSE 'success' END,
       t.actor_type,
       CASE t.actor_type WHEN 'client' THEN 'client-' || (g % 20) WHEN 'admin' THEN 'admin-' || (g % 5)
            ELSE 'user-' || u END,
       'user-' || u, '10.' || (g % 250) || '.' || (u % 250) || '.1',
       'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', md5(g::text),
       CASE t.actor_type WHEN 'client' THEN jsonb_build_object('client', 'client-' || (g % 20))
            ELSE '{}'::jsonb END
FROM (SELECT g, random() AS r, (random() * ${USERS - 1})::int AS u FROM generate_series(1, ${ROWS}) AS g) AS s,
LATERAL (SELECT CASE WHEN r < 0.45 THEN 'token_issued' WHEN r < 0.65 THEN 'token_refreshed'
                     WHEN r < 0.85 THEN 'sign_in' WHEN r < 0.90 THEN 'admin_api_call'
                     WHEN r < 0.93 THEN 'consent_granted' WHEN r < 0.97 THEN 'sign_out'
                     ELSE 'password_changed' END AS type) AS k,
LATERAL (SELECT k.type, CASE WHEN k.type LIKE 'token_%' OR k.type = 'consent_granted' THEN 'client'
                             WHEN k.type = 'admin_api_call' THEN 'admin' ELSE 'user' END AS actor_type) AS t`;

export type AuditQuery = { name: string; sql: string; plan: string; ms: number; index: boolean };
export type AuditResult = { generateSeconds: number; indexSeconds: number; queries: AuditQuery[] };

export async function benchAudit(cleanup: Cleanup, note: (l: string) => void) {
  const postgres = await startPostgres();
  cleanup.defer(() => postgres.stop());
  const db = knexOf(postgres.url);
  cleanup.defer(() => db.destroy());
  await migrate(db);
  const client = new pg.Client(postgres.url);
  await client.connect();
  cleanup.defer(() => client.end());

  // Faster to fill without the secondary indexes and build them after, as the migrations made them.
  const { rows: indexes } = await client.query<{ name: string; def: string }>(
    `SELECT indexname AS name, indexdef AS def FROM pg_indexes
     WHERE tablename = 'audit_events' AND indexname <> 'audit_events_pkey'`,
  );
  for (const { name } of indexes) await client.query(`DROP INDEX ${name}`);
  let t0 = performance.now();
  await client.query(GENERATE);
  const generateSeconds = (performance.now() - t0) / 1000;
  note(`audit: ${fmt(ROWS)} rows in ${fmt(generateSeconds)} s`);
  t0 = performance.now();
  await client.query(`SET maintenance_work_mem = '256MB'`);
  for (const { def } of indexes) await client.query(def);
  await client.query('VACUUM ANALYZE audit_events');
  const indexSeconds = (performance.now() - t0) / 1000;
  note(`audit: indexes and VACUUM ANALYZE in ${fmt(indexSeconds)} s`);

  const queries: AuditQuery[] = [];
  const explain = async (name: string, sent: Captured) => {
    await explainAnalyze(client, sent); // warm the cache: a page shown twice is the usual case
    const { plan, ms, indexOnly } = await explainAnalyze(client, sent);
    queries.push({ name, sql: sent.sql, plan, ms, index: indexOnly });
    note(`audit: ${name}: ${fmt(ms, 2)} ms`);
  };

  const user = `user-${USERS / 2}`;
  const activity = (before?: string) =>
    capturing(db, () => activityOf(db, user, { before, limit: ACTIVITY_PAGE_SIZE }));
  const [first, firstSql] = await activity();
  await explain(`account center: ${user}'s first page`, firstSql);
  if (!first.next) throw new Error(`${user} has one page of activity only`);
  const [, secondSql] = await activity(first.next);
  await explain(`account center: ${user}'s second page (cursor)`, secondSql);

  const list = async (name: string, filter: AuditFilter, after?: AuditPosition) => {
    const read = { order: 'desc' as const, limit: ADMIN_PAGE + 1, batch: ADMIN_PAGE + 1, after };
    const [records, sent] = await capturing(db, async () => {
      const found = [];
      for await (const record of auditRecords(db, filter, read)) found.push(record);
      return found;
    });
    await explain(`admin API: ${name}`, sent);
    return records;
  };
  const page = await list('unfiltered, first page', {});
  await list('unfiltered, a later page (cursor)', {}, page.at(-2));
  await list('type=sign_in', { types: ['sign_in'] });
  await list('type=password_changed,sign_out', { types: ['password_changed', 'sign_out'] });
  await list('actor=admin-1 (an admin)', { actor: 'admin-1' });
  await list(`actor=${user}`, { actor: user });
  await list(`subject=${user}`, { subject: user });
  const day = 86_400_000;
  const since = new Date(Date.now() - 30 * day);
  await list('since/until: one day a month ago', { since, until: new Date(since.getTime() + day) });
  await list('type=sign_in and one day a month ago', {
    types: ['sign_in'],
    since,
    until: new Date(since.getTime() + day),
  });
  return { generateSeconds, indexSeconds, queries } satisfies AuditResult;
}

export function auditReport(r: AuditResult): string[] {
  const slow = r.queries.filter((q) => q.ms > TARGET_MS || !q.index);
  return [
    `## The audit table at ${fmt(ROWS)} rows`,
    '',
    `Rows made in SQL (${fmt(r.generateSeconds)} s; indexes as the migrations make them, built after, and VACUUM ANALYZE: ${fmt(r.indexSeconds)} s): 180 days, ${fmt(USERS)} users, 45% token_issued, 20% token_refreshed, 20% sign_in, 5% admin_api_call, 3% consent_granted, 4% sign_out, 3% password_changed. Each statement is the one the server's function sends, captured; timings are EXPLAIN ANALYZE's execution time, cache warm.`,
    '',
    '| call | ms | index scans only |',
    '| --- | --: | --- |',
    ...r.queries.map((q) => `| ${q.name} | ${fmt(q.ms, 2)} | ${q.index ? 'yes' : '**no**'} |`),
    '',
    `Every call an index scan under ${TARGET_MS} ms: ${slow.length ? `**missed** by ${slow.map((q) => q.name).join('; ')}` : 'met'}.`,
    '',
    ...r.queries.map((q) => planBlock(`### ${q.name}`, q.sql, q.plan)),
  ];
}
