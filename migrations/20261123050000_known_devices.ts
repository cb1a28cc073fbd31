import type { Knex } from 'knex';

/** Devices a user has signed in from, so a sign-in from a new one can be told to them. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('known_devices', (t) => {
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('fingerprint').notNullable();
    t.text('description').notNullable();
    t.text('ip').notNullable();
    t.timestamp('first_seen', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['user_id', 'fingerprint']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('known_devices');
}
