import { Client, InvalidCredentialsError } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { sameDn } from '../../server/ldap/dn.ts';
import { IN_CHAIN_RULE } from '../../server/ldap/filters.ts';
import { useSlapdDirectory } from '../support/directory.ts';
import { GROUPS, PEOPLE, SEEDED } from '../support/slapd.ts';

const { alice, bob, carol, dave, jsmith } = SEEDED;

describe('directory sign-in against OpenLDAP', () => {
  const ldap = useSlapdDirectory();

  const entryUuid = (dn: string) =>
    ldap.slapd.asAdmin(async (client) => {
      const { searchEntries } = await client.search(dn, {
        scope: 'base',
        attributes: ['entryUUID'],
      });
      return String(searchEntries[0]!.entryUUID);
    });

  it('signs a user in by uid, creating the local user with the mapped claims and no password', async () => {
    const result = await ldap.t.directory.authenticate('alice', alice.password);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.user).toMatchObject({
      email: alice.email,
      email_verified: true,
      name: alice.cn,
      given_name: alice.givenName,
      family_name: alice.sn,
      password_hash: null,
      disabled: false,
      source: 'ldap',
      directory_id: await entryUuid(alice.dn),
      directory_state: 'active',
    });
    expect(sameDn(result.user.directory_dn!, alice.dn)).toBe(true);
  });

  it('signs the same user in by email, in any case, as the same local account', async () => {
    const byUid = await ldap.t.directory.authenticate('alice', alice.password);
    const byEmail = await ldap.t.directory.authenticate('ALICE@Example.test', alice.password);
    expect(byEmail.ok && byUid.ok && byEmail.user.id === byUid.user.id).toBe(true);
    expect(await ldap.t.db('users').where({ source: 'ldap' }).count({ n: '*' }).first()).toEqual({
      n: 1,
    });
  });

  it('refuses a wrong password, an unknown login and an empty password alike', async () => {
    for (const [login, password] of [
      ['alice', 'not-alices-password'],
      ['alice@example.test', 'not-alices-password'],
      ['nobody', alice.password],
      ['nobody@example.test', alice.password],
      ['alice', ''],
      ['', alice.password],
      ['   ', alice.password],
    ] as const)
      expect(await ldap.t.directory.authenticate(login, password), `${login}/${password}`).toEqual({
        ok: false,
        reason: 'invalid',
      });
  });

  it('treats filter syntax in a login as plain characters: injection attempts fail safely', async () => {
    const attempts = [
      '*',
      'a*',
      '*)(uid=*',
      ')(uid=*',
      'alice)(|(uid=*',
      '*)(|(objectClass=*',
      'alice)(userPassword=*',
      '\\',
      'alice\\',
      'alice\0',
      '\0',
      'alice)\0',
      '(uid=alice)',
      'x'.repeat(300),
    ];
    for (const login of attempts)
      for (const password of [alice.password, bob.password, 'guess'])
        expect(await ldap.t.directory.authenticate(login, password), JSON.stringify(login)).toEqual(
          {
            ok: false,
            reason: 'invalid',
          },
        );
    expect(ldap.t.logs.join('')).not.toMatch(/"level":50|directory unavailable/);
  });

  it('signs in the user whose DN has escaped characters, and compares DNs normalised', async () => {
    const byUid = await ldap.t.directory.authenticate('jsmith', jsmith.password);
    const byEmail = await ldap.t.directory.authenticate(jsmith.email, jsmith.password);
    expect(byUid.ok && byEmail.ok && byUid.user.id === byEmail.user.id).toBe(true);
    if (!byUid.ok) return;
    // OpenLDAP spells it with hex escapes; the seed wrote backslash escapes.
    expect(byUid.user.directory_dn).toContain('\\2C');
    expect(sameDn(byUid.user.directory_dn!, jsmith.dn)).toBe(true);
    expect(byUid.user.name).toBe(jsmith.cn);
    expect(byUid.user.roles).toEqual(['looper', 'staff']);
  });

  it('gives roles from mapped groups: direct, nested three levels deep, posixGroup memberUid, through a loop', async () => {
    const roles = async (login: string, password: string) => {
      const result = await ldap.t.directory.authenticate(login, password);
      return result.ok ? result.user.roles : result.reason;
    };
    expect(await roles('alice', alice.password)).toEqual(['admin', 'staff']);
    expect(await roles('bob', bob.password)).toEqual(['developer', 'staff']);
    expect(await roles('dave', dave.password)).toEqual(['admin']);
    expect(await roles('jsmith', jsmith.password)).toEqual(['looper', 'staff']);
  });

  it("OpenLDAP's trap: the in-chain rule succeeds with zero entries, so nesting is resolved by search", async () => {
    const { searchEntries } = await ldap.slapd.asAdmin((client) =>
      client.search(PEOPLE, { filter: `(memberOf:${IN_CHAIN_RULE}:=cn=admins,${GROUPS})` }),
    );
    expect(searchEntries).toEqual([]);
    const inspected = await ldap.t.directory.inspect('alice', alice.password);
    expect(inspected?.groups).toEqual(
      ['admins', 'platform', 'sre', 'staff'].map((g) => `cn=${g},ou=groups,dc=example,dc=test`),
    );
  });

  it('a ppolicy-locked account and a wrong password both fail with 49, and sign-in says invalid', async () => {
    const bindError = async (dn: string, password: string) => {
      const client = new Client({ url: ldap.slapd.url });
      try {
        await client.bind(dn, password);
        return undefined;
      } catch (err) {
        return err;
      } finally {
        await client.unbind();
      }
    };
    const locked = await bindError(carol.dn, carol.password);
    const wrong = await bindError(alice.dn, 'wrong');
    expect(locked).toBeInstanceOf(InvalidCredentialsError);
    expect(wrong).toBeInstanceOf(InvalidCredentialsError);
    expect((locked as InvalidCredentialsError).code).toBe(49);
    expect(await ldap.t.directory.authenticate('carol', carol.password)).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(await ldap.t.localUser(carol.email)).toBeUndefined();
  });

  it('says disabled, after a correct password, for a directory user an admin disabled here', async () => {
    const first = await ldap.t.directory.authenticate('bob', bob.password);
    expect(first.ok).toBe(true);
    await ldap.t.db('users').where({ email: bob.email }).update({ disabled: true });
    expect(await ldap.t.directory.authenticate('bob', bob.password)).toEqual({
      ok: false,
      reason: 'disabled',
    });
    expect(await ldap.t.directory.authenticate('bob', 'wrong')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    await ldap.t.db('users').where({ email: bob.email }).update({ disabled: false });
  });
});

describe('directory sign-in with a bind DN template and no service account', () => {
  const ldap = useSlapdDirectory({
    settings: {
      LDAP_BIND_DN: '',
      LDAP_BIND_PASSWORD: '',
      LDAP_BIND_TEMPLATE: `uid={login},${PEOPLE}`,
    },
  });

  it('binds as the user directly, reads its own entry and groups, and refuses DN injection', async () => {
    const result = await ldap.t.directory.authenticate('alice', alice.password);
    expect(result.ok && result.user.email).toBe(alice.email);
    expect(result.ok && result.user.roles).toEqual(['admin', 'staff']);
    for (const login of [`alice,${PEOPLE}`, 'alice+cn=x', 'cn=admin,dc=example,dc=test', '*'])
      expect(await ldap.t.directory.authenticate(login, alice.password)).toEqual({
        ok: false,
        reason: 'invalid',
      });
    await expect(ldap.t.directory.check()).resolves.toBeUndefined();
    await expect(ldap.t.directory.sync()).rejects.toThrow(/LDAP_BIND_DN/);
  });
});
