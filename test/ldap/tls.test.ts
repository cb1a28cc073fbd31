import { describe, expect, it } from 'vitest';
import { useSlapdDirectory } from '../support/directory.ts';
import { SEEDED } from '../support/slapd.ts';

const { alice } = SEEDED;

describe('directory connections over TLS', () => {
  // This slapd refuses simple binds without TLS: a client that did not really upgrade fails.
  const ldap = useSlapdDirectory({ requireTls: true });

  const directory = async (env: Record<string, string>) => ldap.t.another(ldap.slapd.env(env));

  it('signs in over LDAPS when the configured CA signed the certificate', async () => {
    const d = await directory({ LDAP_URL: ldap.slapd.ldapsUrl, LDAP_CA_FILE: ldap.slapd.caFile });
    await expect(d.check()).resolves.toBeUndefined();
    const result = await d.authenticate('alice', alice.password);
    expect(result.ok && result.user.email).toBe(alice.email);
  });

  it('signs in over ldap:// upgraded with StartTLS', async () => {
    const d = await directory({ LDAP_STARTTLS: 'true', LDAP_CA_FILE: ldap.slapd.caFile });
    await expect(d.check()).resolves.toBeUndefined();
    const result = await d.authenticate('alice', alice.password);
    expect(result.ok && result.user.email).toBe(alice.email);
  });

  it('is refused in the clear by this server: the StartTLS success above was real TLS', async () => {
    const d = await directory({});
    await expect(d.check()).rejects.toMatchObject({ code: 13 });
    expect(await d.authenticate('alice', alice.password)).toEqual({
      ok: false,
      reason: 'unavailable',
    });
  });

  it('refuses a server whose certificate another CA signed, over LDAPS and StartTLS', async () => {
    const settings: Record<string, string>[] = [
      { LDAP_URL: ldap.slapd.ldapsUrl, LDAP_CA_FILE: ldap.slapd.wrongCaFile },
      { LDAP_STARTTLS: 'true', LDAP_CA_FILE: ldap.slapd.wrongCaFile },
      // Without a CA file the system's CAs are used, and none of them signed a test CA.
      { LDAP_URL: ldap.slapd.ldapsUrl },
    ];
    for (const env of settings) {
      const d = await directory(env);
      await expect(d.check(), JSON.stringify(env)).rejects.toMatchObject({
        code: expect.stringMatching(/CERT|SIGNATURE|ISSUER/),
      });
      expect(await d.authenticate('alice', alice.password)).toEqual({
        ok: false,
        reason: 'unavailable',
      });
    }
  });

  it('checks the name in the certificate: the right CA for another address is refused', async () => {
    const d = await directory({
      LDAP_URL: ldap.slapd.ldapsUrl.replace('127.0.0.1', '127.0.0.2'),
      LDAP_CA_FILE: ldap.slapd.caFile,
    });
    await expect(d.check()).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(await d.authenticate('alice', alice.password)).toEqual({
      ok: false,
      reason: 'unavailable',
    });
  });
});
