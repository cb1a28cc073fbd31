import type { Knex } from 'knex';

/**
 * The admin API and `audit export --user` find rows by their actor: without an index that reads
 * the whole trail. (at), (type, at) and (subject, at) already serve the other filters.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('audit_events', (t) => {
    t.index(['actor_id', 'at'], 'audit_events_actor_at');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropIndex(['actor_id', 'at'], 'audit_events_actor_at');
  });
}
