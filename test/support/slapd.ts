// A throwaway OpenLDAP server: its own cn=config (slapadd -n0), an mdb database seeded with a
// small organisation, plain LDAP (with StartTLS) and LDAPS listeners on free loopback ports, a
// test CA made by openssl. Everything lives in one temp folder, removed by cleanup().
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ldapAdmin, type AdminWork } from './ldap-admin.ts';
import { freePort, waitForPort, stopChild } from './services.ts';
import { createTestCa, issueServerCert } from './test-ca.ts';
import { BASE_DN, GROUPS, PEOPLE, SERVICE, seedLdif } from './slapd-seed.ts';

export { BASE_DN, GROUPS, PEOPLE, SERVICE, SEEDED } from './slapd-seed.ts';
export const ADMIN = { dn: `cn=admin,${BASE_DN}`, password: 'slapd-root-secret' };

export type Slapd = {
  /**
   * ldap://127.0.0.1:<port> (StartTLS offered) and ldaps://127.0.0.1:<port>, also served on
   * 127.0.0.2, which the certificate (IP 127.0.0.1 only) does not name.
   */
  url: string;
  ldapsUrl: string;
  /** The CA that signed the server's certificate, and one that did not. */
  caFile: string;
  wrongCaFile: string;
  /** LDAP_* settings for Latchkey against this server (OpenLDAP preset, service account). */
  env(overrides?: Record<string, string>): Record<string, string>;
  /** Runs `work` with a client bound as the root DN, for changing the tree during a test. */
  asAdmin: AdminWork;
  stop(): Promise<void>;
  start(): Promise<void>;
  /**
   * Freezes the server (SIGSTOP): the kernel still accepts connections for it, nothing answers
   * on them. `resume` (SIGCONT) lets it carry on with what it was sent meanwhile.
   */
  hang(): void;
  resume(): void;
  cleanup(): Promise<void>;
};

/** The modules Debian's slapd ships in /usr/lib/ldap; ppolicy gives pwdAccountLockedTime. */
function configLdif(
  dir: string,
  tls: { ca: string; cert: string; key: string },
  requireTls: boolean,
  maxSizeMiB: number,
): string {
  return `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${join(dir, 'slapd.pid')}
${requireTls ? 'olcSecurity: simple_bind=128\n' : ''}olcTLSCACertificateFile: ${tls.ca}
olcTLSCertificateFile: ${tls.cert}
olcTLSCertificateKeyFile: ${tls.key}

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 500

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${BASE_DN}
olcRootDN: ${ADMIN.dn}
olcRootPW: ${ADMIN.password}
olcDbDirectory: ${join(dir, 'db')}
olcDbMaxSize: ${maxSizeMiB * 1024 * 1024}
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,mail,member,memberUid eq
olcDbIndex: entryUUID eq
olcLimits: dn.exact="${SERVICE.dn}" size.prtotal=unlimited
olcAccess: {0}to attrs=userPassword by anonymous auth by * none
olcAccess: {1}to dn.subtree="${GROUPS}" by users read by * none
olcAccess: {2}to * by dn.exact="${SERVICE.dn}" read by self read by * none

dn: olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {0}ppolicy
olcPPolicyDefault: cn=default,ou=policies,${BASE_DN}
`;
}

/**
 * Starts one. With `requireTls`, simple binds over a connection without TLS are refused
 * (confidentialityRequired), which proves a StartTLS client really upgraded. `moreLdif` (a file)
 * is loaded after the seed, before the server starts (the scale benchmark's generated people);
 * `maxSizeMiB` bounds the database.
 */
export async function startSlapd({
  requireTls = false,
  moreLdif = undefined as string | undefined,
  maxSizeMiB = 64,
} = {}): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-slapd-'));
  mkdirSync(join(dir, 'config'));
  mkdirSync(join(dir, 'db'));
  const ca = createTestCa(dir, 'test-ca');
  const wrongCa = createTestCa(dir, 'wrong-ca');
  const server = issueServerCert(ca, dir, 'slapd', { ips: ['127.0.0.1'] });
  writeFileSync(
    join(dir, 'config.ldif'),
    configLdif(
      dir,
      { ca: ca.certFile, cert: server.certFile, key: server.keyFile },
      requireTls,
      maxSizeMiB,
    ),
  );
  writeFileSync(join(dir, 'seed.ldif'), seedLdif());
  const slapadd = (args: string[]) =>
    execFileSync('slapadd', [...args, '-F', join(dir, 'config')], { stdio: 'pipe' });
  slapadd(['-n0', '-l', join(dir, 'config.ldif')]);
  slapadd(['-n1', '-l', join(dir, 'seed.ldif')]);
  // -q: no consistency checks, for speed (the file is generated).
  if (moreLdif) slapadd(['-q', '-n1', '-l', moreLdif]);

  const [port, ldapsPort] = [await freePort(), await freePort()];
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${ldapsPort}`;
  let child: ChildProcess | undefined;

  async function start() {
    // -d 0: stay in the foreground (a child we can stop), logging nothing. LDAPS also on
    // 127.0.0.2, a name the certificate does not carry.
    const listeners = [url, ldapsUrl, ldapsUrl.replace('127.0.0.1', '127.0.0.2')];
    child = spawn(
      'slapd',
      ['-F', join(dir, 'config'), '-h', listeners.map((l) => `${l}/`).join(' '), '-d', '0'],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
    await waitForPort(ldapsPort);
  }
  async function stop() {
    child?.kill('SIGCONT'); // a frozen process would not act on SIGTERM
    if (child) await stopChild(child);
    child = undefined;
  }
  await start();

  return {
    url,
    ldapsUrl,
    caFile: ca.certFile,
    wrongCaFile: wrongCa.certFile,
    env: (overrides = {}) => ({
      LDAP_URL: url,
      LDAP_PRESET: 'openldap',
      LDAP_BIND_DN: SERVICE.dn,
      LDAP_BIND_PASSWORD: SERVICE.password,
      LDAP_USER_BASE: PEOPLE,
      LDAP_GROUP_BASE: GROUPS,
      LDAP_GROUP_ROLES: [
        `cn=staff,${GROUPS}=staff`,
        `cn=admins,${GROUPS}=admin`,
        `cn=developers,${GROUPS}=developer`,
        `cn=loop-a,${GROUPS}=looper`,
      ].join(';'),
      LDAP_SYNC_INTERVAL_SECONDS: '0',
      LDAP_CONNECT_TIMEOUT_MS: '1000',
      LDAP_TIMEOUT_MS: '2000',
      ...overrides,
    }),
    asAdmin: ldapAdmin(ldapsUrl, readFileSync(ca.certFile), ADMIN),
    start,
    stop,
    hang: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async cleanup() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
