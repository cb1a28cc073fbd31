import type { Knex } from 'knex';

/**
 * A user's security activity is read newest first, a page at a time by (at, id)
 * (server/audit/activity.ts): this index hands those rows over in that order, from the cursor
 * on, with no sort. It has the old (subject, at) index's leading columns, so it serves that
 * index's queries too, and replaces it: one index less to keep up on every audit write.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    'CREATE INDEX IF NOT EXISTS audit_events_subject_activity ON audit_events (subject, at DESC, id DESC)',
  );
  await knex.raw('DROP INDEX IF EXISTS audit_events_subject_at');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(
    'CREATE INDEX IF NOT EXISTS audit_events_subject_at ON audit_events (subject, at)',
  );
  await knex.raw('DROP INDEX IF EXISTS audit_events_subject_activity');
}
