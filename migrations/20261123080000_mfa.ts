import type { Knex } from 'knex';

/** Second factors: an authenticator app (TOTP), one-time recovery codes, passkeys (WebAuthn). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('totp_factors', (t) => {
    t.text('user_id').primary().references('users.id').onDelete('CASCADE');
    t.text('secret_sealed').notNullable();
    // Null until the user proves the app works with a first code.
    t.timestamp('confirmed_at', { useTz: true });
    // The last accepted time step: a code is accepted once (RFC 6238 §5.2).
    t.bigInteger('last_step').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('recovery_codes', (t) => {
    t.bigIncrements('id').primary();
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('code_hash').notNullable();
    t.timestamp('used_at', { useTz: true });
    t.unique(['user_id', 'code_hash']);
  });
  await knex.schema.createTable('webauthn_credentials', (t) => {
    t.text('id').primary(); // the credential id, base64url
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.binary('public_key').notNullable();
    t.bigInteger('counter').notNullable().defaultTo(0);
    t.jsonb('transports').notNullable().defaultTo('[]');
    t.text('device_type').notNullable(); // singleDevice (hardware-bound) or multiDevice (synced)
    t.boolean('backed_up').notNullable().defaultTo(false);
    t.text('name').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true });
    t.index(['user_id'], 'webauthn_credentials_user');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('webauthn_credentials');
  await knex.schema.dropTableIfExists('recovery_codes');
  await knex.schema.dropTableIfExists('totp_factors');
}
