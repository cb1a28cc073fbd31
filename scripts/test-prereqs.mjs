// Makes sure the programs the test suite starts are on this machine: PostgreSQL's server
// binaries, redis-server and Chromium (driven by playwright-core for the page tests). As root with apt-get (CI, a fresh Debian machine) it installs
// them; elsewhere it says exactly what to install.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

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

if (missing.length) {
  if (process.getuid?.() === 0 && has('apt-get')) {
    console.log(`installing test prerequisites: ${missing.join(' ')}`);
    execSync('apt-get update -qq', { stdio: 'inherit' });
    execSync(`DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`, {
      stdio: 'inherit',
      shell: '/bin/sh',
    });
  } else {
    console.error(`The test suite starts its own servers and needs: ${missing.join(', ')}.`);
    console.error(`On Debian/Ubuntu: sudo apt-get install ${missing.join(' ')}`);
    process.exit(1);
  }
}
