import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.ts';
import { directorySettings } from '../../server/ldap/presets.ts';
import { SECRETS } from '../support/directory.ts';

const BASE = {
  ...SECRETS,
  NODE_ENV: 'test',
  DATA_DIR: '/nonexistent',
  LDAP_URL: 'ldap://ldap.example.test',
  LDAP_USER_BASE: 'ou=people,dc=example,dc=test',
  LDAP_BIND_DN: 'cn=latchkey,dc=example,dc=test',
  LDAP_BIND_PASSWORD: 'service-secret',
};

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('loadConfig accepted it');
}

describe('LDAP configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-ldap-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is off without LDAP_URL, and takes the documented defaults with it', () => {
    expect(loadConfig({ ...SECRETS, DATA_DIR: dir }).ldap).toBeUndefined();
    expect(loadConfig(BASE).ldap).toMatchObject({
      preset: 'openldap',
      bind: { dn: BASE.LDAP_BIND_DN, password: 'service-secret' },
      startTls: false,
      connectTimeoutMs: 3000,
      timeoutMs: 5000,
      poolSize: 4,
      pageSize: 500,
      syncIntervalSeconds: 300,
      fullSyncIntervalSeconds: 3600,
      readinessRequired: false,
      emailVerified: true,
      groupRoles: {},
    });
  });

  it('reads the bind password and the CA from files', () => {
    writeFileSync(join(dir, 'password'), 'from-a-file\n');
    writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    const ldap = loadConfig({
      ...BASE,
      LDAP_BIND_PASSWORD: '',
      LDAP_BIND_PASSWORD_FILE: join(dir, 'password'),
      LDAP_CA_FILE: join(dir, 'ca.pem'),
    }).ldap!;
    expect(ldap.bind?.password).toBe('from-a-file');
    expect(ldap.ca).toContain('BEGIN CERTIFICATE');
  });

  it('parses group → role maps in both forms, DNs compared normalised', () => {
    const pairs = loadConfig({
      ...BASE,
      LDAP_GROUP_ROLES:
        'cn=admins,ou=groups,dc=example,dc=test=admin;CN=Admins, OU=Groups,DC=example,DC=test=owner',
    }).ldap!;
    expect(directorySettings(pairs).groupRoles).toEqual(
      new Map([['cn=admins,ou=groups,dc=example,dc=test', ['admin', 'owner']]]),
    );
    const json = loadConfig({
      ...BASE,
      LDAP_GROUP_ROLES: '{"cn=a\\\\;b,dc=t": ["x", "y"], "cn=c,dc=t": "z"}',
    }).ldap!;
    expect(json.groupRoles).toEqual({ 'cn=a\\;b,dc=t': ['x', 'y'], 'cn=c,dc=t': ['z'] });
  });

  it('applies the preset unless overridden', () => {
    const ad = directorySettings(
      loadConfig({ ...BASE, LDAP_PRESET: 'ad', LDAP_ATTR_EMAIL: 'mail' }).ldap!,
    );
    expect(ad).toMatchObject({
      nesting: 'in-chain',
      binaryId: true,
      loginAttributes: ['sAMAccountName', 'userPrincipalName', 'mail'],
      attributes: { id: 'objectGUID', email: ['mail'], modified: 'uSNChanged' },
    });
    expect(() =>
      directorySettings(loadConfig({ ...BASE, LDAP_USER_FILTER: '(uid=' }).ldap!),
    ).toThrow(/LDAP_USER_FILTER/);
  });

  it('names every missing or contradictory setting', () => {
    expect(
      problems({
        ...BASE,
        LDAP_URL: 'http://ldap.example.test',
        LDAP_USER_BASE: '',
        LDAP_BIND_PASSWORD: '',
        LDAP_GROUP_ROLES: 'cn=admins',
        LDAP_BIND_PASSWORD_FILE: join(dir, 'missing'),
      }),
    ).toEqual([
      'LDAP_URL: ldap://host[:port] or ldaps://host[:port]',
      'LDAP_USER_BASE: required with LDAP_URL',
      'LDAP_BIND_PASSWORD_FILE: cannot read ' + join(dir, 'missing') + ' (ENOENT)',
      'LDAP_BIND_PASSWORD: required with LDAP_BIND_DN (or LDAP_BIND_PASSWORD_FILE)',
      'LDAP_GROUP_ROLES: "<group DN>=<role>;..." or a JSON object (no role for "cn=admins")',
    ]);
    expect(problems({ ...BASE, LDAP_URL: 'ldaps://x', LDAP_STARTTLS: 'true' })).toEqual([
      'LDAP_STARTTLS: not with an ldaps:// URL, which is TLS already',
    ]);
    expect(problems({ ...BASE, LDAP_BIND_DN: '', LDAP_BIND_PASSWORD: '' })).toEqual([
      'LDAP_BIND_DN: required (or LDAP_BIND_TEMPLATE to bind users directly)',
      'LDAP_SYNC_INTERVAL_SECONDS: sync needs LDAP_BIND_DN (or set 0 to turn it off)',
    ]);
  });

  it('refuses passwords in the clear across a network in production', () => {
    const production = {
      ...BASE,
      NODE_ENV: 'production',
      ISSUER: 'https://id.example.test',
      SMTP_HOST: 'smtp.example.test',
      TRUST_PROXY: '10.0.0.5',
    };
    expect(problems(production)).toEqual([
      'LDAP_URL: production requires ldaps:// or LDAP_STARTTLS=true',
    ]);
    expect(loadConfig({ ...production, LDAP_STARTTLS: 'true' }).ldap?.startTls).toBe(true);
    expect(loadConfig({ ...production, LDAP_URL: 'ldaps://ldap.example.test' }).ldap).toBeDefined();
    expect(loadConfig({ ...production, LDAP_URL: 'ldap://127.0.0.1:389' }).ldap).toBeDefined();
  });
});
