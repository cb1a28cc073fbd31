import type { Knex } from 'knex';

/**
 * A client's secret before its last rotation, sealed like the current one, and until when it
 * still authenticates the client (CLIENT_SECRET_OVERLAP): its deployments move to the new secret
 * without an outage.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (t) => {
    t.text('previous_secret_sealed');
    t.timestamp('previous_secret_until', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (t) => {
    t.dropColumn('previous_secret_sealed');
    t.dropColumn('previous_secret_until');
  });
}
