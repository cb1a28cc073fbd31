import type { Knex } from 'knex';

/** Lets every session and grant of one account be found (sign out everywhere, revoke all). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_payloads', (t) => {
    t.text('account_id');
    t.index(['model', 'account_id'], 'oidc_payloads_model_account');
  });
  await knex.raw(
    `UPDATE oidc_payloads SET account_id = payload->>'accountId' WHERE account_id IS NULL`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_payloads', (t) => {
    t.dropIndex(['model', 'account_id'], 'oidc_payloads_model_account');
    t.dropColumn('account_id');
  });
}
