import { Attribute, Change } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { PPOLICY_ADMIN_LOCK } from '../../server/ldap/presets.ts';
import { useSlapdDirectory } from '../support/directory.ts';
import { GROUPS, PEOPLE, SEEDED } from '../support/slapd.ts';

const { alice, bob, dave, jsmith } = SEEDED;
const ERIN = {
  dn: `uid=erin,${PEOPLE}`,
  attributes: {
    objectClass: 'inetOrgPerson',
    uid: 'erin',
    cn: 'Erin New',
    sn: 'New',
    mail: 'erin@example.test',
    userPassword: 'erin-directory-password',
  },
};

const FRANK = {
  dn: `uid=frank,${PEOPLE}`,
  attributes: {
    objectClass: 'inetOrgPerson',
    uid: 'frank',
    cn: 'Frank New',
    sn: 'New',
    mail: 'frank@example.test',
    userPassword: 'frank-directory-password',
  },
};

const replace = (type: string, values: string[]) =>
  new Change({ operation: 'replace', modification: new Attribute({ type, values }) });

describe('directory sync against OpenLDAP', () => {
  const ldap = useSlapdDirectory();

  const localUsers = async () =>
    Object.fromEntries(
      (await ldap.t.db('users').where({ source: 'ldap' }).orderBy('email')).map((u) => [
        u.email,
        { roles: u.roles, disabled: u.disabled, state: u.directory_state, name: u.name },
      ]),
    );
  const counts = (summary: unknown) => {
    const { mode, dryRun, created, updated, disabled, errors } = summary as Record<string, unknown>;
    return { mode, dryRun, created, updated, disabled, errors };
  };

  it('a dry run reports what a first full sync would create, and changes nothing', async () => {
    const summary = await ldap.t.directory.sync({ dryRun: true });
    expect(counts(summary)).toEqual({
      mode: 'full',
      dryRun: true,
      created: 4,
      updated: 0,
      disabled: 0,
      errors: 0,
    });
    expect(summary!.changes.map((c) => c.action)).toEqual(Array(4).fill('create'));
    expect(await localUsers()).toEqual({});
    expect(await ldap.t.db('directory_sync').select()).toEqual([]);
  });

  it('a full sync creates every enabled user with roles from nested groups, never the disabled one', async () => {
    const summary = await ldap.t.directory.sync();
    expect(counts(summary)).toMatchObject({ mode: 'full', created: 4, errors: 0 });
    expect(await localUsers()).toEqual({
      [alice.email]: {
        roles: ['admin', 'staff'],
        disabled: false,
        state: 'active',
        name: alice.cn,
      },
      [bob.email]: {
        roles: ['developer', 'staff'],
        disabled: false,
        state: 'active',
        name: bob.cn,
      },
      [dave.email]: { roles: ['admin'], disabled: false, state: 'active', name: dave.cn },
      [jsmith.email]: {
        roles: ['looper', 'staff'],
        disabled: false,
        state: 'active',
        name: jsmith.cn,
      },
    });
    const [audit] = await ldap.t
      .db('audit_events')
      .where({ type: 'directory_sync' })
      .orderBy('id', 'desc');
    expect(audit).toMatchObject({
      outcome: 'success',
      actor_type: 'system',
      detail: { mode: 'full', dryRun: false, created: 4, updated: 0, disabled: 0, errors: 0 },
    });
  });

  it('an incremental sync with nothing changed changes nothing', async () => {
    expect(counts(await ldap.t.directory.sync())).toEqual({
      mode: 'incremental',
      dryRun: false,
      created: 0,
      updated: 0,
      disabled: 0,
      errors: 0,
    });
  });

  it("leaves a scheduled run when another process's run ended within the time given", async () => {
    const before = await ldap.t.db('directory_sync').first();
    expect(await ldap.t.directory.sync({ unlessRanWithinSeconds: 60 })).toBeUndefined();
    expect(await ldap.t.db('directory_sync').first()).toEqual(before);
    expect(await ldap.t.directory.sync({ unlessRanWithinSeconds: 0 })).toMatchObject({
      mode: 'incremental',
    });
  });

  it('picks up an added, a changed, a disabled and a deleted entry: dry run first, then for real', async () => {
    await ldap.slapd.asAdmin(async (admin) => {
      await admin.add(ERIN.dn, ERIN.attributes);
      await admin.modify(bob.dn, [
        replace('mail', ['robert@example.test']),
        replace('cn', ['Robert Builder']),
      ]);
      await admin.modify(dave.dn, replace('pwdAccountLockedTime', [PPOLICY_ADMIN_LOCK]));
      await admin.del(jsmith.dn);
    });
    const before = await localUsers();
    const dry = await ldap.t.directory.sync({ dryRun: true, full: true });
    const expected = { created: 1, updated: 1, disabled: 2, errors: 0 };
    expect(counts(dry)).toMatchObject({ ...expected, dryRun: true });
    expect(await localUsers()).toEqual(before);

    const real = await ldap.t.directory.sync({ full: true });
    expect(counts(real)).toMatchObject({ ...expected, dryRun: false });
    expect(real!.changes.map((c) => c.action).sort()).toEqual(
      dry!.changes.map((c) => c.action).sort(),
    );
    expect(await localUsers()).toMatchObject({
      'erin@example.test': { roles: [], disabled: false, state: 'active' },
      'robert@example.test': { roles: ['developer', 'staff'], name: 'Robert Builder' },
      [dave.email]: { disabled: true, state: 'disabled' },
      [jsmith.email]: { disabled: true, state: 'missing' },
    });
    expect(await ldap.t.localUser(bob.email)).toBeUndefined();
  });

  it('an incremental sync notices a group change and recomputes roles', async () => {
    await ldap.slapd.asAdmin((admin) =>
      admin.modify(
        `cn=admins,${GROUPS}`,
        new Change({
          operation: 'add',
          modification: new Attribute({ type: 'member', values: [ERIN.dn] }),
        }),
      ),
    );
    // A group's change leaves its members' modifyTimestamp alone: the run becomes a full one.
    const summary = await ldap.t.directory.sync();
    expect(counts(summary)).toMatchObject({ mode: 'full', updated: 1, errors: 0 });
    expect((await ldap.t.localUser('erin@example.test'))?.roles).toEqual(['admin']);
  });

  it('enables again a user the directory enables again, and refuses signing in meanwhile', async () => {
    expect(await ldap.t.directory.authenticate('dave', dave.password)).toEqual({
      ok: false,
      reason: 'invalid',
    });
    await ldap.slapd.asAdmin((admin) =>
      admin.modify(
        dave.dn,
        new Change({
          operation: 'delete',
          modification: new Attribute({ type: 'pwdAccountLockedTime', values: [] }),
        }),
      ),
    );
    expect(counts(await ldap.t.directory.sync({ full: true }))).toMatchObject({ updated: 1 });
    expect(await ldap.t.localUser(dave.email)).toMatchObject({
      disabled: false,
      directory_state: 'active',
    });
    expect((await ldap.t.directory.authenticate('dave', dave.password)).ok).toBe(true);
  });

  it("keeps an admin's disabling: the directory's sync does not enable the account again", async () => {
    await ldap.t.db('users').where({ email: alice.email }).update({ disabled: true });
    expect(counts(await ldap.t.directory.sync({ full: true }))).toMatchObject({
      updated: 0,
      disabled: 0,
    });
    expect(await ldap.t.localUser(alice.email)).toMatchObject({
      disabled: true,
      directory_state: 'active',
    });
    await ldap.t.db('users').where({ email: alice.email }).update({ disabled: false });
  });

  it('disables nobody when the user base lists no one (a wrong base), and says so', async () => {
    const empty = ldap.t.another(
      ldap.slapd.env({ LDAP_USER_BASE: `ou=services,dc=example,dc=test` }),
    );
    const summary = await empty.sync({ full: true });
    expect(counts(summary)).toMatchObject({ disabled: 0, errors: 1 });
    expect(summary!.problems[0]).toMatch(/listed no users/);
    expect((await ldap.t.localUser(alice.email))?.disabled).toBe(false);
  });

  it("replaces an unverified local account holding a new entry's email, and signs it out", async () => {
    const shadow = await ldap.t.services.users.create({
      email: FRANK.attributes.mail,
      password: 'the registrant password',
    });
    await ldap.slapd.asAdmin((admin) => admin.add(FRANK.dn, FRANK.attributes));
    const summary = await ldap.t.directory.sync({ full: true });
    expect(counts(summary)).toMatchObject({ created: 1, errors: 0 });
    const frank = await ldap.t.localUser(FRANK.attributes.mail);
    expect(frank).toMatchObject({ source: 'ldap', password_hash: null, name: 'Frank New' });
    expect(frank!.id).not.toBe(shadow.id);
    expect(await ldap.t.db('users').where({ id: shadow.id })).toEqual([]);
    expect(
      await ldap.t.db('audit_events').where({ type: 'user_replaced', subject: frank!.id }),
    ).toHaveLength(1);
  });
});

describe('directory sync a page at a time (LDAP_PAGE_SIZE 2)', () => {
  const ldap = useSlapdDirectory({ settings: { LDAP_PAGE_SIZE: '2' } });

  it('creates every user across pages, fails only the entry whose email a verified local account holds, and disables only the deleted one', async () => {
    // In bob's page: his new account conflicts, so the page's creates are made one by one.
    await ldap.t.services.users.create({
      email: bob.email,
      password: 'a verified local password',
      emailVerified: true,
    });
    const first = await ldap.t.directory.sync({ full: true });
    expect(first).toMatchObject({ created: 3, errors: 1 });
    expect(first!.problems).toEqual([expect.stringMatching(/uid=bob.*another local account/)]);
    for (const { email } of [alice, dave, jsmith])
      expect(await ldap.t.localUser(email)).toMatchObject({ source: 'ldap', disabled: false });
    expect(await ldap.t.localUser(bob.email)).toMatchObject({ source: 'local' });

    await ldap.slapd.asAdmin((admin) => admin.del(dave.dn));
    const second = await ldap.t.directory.sync({ full: true });
    expect(second).toMatchObject({ created: 0, updated: 0, disabled: 1 });
    expect(second!.changes).toEqual([
      { action: 'missing', directoryId: expect.any(String), dn: dave.dn },
    ]);
    expect(await ldap.t.localUser(dave.email)).toMatchObject({
      disabled: true,
      directory_state: 'missing',
    });
    expect(await ldap.t.localUser(alice.email)).toMatchObject({ disabled: false });
  });
});

describe('directory sync when a new entry holds a value the database refuses', () => {
  const ldap = useSlapdDirectory();

  it('fails only that entry: the other new account is created and the deleted one disabled', async () => {
    expect(await ldap.t.directory.sync({ full: true })).toMatchObject({ created: 4, errors: 0 });
    // PostgreSQL text cannot hold NUL; the directory's cn (a directoryString) can.
    const nul = {
      dn: `uid=nul,${PEOPLE}`,
      attributes: { ...ERIN.attributes, uid: 'nul', cn: 'Nul\u0000Name', mail: 'nul@example.test' },
    };
    await ldap.slapd.asAdmin(async (admin) => {
      await admin.add(ERIN.dn, ERIN.attributes);
      await admin.add(nul.dn, nul.attributes);
      await admin.del(dave.dn);
    });
    const summary = await ldap.t.directory.sync({ full: true });
    expect(summary).toMatchObject({ created: 1, disabled: 1, errors: 1 });
    expect(summary!.problems).toEqual([expect.stringContaining(nul.dn)]);
    expect(await ldap.t.localUser(ERIN.attributes.mail)).toMatchObject({ source: 'ldap' });
    expect(await ldap.t.localUser(dave.email)).toMatchObject({
      disabled: true,
      directory_state: 'missing',
    });
  });
});
