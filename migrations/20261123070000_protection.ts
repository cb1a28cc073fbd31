import type { Knex } from 'knex';

/**
 * Rate-limit counters when no Redis is configured (rate-limiter-flexible's PostgreSQL layout),
 * and the per-account lockout state.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('rate_limits', (t) => {
    t.string('key', 255).primary();
    t.integer('points').notNullable().defaultTo(0);
    t.bigInteger('expire');
  });
  await knex.schema.alterTable('users', (t) => {
    t.integer('failed_sign_ins').notNullable().defaultTo(0);
    t.integer('lockouts').notNullable().defaultTo(0);
    t.timestamp('locked_until', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rate_limits');
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('failed_sign_ins');
    t.dropColumn('lockouts');
    t.dropColumn('locked_until');
  });
}
