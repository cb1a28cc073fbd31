import type { Knex } from 'knex';

/**
 * Refusals alike in kind and source share one row per window (server/audit/audit.ts): `count`
 * says how many it stands for, `last_at` when the last was, and `aggregate_key` (unique where
 * set; unset on every other row) is what they share. The row's other fields stay the first's.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('audit_events', (t) => {
    t.integer('count').notNullable().defaultTo(1);
    t.timestamp('last_at', { useTz: true });
    t.text('aggregate_key');
  });
  await knex.raw(
    'CREATE UNIQUE INDEX audit_events_aggregate_key ON audit_events (aggregate_key) WHERE aggregate_key IS NOT NULL',
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS audit_events_aggregate_key');
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropColumn('aggregate_key');
    t.dropColumn('last_at');
    t.dropColumn('count');
  });
}
