import type { Knex } from 'knex';
import * as initial from './20261123000000_initial.ts';
import * as consents from './20261123010000_consents.ts';
import * as passwordHistory from './20261123020000_password_history.ts';
import * as emailTokens from './20261123030000_email_tokens.ts';
import * as payloadAccount from './20261123040000_payload_account.ts';
import * as knownDevices from './20261123050000_known_devices.ts';
import * as auditEvents from './20261123060000_audit_events.ts';
import * as protection from './20261123070000_protection.ts';
import * as mfa from './20261123080000_mfa.ts';
import * as directoryUsers from './20261124000000_directory_users.ts';
import * as ownerLock from './20261125000000_owner_lock.ts';
import * as auditCounts from './20261125010000_audit_counts.ts';
import * as sessionsValidFrom from './20261126000000_sessions_valid_from.ts';
import * as mailOutbox from './20261127000000_mail_outbox.ts';
import * as endedSessions from './20261205000000_ended_sessions.ts';
import * as auditActivityIndex from './20261206000000_audit_activity_index.ts';
import * as auditActorIndex from './20261206005000_audit_actor_index.ts';
import * as directorySyncReport from './20261206010000_directory_sync_report.ts';
import * as clientPreviousSecret from './20261206020000_client_previous_secret.ts';

type Migration = { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> };

/** Every migration in order. Listed in code so the same set runs from TypeScript and from dist/. */
const migrations: Record<string, Migration> = {
  '20261123000000_initial': initial,
  '20261123010000_consents': consents,
  '20261123020000_password_history': passwordHistory,
  '20261123030000_email_tokens': emailTokens,
  '20261123040000_payload_account': payloadAccount,
  '20261123050000_known_devices': knownDevices,
  '20261123060000_audit_events': auditEvents,
  '20261123070000_protection': protection,
  '20261123080000_mfa': mfa,
  '20261124000000_directory_users': directoryUsers,
  '20261125000000_owner_lock': ownerLock,
  '20261125010000_audit_counts': auditCounts,
  '20261126000000_sessions_valid_from': sessionsValidFrom,
  '20261127000000_mail_outbox': mailOutbox,
  '20261205000000_ended_sessions': endedSessions,
  '20261206000000_audit_activity_index': auditActivityIndex,
  '20261206005000_audit_actor_index': auditActorIndex,
  '20261206010000_directory_sync_report': directorySyncReport,
  '20261206020000_client_previous_secret': clientPreviousSecret,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name] as Migration,
};
