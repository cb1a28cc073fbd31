import type { Knex } from 'knex';

/** The append-only audit trail of security-relevant events. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('type').notNullable();
    t.text('outcome').notNullable();
    t.text('actor_type').notNullable();
    t.text('actor_id');
    t.text('subject');
    t.text('ip');
    t.text('user_agent');
    t.text('request_id');
    t.jsonb('detail').notNullable().defaultTo('{}');
    t.index(['at'], 'audit_events_at');
    t.index(['subject', 'at'], 'audit_events_subject_at');
    t.index(['type', 'at'], 'audit_events_type_at');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('audit_events');
}
