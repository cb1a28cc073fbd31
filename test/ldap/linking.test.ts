import { Attribute, Change } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { sameDn } from '../../server/ldap/dn.ts';
import { useSlapdDirectory } from '../support/directory.ts';
import { PEOPLE, SEEDED } from '../support/slapd.ts';

const { alice, bob, dave } = SEEDED;
const erin = {
  dn: `uid=erin,${PEOPLE}`,
  email: 'erin@example.test',
  attributes: {
    objectClass: 'inetOrgPerson',
    uid: 'erin',
    cn: 'Erin New',
    sn: 'New',
    mail: 'erin@example.test',
    userPassword: 'erin-directory-password',
  },
};

describe('local users linked to directory entries by entryUUID', () => {
  const ldap = useSlapdDirectory();

  const signIn = async (login: string, password: string) => {
    const result = await ldap.t.directory.authenticate(login, password);
    if (!result.ok) throw new Error(`sign-in refused: ${result.reason}`);
    return result.user;
  };

  it('creates the local user at first sign-in and records it in the audit trail', async () => {
    const user = await signIn('alice', alice.password);
    const events = await ldap.t
      .db('audit_events')
      .where({ type: 'user_created', subject: user.id });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor_type: 'system', detail: { source: 'ldap' } });
  });

  it('follows the entry through a rename (modrdn): same account, new DN, new login', async () => {
    const before = await signIn('alice', alice.password);
    await ldap.slapd.asAdmin((admin) => admin.modifyDN(alice.dn, 'uid=alice.liddell'));
    expect(await ldap.t.directory.authenticate('alice', alice.password)).toEqual({
      ok: false,
      reason: 'invalid',
    });
    const after = await signIn('alice.liddell', alice.password);
    expect(after.id).toBe(before.id);
    expect(after.directory_id).toBe(before.directory_id);
    expect(sameDn(after.directory_dn!, `uid=alice.liddell,${PEOPLE}`)).toBe(true);
  });

  it('follows an email change: the account keeps its id and takes the new address', async () => {
    const before = await signIn('alice.liddell', alice.password);
    await ldap.slapd.asAdmin((admin) =>
      admin.modify(
        `uid=alice.liddell,${PEOPLE}`,
        new Change({
          operation: 'replace',
          modification: new Attribute({ type: 'mail', values: ['alice.liddell@example.test'] }),
        }),
      ),
    );
    const after = await signIn('alice.liddell@example.test', alice.password);
    expect(after).toMatchObject({ id: before.id, email: 'alice.liddell@example.test' });
    expect(await ldap.t.directory.authenticate(alice.email, alice.password)).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('never takes over a verified local account that has the same email', async () => {
    const owner = await ldap.t.services.users.create({
      email: bob.email,
      password: 'the local owner password',
      emailVerified: true,
    });
    expect(await ldap.t.directory.authenticate('bob', bob.password)).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(await ldap.t.localUser(bob.email)).toMatchObject({ id: owner.id, source: 'local' });
    expect(ldap.t.logs.join('')).toContain('account conflict');
  });

  it('replaces an unverified local account with the same email: nothing of the registrant carries over', async () => {
    const { users, tokens } = ldap.t.services;
    const shadow = await users.create({
      email: erin.email.toUpperCase(),
      password: 'the registrant password',
      name: 'Not Erin',
    });
    const pending = await tokens.issue(shadow.id, 'verify_email', 3600);
    await ldap.slapd.asAdmin((admin) => admin.add(erin.dn, erin.attributes));

    const user = await signIn('erin', erin.attributes.userPassword);
    expect(user).toMatchObject({ source: 'ldap', email: erin.email, password_hash: null });
    expect(user.id).not.toBe(shadow.id);
    expect(await users.findById(shadow.id)).toBeUndefined();
    expect(await users.authenticate(erin.email, 'the registrant password')).toBeUndefined();
    expect(await tokens.redeem(pending, 'verify_email')).toEqual({ ok: false, reason: 'invalid' });
    const replaced = await ldap.t.db('audit_events').where({ type: 'user_replaced' });
    expect(replaced).toHaveLength(1);
    expect(replaced[0]).toMatchObject({
      subject: user.id,
      detail: { replaced: shadow.id, reason: 'unverified local account with the same email' },
    });
  });

  it('creates one local user when the same new user signs in twice at once', async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, () => ldap.t.directory.authenticate('dave', dave.password)),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    const ids = new Set(results.map((r) => (r.ok ? r.user.id : '')));
    expect(ids.size).toBe(1);
  });

  it('skips an entry without an email address, saying why in the log', async () => {
    await ldap.slapd.asAdmin((admin) =>
      admin.add(`uid=nomail,${PEOPLE}`, {
        objectClass: 'inetOrgPerson',
        uid: 'nomail',
        cn: 'No Mail',
        sn: 'Mail',
        userPassword: 'nomail-directory-password',
      }),
    );
    expect(await ldap.t.directory.authenticate('nomail', 'nomail-directory-password')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(ldap.t.logs.join('')).toContain('no email address');
  });
});
