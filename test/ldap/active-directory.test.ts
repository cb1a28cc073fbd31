import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CHAIN_RULE } from '../../server/ldap/filters.ts';
import { startTestDirectory, type TestDirectory } from '../support/directory.ts';
import {
  AD_GROUPS,
  AD_PEOPLE,
  AD_SERVICE,
  AD_USERS,
  seedAd,
  setUserAccountControl,
  UAC_DISABLED,
  UAC_NORMAL,
} from '../support/samba-ad-seed.ts';
import { startSambaAd, type SambaAd } from '../support/samba-ad.ts';

const { alice, bob, carol, dave } = AD_USERS;
const INVALID = { ok: false, reason: 'invalid' };

describe('the Active Directory preset against a Samba AD domain controller', () => {
  let ad: SambaAd;
  let t: TestDirectory;
  beforeAll(async () => {
    ad = await startSambaAd();
    await ad.asAdmin(seedAd);
    t = await startTestDirectory({
      LDAP_URL: ad.ldapsUrl,
      LDAP_CA_FILE: ad.caFile,
      LDAP_PRESET: 'ad',
      LDAP_BIND_DN: AD_SERVICE.dn,
      LDAP_BIND_PASSWORD: AD_SERVICE.password,
      LDAP_USER_BASE: AD_PEOPLE,
      LDAP_GROUP_BASE: AD_GROUPS,
      LDAP_GROUP_ROLES: `CN=Admins,${AD_GROUPS}=admin;CN=Staff,${AD_GROUPS}=staff`,
      LDAP_SYNC_INTERVAL_SECONDS: '0',
    });
  }, 120_000);
  afterAll(async () => {
    await t?.cleanup();
    await ad?.cleanup();
  });

  const changeAd = (dn: string, uac: number) =>
    ad.asAdmin((admin) => setUserAccountControl(admin, dn, uac));

  it('signs in by sAMAccountName, userPrincipalName and mail as one account, its id the objectGUID', async () => {
    const results = await Promise.all(
      ['alice', alice.upn, alice.mail!].map((login) =>
        t.directory.authenticate(login, alice.password),
      ),
    );
    const ids = results.map((r) => (r.ok ? r.user.id : r.reason));
    expect(new Set(ids).size).toBe(1);
    const user = results[0]!.ok ? results[0]!.user : undefined;
    expect(user).toMatchObject({
      email: alice.mail,
      name: alice.cn,
      given_name: alice.givenName,
      family_name: alice.sn,
      roles: ['admin', 'staff'],
      source: 'ldap',
      password_hash: null,
    });
    // samba-tool prints the GUID as the DC itself formats it.
    const shown = ad.sambaTool(['user', 'show', 'alice', '--attributes=objectGUID']);
    expect(shown).toContain(`objectGUID: ${user?.directory_id}`);
  });

  it('resolves nested groups with the in-chain rule, which AD (unlike OpenLDAP) implements', async () => {
    const { searchEntries } = await ad.asAdmin((admin) =>
      admin.search(AD_PEOPLE, {
        filter: `(memberOf:${IN_CHAIN_RULE}:=CN=Admins,${AD_GROUPS})`,
        attributes: ['sAMAccountName'],
      }),
    );
    expect(searchEntries.map((e) => e.sAMAccountName).sort()).toEqual(['alice', 'dave']);
    const result = await t.directory.authenticate('dave', dave.password);
    // No mail: the userPrincipalName is the address.
    expect(result.ok && [result.user.email, result.user.roles]).toEqual([dave.upn, ['admin']]);
  });

  it('refuses a wrong password, an unknown login, an injection and a disabled account', async () => {
    expect(await t.directory.authenticate('alice', 'Wrong-Passw0rd!')).toEqual(INVALID);
    expect(await t.directory.authenticate('nobody', alice.password)).toEqual(INVALID);
    expect(await t.directory.authenticate('*', alice.password)).toEqual(INVALID);
    expect(await t.directory.authenticate('carol', carol.password)).toEqual(INVALID);
    expect(await t.localUser(carol.mail!)).toBeUndefined();
  });

  it('syncs: a dry run, then creates the enabled users; disabling one in AD disables it here', async () => {
    const dry = await t.directory.sync({ dryRun: true });
    expect(dry).toMatchObject({ mode: 'full', created: 1, updated: 0, disabled: 0, errors: 0 });
    expect(await t.localUser(bob.mail!)).toBeUndefined();
    expect(await t.directory.sync()).toMatchObject({ created: 1, disabled: 0, errors: 0 });
    expect(await t.localUser(bob.mail!)).toMatchObject({ roles: ['staff'], disabled: false });

    await changeAd(bob.dn, UAC_DISABLED);
    // The userAccountControl change bumps the entry's uSNChanged: an incremental run sees it.
    expect(await t.directory.sync()).toMatchObject({ mode: 'incremental', disabled: 1, errors: 0 });
    expect(await t.localUser(bob.mail!)).toMatchObject({
      disabled: true,
      directory_state: 'disabled',
    });
    expect(await t.directory.authenticate('bob', bob.password)).toEqual(INVALID);

    await changeAd(bob.dn, UAC_NORMAL);
    expect(await t.directory.sync()).toMatchObject({ mode: 'incremental', updated: 1 });
    expect((await t.directory.authenticate('bob', bob.password)).ok).toBe(true);
  });
});
