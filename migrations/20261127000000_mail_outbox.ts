import type { Knex } from 'knex';

/**
 * Mail waiting to go out (server/mail/outbox-store.ts): kept until the SMTP server takes it, so
 * an outage, a restart or a crash loses none. The message (recipient and live links) is sealed,
 * bound to its row. `due_at` is when it may next be tried; while a process holds it (`claim`),
 * when that claim lapses. A failed row keeps no message.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('mail_outbox', (t) => {
    t.text('id').primary();
    t.text('template').notNullable();
    t.text('message');
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('claim');
    t.timestamp('due_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('last_error');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`CREATE INDEX mail_outbox_due ON mail_outbox (due_at) WHERE status = 'pending'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('mail_outbox');
}
