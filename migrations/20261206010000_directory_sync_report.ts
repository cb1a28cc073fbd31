import type { Knex } from 'knex';

/**
 * The report of the last sync that ran for real (not a dry run), success or failure, for the
 * admin API's directory status: the audit trail has the counts too, but its rows may be pruned
 * or counted together with alike failures.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('directory_sync', (t) => {
    t.jsonb('last_report');
    t.timestamp('last_finished_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('directory_sync', (t) => {
    t.dropColumn('last_finished_at');
    t.dropColumn('last_report');
  });
}
