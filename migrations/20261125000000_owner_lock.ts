import type { Knex } from 'knex';

/**
 * The lock an account's owner sets with a "this wasn't me" link (server/protection/owner-lock.ts):
 * apart from the failed-sign-in lockout, so nothing that clears those counters lifts it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.timestamp('owner_locked_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('owner_locked_at');
  });
}
