import type { Knex } from 'knex';

/**
 * Local users linked to an LDAP / Active Directory entry by its stable id (entryUUID or
 * objectGUID), so a renamed entry or changed email stays the same account; and where the last
 * incremental sync stopped.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.text('source').notNullable().defaultTo('local');
    t.text('directory_id').unique('users_directory_id');
    t.text('directory_dn');
    // disabled | missing when the directory's doing disabled the account here (the directory
    // enables it again), active otherwise (so `disabled` on it is an admin's doing, which stays).
    t.text('directory_state');
    t.timestamp('directory_synced_at', { useTz: true });
  });
  await knex.raw(
    "ALTER TABLE users ADD CONSTRAINT users_source CHECK (source IN ('local', 'ldap') AND (source = 'local') = (directory_id IS NULL))",
  );
  await knex.schema.createTable('directory_sync', (t) => {
    t.text('id').primary();
    // The directory's own modification time (GeneralizedTime) of the newest entry seen: the
    // directory's clock, not ours, decides what "changed since" means.
    t.text('high_water');
    t.timestamp('last_full_at', { useTz: true });
    t.timestamp('last_run_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('directory_sync');
  await knex.raw('ALTER TABLE users DROP CONSTRAINT IF EXISTS users_source');
  await knex.schema.alterTable('users', (t) => {
    for (const column of [
      'source',
      'directory_id',
      'directory_dn',
      'directory_state',
      'directory_synced_at',
    ])
      t.dropColumn(column);
  });
}
