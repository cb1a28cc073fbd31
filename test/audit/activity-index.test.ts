import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activityOf } from '../../server/audit/activity.ts';
import { userEvent } from '../../server/audit/audit.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

type Query = { sql: string; bindings: unknown[] };

describe.each(STORAGES)("the activity page's query on %s storage", (storage) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await storageEnv(storage));
    for (const subject of ['user-a', 'user-b'])
      for (let i = 0; i < 5; i++) await server.audit(userEvent('password_changed', subject));
  });
  afterAll(() => server?.cleanup());

  /** The SQL activityOf sends for a page (after `before`), as knex hands it to the driver. */
  async function activitySql(before?: string): Promise<Query> {
    const sent: Query[] = [];
    const listen = (q: Query) => sent.push(q);
    server.db.on('query', listen);
    try {
      await activityOf(server.db, 'user-a', { before, limit: 3 });
    } finally {
      server.db.off('query', listen);
    }
    expect(sent).toHaveLength(1);
    return sent[0]!;
  }

  /** Its plan with sequential scans priced out, as on a table too big to read whole. */
  async function plan({ sql, bindings }: Query): Promise<string> {
    const positional = sql.replace(/\$\d+/g, '?');
    return server.db.transaction(async (trx) => {
      await trx.raw('SET LOCAL enable_seqscan = off');
      const result = await trx.raw(`EXPLAIN ${positional}`, bindings as never);
      const rows = (result as { rows: { 'QUERY PLAN': string }[] }).rows;
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
  }

  it('reads a page newest first straight from the (subject, at desc, id desc) index, no sort', async () => {
    const first = await plan(await activitySql());
    expect(first).toContain('audit_events_subject_activity');
    expect(first).not.toMatch(/\bSort\b/);

    const { next } = await activityOf(server.db, 'user-a', { limit: 3 });
    expect(next).toBeTruthy();
    const later = await plan(await activitySql(next));
    expect(later).toContain('audit_events_subject_activity');
    expect(later).not.toMatch(/\bSort\b/);
  });
});
