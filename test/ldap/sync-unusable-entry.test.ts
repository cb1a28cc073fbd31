import { Attribute, Change } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { PPOLICY_ADMIN_LOCK } from '../../server/ldap/presets.ts';
import type { SyncSummary } from '../../server/ldap/sync-summary.ts';
import { useSlapdDirectory } from '../support/directory.ts';
import { GROUPS, SEEDED } from '../support/slapd.ts';

const { dave } = SEEDED;

const change = (operation: 'add' | 'delete' | 'replace', type: string, values: string[]) =>
  new Change({ operation, modification: new Attribute({ type, values }) });

const counts = ({ mode, created, updated, disabled, errors }: SyncSummary) => ({
  mode,
  created,
  updated,
  disabled,
  errors,
});

// dave is an admin through cn=platform. Where the directory lets users write their own entry
// (`by self write`), he can delete his own mail: his entry is then no user any more, yet still
// his account's (a missing email must not disable it).
describe('directory sync of a linked entry that lost its email', () => {
  const ldap = useSlapdDirectory();
  const daveNow = async () => {
    const user = await ldap.t.localUser(dave.email);
    return { roles: user?.roles, disabled: user?.disabled, state: user?.directory_state };
  };

  it('keeps the account as it is while its groups give the same roles, and lists the problem', async () => {
    expect(await ldap.t.directory.sync({ full: true })).toMatchObject({ errors: 0 });
    expect(await daveNow()).toEqual({ roles: ['admin'], disabled: false, state: 'active' });
    await ldap.slapd.asAdmin((admin) => admin.modify(dave.dn, change('delete', 'mail', [])));

    const summary = (await ldap.t.directory.sync({ full: true }))!;
    expect(counts(summary)).toEqual({
      mode: 'full',
      created: 0,
      updated: 0,
      disabled: 0,
      errors: 1,
    });
    expect(summary.problems).toEqual([`${dave.dn}: no email address in mail`]);
    expect(await daveNow()).toEqual({ roles: ['admin'], disabled: false, state: 'active' });
  });

  it('takes away a role its groups no longer give, and changes nothing else', async () => {
    const before = await ldap.t.localUser(dave.email);
    await ldap.slapd.asAdmin((admin) =>
      admin.modify(`cn=platform,${GROUPS}`, change('delete', 'member', [dave.dn])),
    );

    // The group's change makes the scheduled (incremental) run a full one.
    const summary = (await ldap.t.directory.sync())!;
    expect(counts(summary)).toEqual({
      mode: 'full',
      created: 0,
      updated: 1,
      disabled: 0,
      errors: 1,
    });
    expect(summary.problems.join('\n')).toMatch(/no email address/);
    expect(summary.changes).toEqual([
      { action: 'update', directoryId: before!.directory_id, dn: dave.dn },
    ]);
    const after = await ldap.t.localUser(dave.email);
    expect(after).toEqual({
      ...before,
      roles: [],
      directory_synced_at: after!.directory_synced_at,
      updated_at: after!.updated_at,
    });
  });

  it('disables, and signs out, the account once the directory disables the entry, and does not enable it again', async () => {
    const { id } = (await ldap.t.localUser(dave.email))!;
    await ldap.slapd.asAdmin((admin) =>
      admin.modify(dave.dn, change('replace', 'pwdAccountLockedTime', [PPOLICY_ADMIN_LOCK])),
    );
    // Only the entry changed: an incremental run reads it.
    expect(counts((await ldap.t.directory.sync())!)).toEqual({
      mode: 'incremental',
      created: 0,
      updated: 0,
      disabled: 1,
      errors: 1,
    });
    expect(await daveNow()).toEqual({ roles: [], disabled: true, state: 'disabled' });
    const signedOut = await ldap.t.db('audit_events').where({ type: 'user_disabled', subject: id });
    expect(signedOut).toHaveLength(1);

    await ldap.slapd.asAdmin((admin) =>
      admin.modify(dave.dn, change('delete', 'pwdAccountLockedTime', [])),
    );
    expect(counts((await ldap.t.directory.sync())!)).toMatchObject({ updated: 0, errors: 1 });
    expect(await daveNow()).toEqual({ roles: [], disabled: true, state: 'disabled' });
  });
});
