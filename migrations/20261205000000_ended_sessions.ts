import type { Knex } from 'knex';

/**
 * The sessions of the account ended one at a time: session uid → until when (epoch seconds) it
 * must not stand again. A request of the session in flight when it ended writes it back when it
 * ends; the user row, read on every check anyway, refuses it (server/users/session-rule.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.jsonb('ended_sessions').notNullable().defaultTo('{}');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('ended_sessions');
  });
}
