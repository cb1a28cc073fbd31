// What the scale benchmark asks of PostgreSQL directly: the SQL a server function really sends
// (captured from its knex instance), and that SQL's plan.
import knex, { type Knex } from 'knex';
import type pg from 'pg';

/** A knex over `url` like the server's (client pg), for calling the server's own query code. */
export function knexOf(url: string): Knex {
  return knex({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
}

export type Captured = { sql: string; bindings: readonly unknown[] };

/** Runs `work` and returns what it returned and the last statement it sent. */
export async function capturing<T>(db: Knex, work: () => Promise<T>): Promise<[T, Captured]> {
  let last: Captured | undefined;
  const listen = (q: { sql: string; bindings?: readonly unknown[] }) =>
    (last = { sql: q.sql, bindings: q.bindings ?? [] });
  db.on('query', listen);
  try {
    const result = await work();
    if (!last) throw new Error('no statement was sent');
    return [result, last];
  } finally {
    db.off('query', listen);
  }
}

/** Knex's `?` placeholders as pg's $1, $2 …, for EXPLAIN through the plain driver. */
const numbered = (sql: string) => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

/** EXPLAIN (ANALYZE, BUFFERS) of a captured statement: its plan text and execution time. */
export async function explainAnalyze(client: pg.Client, q: Captured) {
  const sql = q.sql.includes('$1') ? q.sql : numbered(q.sql);
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(
    `EXPLAIN (ANALYZE, BUFFERS) ${sql}`,
    q.bindings as unknown[],
  );
  const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
  const ms = Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1] ?? NaN);
  return { plan, ms, indexOnly: usesIndexOnly(plan) };
}

/** Whether every table read in the plan goes through an index (no sequential scan). */
function usesIndexOnly(plan: string): boolean {
  return !/Seq Scan/.test(plan) && /Index (Only )?Scan|Bitmap Index Scan/.test(plan);
}

/** A plan as a fenced block in the report. */
export const planBlock = (title: string, sql: string, plan: string) =>
  [`${title}`, '', '```sql', sql, '```', '', '```', plan, '```', ''].join('\n');
