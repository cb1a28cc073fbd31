import type { Knex } from 'knex';

/**
 * When the account was last signed out everywhere (epoch seconds): a session that signed in
 * before it no longer stands, even one a request in flight wrote back after it was deleted, and
 * device cookies issued before it no longer count (server/users/session-rule.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.bigInteger('sessions_valid_from').notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('sessions_valid_from');
  });
}
