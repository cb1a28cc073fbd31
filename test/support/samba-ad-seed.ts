// The organisation a test domain controller gets, written over LDAPS as Administrator. Nesting:
// alice is in SRE, SRE in Platform, Platform in Admins. Carol is disabled (userAccountControl
// ACCOUNTDISABLE). Dave has no mail: his email comes from his userPrincipalName.
import { Attribute, Change, type Client } from 'ldapts';
import { AD_DOMAIN } from './samba-ad.ts';

export const AD_PEOPLE = `OU=People,${AD_DOMAIN}`;
export const AD_GROUPS = `OU=Groups,${AD_DOMAIN}`;

/** userAccountControl: NORMAL_ACCOUNT, and with ACCOUNTDISABLE (MS-ADTS §2.2.16). */
export const UAC_NORMAL = 0x200;
export const UAC_DISABLED = 0x202;

export type AdUser = {
  sam: string;
  cn: string;
  dn: string;
  upn: string;
  mail?: string;
  givenName: string;
  sn: string;
  password: string;
  disabled?: boolean;
};

const user = (sam: string, givenName: string, sn: string, extra: Partial<AdUser> = {}): AdUser => ({
  sam,
  cn: `${givenName} ${sn}`,
  dn: `CN=${givenName} ${sn},${AD_PEOPLE}`,
  upn: `${sam}@latchkey.test`,
  mail: `${sam}@example.test`,
  givenName,
  sn,
  // The default domain policy wants length and three character classes.
  password: `${givenName}-Passw0rd!`,
  ...extra,
});

export const AD_USERS = {
  alice: user('alice', 'Alice', 'Liddell'),
  bob: user('bob', 'Bob', 'Builder'),
  carol: user('carol', 'Carol', 'Locked', { disabled: true }),
  dave: user('dave', 'Dave', 'Nested', { mail: undefined }),
};

export const AD_SERVICE = user('latchkey-svc', 'Latchkey', 'Service', {
  dn: `CN=Latchkey Service,CN=Users,${AD_DOMAIN}`,
  mail: undefined,
});

/** unicodePwd: the password in double quotes, UTF-16LE (MS-ADTS §3.1.1.3.1.5.1). */
const unicodePwd = (password: string) => Buffer.from(`"${password}"`, 'utf16le');

export async function addAdUser(admin: Client, u: AdUser): Promise<void> {
  const attributes: [string, string | Buffer][] = [
    ['objectClass', 'user'],
    ['sAMAccountName', u.sam],
    ['userPrincipalName', u.upn],
    ['givenName', u.givenName],
    ['sn', u.sn],
    ['displayName', u.cn],
    ...(u.mail ? ([['mail', u.mail]] as [string, string][]) : []),
    ['unicodePwd', unicodePwd(u.password)],
    ['userAccountControl', String(u.disabled ? UAC_DISABLED : UAC_NORMAL)],
  ];
  await admin.add(
    u.dn,
    attributes.map(
      ([type, value]) =>
        new Attribute({ type, values: typeof value === 'string' ? [value] : [value] }),
    ),
  );
}

export async function addAdGroup(admin: Client, name: string, members: string[]): Promise<string> {
  const dn = `CN=${name},${AD_GROUPS}`;
  await admin.add(dn, { objectClass: 'group', sAMAccountName: name, member: members });
  return dn;
}

export async function setUserAccountControl(admin: Client, dn: string, value: number) {
  await admin.modify(
    dn,
    new Change({
      operation: 'replace',
      modification: new Attribute({ type: 'userAccountControl', values: [String(value)] }),
    }),
  );
}

export async function seedAd(admin: Client): Promise<void> {
  for (const ou of [AD_PEOPLE, AD_GROUPS])
    await admin.add(ou, { objectClass: 'organizationalUnit' });
  await addAdUser(admin, AD_SERVICE);
  for (const u of Object.values(AD_USERS)) await addAdUser(admin, u);
  const { alice, bob, dave } = AD_USERS;
  await addAdGroup(admin, 'Staff', [alice.dn, bob.dn]);
  const sre = await addAdGroup(admin, 'SRE', [alice.dn]);
  const platform = await addAdGroup(admin, 'Platform', [sre, dave.dn]);
  await addAdGroup(admin, 'Admins', [platform]);
}
