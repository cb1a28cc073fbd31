import { Attribute, Change } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { useSlapdDirectory } from '../support/directory.ts';
import { PEOPLE, SEEDED } from '../support/slapd.ts';

// A sync holds one page of the directory at a time: its report lists a bounded number of
// changes and problems (the counts stay exact), and group membership is resolved for each page's
// users, whatever page a group's other members come in.

const { alice, bob, dave, jsmith } = SEEDED;

/** An inetOrgPerson; without `mail` the sync cannot make an account of it. */
function person(uid: string, mail?: string): [string, Record<string, string>] {
  return [
    `uid=${uid},${PEOPLE}`,
    { objectClass: 'inetOrgPerson', uid, cn: uid, sn: uid, ...(mail && { mail }) },
  ];
}

describe('the report of a sync with more changes than it lists', () => {
  const ldap = useSlapdDirectory();

  it('lists the first 100 changes and problems, counts the others, and keeps every count exact', async () => {
    await ldap.slapd.asAdmin(async (admin) => {
      for (let i = 0; i < 110; i++) await admin.add(...person(`many${i}`, `many${i}@example.test`));
      for (let i = 0; i < 103; i++) await admin.add(...person(`nomail${i}`));
    });
    const first = await ldap.t.directory.sync({ full: true });
    expect(first).toMatchObject({
      created: 114,
      errors: 103,
      changesOmitted: 14,
      problemsOmitted: 3,
    });
    expect(first!.changes).toHaveLength(100);
    expect(first!.problems).toHaveLength(100);
    expect(first!.problems[0]).toMatch(/^uid=nomail\d+,.*: no email address/);
    expect(await ldap.t.db('users').where({ source: 'ldap' })).toHaveLength(114);
    const [audit] = await ldap.t
      .db('audit_events')
      .where({ type: 'directory_sync' })
      .orderBy('id', 'desc');
    expect(audit.detail).toMatchObject({ created: 114, errors: 103 });

    await ldap.slapd.asAdmin(async (admin) => {
      for (let i = 0; i < 105; i++) await admin.del(person(`many${i}`)[0]);
      for (let i = 0; i < 103; i++) await admin.del(person(`nomail${i}`)[0]);
    });
    const second = await ldap.t.directory.sync({ full: true });
    expect(second).toMatchObject({
      disabled: 105,
      errors: 0,
      changesOmitted: 5,
      problems: [],
      problemsOmitted: 0,
    });
    expect(second!.changes).toHaveLength(100);
    expect(new Set(second!.changes.map((c) => c.action))).toEqual(new Set(['missing']));
    expect(
      await ldap.t.db('users').where({ source: 'ldap', directory_state: 'missing' }),
    ).toHaveLength(105);
    expect(await ldap.t.db('audit_events').where({ type: 'user_disabled' })).toHaveLength(105);
  });
});

describe('directory sync a page at a time (LDAP_PAGE_SIZE 2), groups spanning pages', () => {
  const ldap = useSlapdDirectory({ settings: { LDAP_PAGE_SIZE: '2' } });
  const rolesOf = async (email: string) => (await ldap.t.localUser(email))?.roles;

  it('gives every user the roles of their groups: nested three deep, posixGroup memberUid, through a loop', async () => {
    expect(await ldap.t.directory.sync({ full: true })).toMatchObject({ created: 4, errors: 0 });
    expect(await rolesOf(alice.email)).toEqual(['admin', 'staff']);
    expect(await rolesOf(bob.email)).toEqual(['developer', 'staff']);
    expect(await rolesOf(dave.email)).toEqual(['admin']);
    expect(await rolesOf(jsmith.email)).toEqual(['looper', 'staff']);
  });

  it('keeps the roles of the users an incremental run reads', async () => {
    await ldap.slapd.asAdmin(async (admin) => {
      for (const { dn } of [alice, bob, jsmith])
        await admin.modify(
          dn,
          new Change({
            operation: 'replace',
            modification: new Attribute({ type: 'givenName', values: ['Renamed'] }),
          }),
        );
    });
    expect(await ldap.t.directory.sync()).toMatchObject({
      mode: 'incremental',
      updated: 3,
      errors: 0,
    });
    expect(await ldap.t.localUser(alice.email)).toMatchObject({
      given_name: 'Renamed',
      roles: ['admin', 'staff'],
    });
    expect(await rolesOf(bob.email)).toEqual(['developer', 'staff']);
    expect(await rolesOf(jsmith.email)).toEqual(['looper', 'staff']);
  });

  it('disables every user gone from the directory, and signs each one out', async () => {
    await ldap.slapd.asAdmin(async (admin) => {
      for (const { dn } of [alice, bob, dave]) await admin.del(dn);
    });
    const summary = await ldap.t.directory.sync({ full: true });
    expect(summary).toMatchObject({ disabled: 3, errors: 0, changesOmitted: 0 });
    const gone = await ldap.t.db('users').where({ directory_state: 'missing', disabled: true });
    expect(gone.map((u) => u.email).sort()).toEqual([alice.email, bob.email, dave.email]);
    const signedOut = await ldap.t.db('audit_events').where({ type: 'user_disabled' });
    expect(signedOut.map((e) => e.subject).sort()).toEqual(gone.map((u) => u.id).sort());
    expect(await ldap.t.localUser(jsmith.email)).toMatchObject({ disabled: false });
  });
});
