import type { Knex } from 'knex';

/** Which grant holds a user's consent to a client, so it is remembered across sessions. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('consents', (t) => {
    t.text('account_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('client_id').notNullable().references('clients.client_id').onDelete('CASCADE');
    t.text('grant_id').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['account_id', 'client_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('consents');
}
