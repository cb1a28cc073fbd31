// The organisation a test slapd starts with. Nesting: alice is in sre, sre in platform,
// platform in admins, so alice is an admin three levels down; loop-a and loop-b contain each
// other. Carol is disabled the OpenLDAP way this project uses: ppolicy's administrator lock
// (pwdAccountLockedTime: 000001010000Z), which also makes her binds fail with 49.

export const BASE_DN = 'dc=example,dc=test';
export const PEOPLE = `ou=people,${BASE_DN}`;
export const GROUPS = `ou=groups,${BASE_DN}`;
export const SERVICE = { dn: `cn=latchkey,ou=services,${BASE_DN}`, password: 'service-secret' };

export type SeededUser = {
  uid: string;
  dn: string;
  email: string;
  password: string;
  cn: string;
  givenName?: string;
  sn: string;
};

/** The value of John Smith's cn: a comma, a plus, a backslash and quotes, all to be escaped. */
export const AWKWARD_CN = 'Smith, John (Q+A) \\ "JJ"';

export const SEEDED = {
  alice: {
    uid: 'alice',
    dn: `uid=alice,${PEOPLE}`,
    email: 'alice@example.test',
    password: 'alice-directory-password',
    cn: 'Alice Liddell',
    givenName: 'Alice',
    sn: 'Liddell',
  },
  bob: {
    uid: 'bob',
    dn: `uid=bob,${PEOPLE}`,
    email: 'bob@example.test',
    password: 'bob-directory-password',
    cn: 'Bob Builder',
    givenName: 'Bob',
    sn: 'Builder',
  },
  carol: {
    uid: 'carol',
    dn: `uid=carol,${PEOPLE}`,
    email: 'carol@example.test',
    password: 'carol-directory-password',
    cn: 'Carol Locked',
    sn: 'Locked',
  },
  dave: {
    uid: 'dave',
    dn: `uid=dave,${PEOPLE}`,
    email: 'dave@example.test',
    password: 'dave-directory-password',
    cn: 'Dave Nested',
    sn: 'Nested',
  },
  jsmith: {
    uid: 'jsmith',
    // As written in the seed; OpenLDAP answers with \2C, \2B, \5C and \22 escapes.
    dn: `cn=Smith\\, John (Q\\+A) \\5C \\22JJ\\22,${PEOPLE}`,
    email: 'jsmith@example.test',
    password: 'john-directory-password',
    cn: AWKWARD_CN,
    givenName: 'John',
    sn: 'Smith',
  },
} satisfies Record<string, SeededUser>;

/** LDIF for one inetOrgPerson. */
function personLdif(user: SeededUser, extra: string[] = []): string {
  return [
    `dn: ${user.dn}`,
    'objectClass: inetOrgPerson',
    `uid: ${user.uid}`,
    `cn: ${user.cn}`,
    `sn: ${user.sn}`,
    ...(user.givenName ? [`givenName: ${user.givenName}`] : []),
    `mail: ${user.email}`,
    `userPassword: ${user.password}`,
    ...extra,
  ].join('\n');
}

const group = (cn: string, members: string[]) =>
  [
    `dn: cn=${cn},${GROUPS}`,
    'objectClass: groupOfNames',
    `cn: ${cn}`,
    ...members.map((m) => `member: ${m}`),
  ].join('\n');

export function seedLdif(): string {
  const { alice, bob, carol, dave, jsmith } = SEEDED;
  return [
    `dn: ${BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example`,
    ...['people', 'groups', 'services', 'policies'].map(
      (ou) => `dn: ou=${ou},${BASE_DN}\nobjectClass: organizationalUnit\nou: ${ou}`,
    ),
    [
      `dn: ${SERVICE.dn}`,
      'objectClass: organizationalRole',
      'objectClass: simpleSecurityObject',
      'cn: latchkey',
      `userPassword: ${SERVICE.password}`,
    ].join('\n'),
    // pwdMaxFailure 0: failed binds in tests never lock anyone by themselves.
    [
      `dn: cn=default,ou=policies,${BASE_DN}`,
      'objectClass: person',
      'objectClass: pwdPolicy',
      'cn: default',
      'sn: default',
      'pwdAttribute: userPassword',
      'pwdLockout: TRUE',
      'pwdMaxFailure: 0',
    ].join('\n'),
    personLdif(alice),
    personLdif(bob),
    personLdif(carol, ['pwdAccountLockedTime: 000001010000Z']),
    personLdif(dave),
    personLdif(jsmith),
    group('staff', [alice.dn, bob.dn, jsmith.dn]),
    group('sre', [alice.dn]),
    group('platform', [`cn=sre,${GROUPS}`, dave.dn]),
    group('admins', [`cn=platform,${GROUPS}`]),
    group('loop-a', [`cn=loop-b,${GROUPS}`, jsmith.dn]),
    group('loop-b', [`cn=loop-a,${GROUPS}`]),
    [
      `dn: cn=developers,${GROUPS}`,
      'objectClass: posixGroup',
      'cn: developers',
      'gidNumber: 5000',
      `memberUid: ${bob.uid}`,
    ].join('\n'),
  ].join('\n\n');
}
