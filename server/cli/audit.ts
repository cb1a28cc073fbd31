import { exportAuditEvents } from '../audit/export.ts';
import { archiveAuditEvents } from '../audit/retention.ts';
import { isoDate, UsageError, type Command } from './command.ts';

/** latchkey audit ... */
export const auditCommands: Record<string, Command> = {
  'audit export': {
    async run({ v, db, users }) {
      const since = isoDate(v.since, '--since');
      const until = isoDate(v.until, '--until');
      if (since && until && since >= until) throw new UsageError('--since must be before --until');
      let user = v.user;
      if (user?.includes('@')) {
        const found = await users.findByEmail(user);
        if (!found) throw new UsageError(`no user with email ${user}`);
        user = found.id;
      }
      await exportAuditEvents(db, { since, until, ...(user && { user }) }, process.stdout);
      return undefined;
    },
  },
  'audit prune': {
    audit: 'audit_pruned',
    async run({ config, db }) {
      const { days } = config.auditRetention;
      if (days <= 0) return 'AUDIT_RETENTION_DAYS is 0: audit rows are kept forever';
      const summary = await archiveAuditEvents(db, config.auditRetention);
      if (!summary) return 'another process is archiving; try again';
      return summary.archived
        ? `archived ${summary.archived} audit rows older than ${days} days to:\n${summary.files.join('\n')}`
        : `no audit rows older than ${days} days`;
    },
  },
};
