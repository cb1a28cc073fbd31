import { userInfo } from 'node:os';
import { requestedSync, type Directory } from '../ldap/directory.ts';
import type { SyncSummary } from '../ldap/sync-summary.ts';
import { need, type Command } from './command.ts';

// latchkey ldap ...: the directory of the service graph, as the server has it.

function configured(directory: Directory | undefined): Directory {
  if (!directory) throw new Error('no directory configured: LDAP_URL is not set');
  return directory;
}

function describeSync(summary: SyncSummary): string {
  const { mode, dryRun, created, updated, disabled, errors } = summary;
  const lines = [
    dryRun
      ? `${mode} sync, dry run (nothing changed): would create ${created}, update ${updated}, disable ${disabled}; ${errors} errors`
      : `${mode} sync: created ${created}, updated ${updated}, disabled ${disabled}; ${errors} errors`,
    ...summary.changes.map((c) => `  ${c.action}\t${c.directoryId}\t${c.dn ?? ''}`),
    ...(summary.changesOmitted ? [`  … and ${summary.changesOmitted} more changes`] : []),
    ...summary.problems.map((p) => `  error\t${p}`),
    ...(summary.problemsOmitted ? [`  … and ${summary.problemsOmitted} more errors`] : []),
  ];
  return lines.join('\n');
}

/** latchkey ldap ... */
export const ldapCommands: Record<string, Command> = {
  // A full sync now (the scheduler runs incremental ones between full ones); it audits itself.
  'ldap sync': {
    async run({ v, directory }) {
      const summary = await requestedSync(configured(directory), {
        dryRun: Boolean(v['dry-run']),
        actor: { type: 'admin', id: userInfo().username },
      });
      return summary ? describeSync(summary) : 'another process is syncing; try again';
    },
  },
  // Binds as the login (password from stdin or typed) and shows what Latchkey makes of the
  // entry; changes nothing.
  'ldap test': {
    async run({ v, directory }) {
      const login = need(v.login, '--login');
      const found = await configured(directory).inspect(
        login,
        await readPassword(`password for ${login}: `),
      );
      if (!found)
        throw new Error(`the directory refused ${login}: no such entry, or a wrong password`);
      const { user, groups, roles } = found;
      return [
        `dn: ${user.dn}`,
        `id: ${user.id}`,
        `username: ${user.username ?? ''}`,
        `email: ${user.email}`,
        `name: ${user.name ?? ''}`,
        `given_name: ${user.givenName ?? ''}`,
        `family_name: ${user.familyName ?? ''}`,
        `disabled: ${user.disabled ? 'yes' : 'no'}`,
        `groups: ${groups.join('; ') || '(none)'}`,
        `roles: ${roles.join(', ') || '(none)'}`,
      ].join('\n');
    },
  },
};

/** A password from a pipe, or typed at the terminal without echo. */
async function readPassword(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    let text = '';
    for await (const chunk of input) text += String(chunk);
    return text.replace(/\r?\n$/, '');
  }
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.setEncoding('utf8');
  try {
    let password = '';
    for await (const chunk of input) {
      for (const char of String(chunk)) {
        if (char === '\r' || char === '\n') return password;
        if (char === '\u0003') throw new Error('cancelled');
        if (char === '\u007f' || char === '\b') password = password.slice(0, -1);
        else password += char;
      }
    }
    return password;
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
}
