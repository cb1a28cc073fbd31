import { EqualityFilter } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { escapeDnValue, normaliseDn, parseDn, sameDn } from '../../server/ldap/dn.ts';
import { guidToUuid } from '../../server/ldap/entries.ts';
import { escapeFilterValue, matchingAny } from '../../server/ldap/filters.ts';

describe('RFC 4515 filter values', () => {
  it('escapes the characters that would change a filter, and NUL', () => {
    expect(escapeFilterValue('*')).toBe('\\2a');
    expect(escapeFilterValue(')(uid=*')).toBe('\\29\\28uid=\\2a');
    expect(escapeFilterValue('\\')).toBe('\\5c');
    expect(escapeFilterValue('a\0b')).toBe('a\\00b');
    expect(escapeFilterValue('zoë')).toBe('zoë');
  });

  it('builds login filters from filter objects: the login is one assertion value', () => {
    const base = new EqualityFilter({ attribute: 'objectClass', value: 'inetOrgPerson' });
    expect(matchingAny(base, ['uid', 'mail'], '*)(uid=*').toString()).toBe(
      '(&(objectClass=inetOrgPerson)(|(uid=\\2a\\29\\28uid=\\2a)(mail=\\2a\\29\\28uid=\\2a)))',
    );
  });
});

describe('RFC 4514 distinguished names', () => {
  it('parses hex and backslash escapes, multi-valued RDNs and UTF-8', () => {
    expect(parseDn('cn=Smith\\2C John+uid=js,ou=People , dc=example')).toEqual([
      [
        { type: 'cn', value: 'Smith, John' },
        { type: 'uid', value: 'js' },
      ],
      [{ type: 'ou', value: 'People' }],
      [{ type: 'dc', value: 'example' }],
    ]);
    expect(parseDn('cn=Zo\\C3\\AB')[0]![0]!.value).toBe('Zoë');
    expect(parseDn('cn=\\ leading and trailing\\ ')[0]![0]!.value).toBe(' leading and trailing ');
  });

  it('normalises the spellings OpenLDAP, AD and people use to one', () => {
    const spellings = [
      'cn=Smith\\, John (Q\\+A) \\5C \\22JJ\\22,ou=people,dc=example,dc=test',
      'cn=Smith\\2C John (Q\\2BA) \\5C \\22JJ\\22,ou=people,dc=example,dc=test',
      'CN=smith\\, john (q\\+a) \\\\ \\"jj\\",OU=People, DC=Example,DC=Test',
    ];
    for (const dn of spellings) expect(sameDn(dn, spellings[0]!), dn).toBe(true);
    expect(normaliseDn(spellings[1]!)).toBe(
      'cn=smith\\, john (q\\+a) \\\\ \\"jj\\",ou=people,dc=example,dc=test',
    );
    expect(
      sameDn('uid=alice,ou=people,dc=example,dc=test', 'uid=alice2,ou=people,dc=example,dc=test'),
    ).toBe(false);
  });

  it('escapes a value for a DN so it cannot add RDNs or change the type', () => {
    expect(escapeDnValue('alice,ou=admins')).toBe('alice\\,ou\\=admins');
    expect(escapeDnValue('a+cn=b')).toBe('a\\+cn\\=b');
    expect(escapeDnValue('#x ')).toBe('\\#x\\ ');
    expect(escapeDnValue(' x\0')).toBe('\\ x\\00');
    expect(parseDn(`uid=${escapeDnValue('alice,ou=admins+cn=x')},dc=t`)).toHaveLength(2);
  });

  it('refuses malformed DNs', () => {
    for (const dn of ['cn', 'cn=a,', '=a', 'cn=a\\'])
      expect(() => parseDn(dn), dn).toThrow(/invalid DN/);
  });
});

describe('objectGUID', () => {
  it('reads the 16 bytes as AD shows them: first three fields little-endian', () => {
    // The example of MS-ADTS / the objectGUID attribute page.
    const bytes = Buffer.from('ff19966f868b11d0b42d00c04fc964ff', 'hex');
    expect(guidToUuid(bytes)).toBe('6f9619ff-8b86-d011-b42d-00c04fc964ff');
    expect(() => guidToUuid(Buffer.alloc(15))).toThrow(/15 bytes/);
  });
});
