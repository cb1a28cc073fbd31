import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // oidc-provider models in PostgreSQL (all of them without Redis; Grant/RefreshToken always).
  await knex.schema.createTable('oidc_payloads', (t) => {
    t.text('model').notNullable();
    t.text('id').notNullable();
    t.jsonb('payload').notNullable();
    t.text('grant_id');
    t.text('user_code');
    t.text('uid');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('consumed_at', { useTz: true });
    t.primary(['model', 'id']);
    t.index(['grant_id'], 'oidc_payloads_grant_id');
    t.index(['user_code'], 'oidc_payloads_user_code');
    t.index(['uid'], 'oidc_payloads_uid');
    t.index(['expires_at'], 'oidc_payloads_expires_at');
  });

  await knex.schema.createTable('users', (t) => {
    t.text('id').primary();
    t.text('email').notNullable();
    t.boolean('email_verified').notNullable().defaultTo(false);
    t.text('given_name');
    t.text('family_name');
    t.text('name');
    t.text('password_hash');
    t.jsonb('roles').notNullable().defaultTo('[]');
    t.boolean('disabled').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('CREATE UNIQUE INDEX users_email_lower ON users (lower(email))');

  await knex.schema.createTable('clients', (t) => {
    t.text('client_id').primary();
    t.text('secret_sealed');
    t.jsonb('metadata').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.jsonb('public_jwk').notNullable();
    t.text('private_sealed').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('activate_at', { useTz: true }).notNullable();
    t.index(['activate_at'], 'signing_keys_activate_at');
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['signing_keys', 'clients', 'users', 'oidc_payloads'])
    await knex.schema.dropTableIfExists(table);
}
