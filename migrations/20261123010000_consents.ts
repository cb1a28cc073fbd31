import type { Knex } from 'knex';

/**
 * What a user has allowed each client, remembered across sessions and devices. Each new session
 * gets a grant of its own built from it, so that one device's logout or revoked refresh token
 * does not end the others'.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('consents', (t) => {
    t.text('account_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('client_id').notNullable().references('clients.client_id').onDelete('CASCADE');
    t.text('scope').notNullable().defaultTo('');
    t.jsonb('claims').notNullable().defaultTo('[]');
    t.jsonb('resources').notNullable().defaultTo('{}');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['account_id', 'client_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('consents');
}
