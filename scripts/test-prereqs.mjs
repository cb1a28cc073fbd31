// Makes sure the programs the test suite starts are on this machine: PostgreSQL's server
// binaries, redis-server, slapd, Samba, Prometheus and Chromium (driven by playwright-core for the page tests). As root with apt-get (CI, a fresh Debian machine) it installs
// them; elsewhere it says exactly what to install.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';

const has = (cmd) => {
  try {
    execSync(`command -v ${cmd}`, { stdio: 'ignore', shell: '/bin/sh' });
    return true;
  } catch {
    return false;
  }
};
const hasPostgres = () =>
  existsSync('/usr/lib/postgresql') &&
  readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));

const missing = [];
if (!hasPostgres()) missing.push('postgresql');
if (!has('redis-server')) missing.push('redis-server');
if (!existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium')) missing.push('chromium');
// The directory tests start their own OpenLDAP (slapd, slapadd) and Samba AD domain controller.
if (!existsSync('/usr/sbin/slapd')) missing.push('slapd');
if (!has('ldapsearch')) missing.push('ldap-utils');
// The metrics tests scrape with a real Prometheus and check the alert rules with promtool.
if (!has('prometheus') || !has('promtool')) missing.push('prometheus');
// The Samba DC runs in a network namespace of the test's own (ip netns), off the host's 389/636.
if (!has('ip')) missing.push('iproute2');
// Named one by one: apt may be set not to install the AD pieces samba only recommends.
if (!existsSync('/usr/sbin/samba') || !existsSync('/usr/share/samba/setup/provision.ldif'))
  missing.push('samba', 'samba-dsdb-modules', 'samba-ad-provision');

if (missing.length) {
  if (process.getuid?.() === 0 && has('apt-get')) {
    console.log(`installing test prerequisites: ${missing.join(' ')}`);
    execSync('apt-get update -qq', { stdio: 'inherit' });
    // The tests start their own servers: packages must not start system ones (a slapd on 389,
    // samba, postgresql). policy-rc.d answering 101 tells Debian's scripts not to start any.
    const policy = '/usr/sbin/policy-rc.d';
    const ours = !existsSync(policy);
    if (ours) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    try {
      execSync(`DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`, {
        stdio: 'inherit',
        shell: '/bin/sh',
      });
    } finally {
      if (ours) rmSync(policy, { force: true });
    }
  } else {
    console.error(`The test suite starts its own servers and needs: ${missing.join(', ')}.`);
    console.error(`On Debian/Ubuntu: sudo apt-get install ${missing.join(' ')}`);
    process.exit(1);
  }
}
