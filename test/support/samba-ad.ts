// A throwaway Active Directory domain controller: Samba provisioned into a temp folder
// (samba-tool domain provision --targetdir) and run as `samba -i -M single` inside a network
// namespace of its own, so its fixed ports (389, 636) never meet anything else on the machine.
// The test reaches it over a veth pair on a private /30. Needs root (ip netns).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ldapAdmin, type AdminWork } from './ldap-admin.ts';
import { createTestCa, issueServerCert } from './test-ca.ts';

export const AD_DOMAIN = 'DC=latchkey,DC=test';
export const AD_ADMIN = { upn: 'Administrator@latchkey.test', password: 'Adm1n-Passw0rd!' };

export type SambaAd = {
  /** ldaps://<address>:636 and the CA that signed its certificate. */
  ldapsUrl: string;
  caFile: string;
  /** Runs `work` with a client bound as Administrator, for building and changing the tree. */
  asAdmin: AdminWork;
  /** samba-tool run against the DC's own database (an independent view of what it stores). */
  sambaTool(args: string[]): string;
  cleanup(): Promise<void>;
};

const run = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { stdio: 'pipe', timeout: 120_000 }).toString();

async function reachable(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host, () => (socket.end(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Samba did not listen on ${host}:${port} within ${timeoutMs} ms`);
}

/** A namespace with one veth link to ours: 10.250.x.y/30, ours .1, theirs .2 (of the /30). */
function createNetwork(id: string) {
  const ns = `latchkey-ad-${id}`;
  const [outside, inside] = [`lkad${id}o`, `lkad${id}i`];
  const base = randomInt(0, 64) * 4;
  const subnet = `10.250.${randomInt(0, 256)}`;
  const [ours, theirs] = [`${subnet}.${base + 1}`, `${subnet}.${base + 2}`];
  run('ip', ['netns', 'add', ns]);
  try {
    run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside, 'netns', ns]);
    run('ip', ['addr', 'add', `${ours}/30`, 'dev', outside]);
    run('ip', ['link', 'set', outside, 'up']);
    const inNs = (args: string[]) => run('ip', ['netns', 'exec', ns, 'ip', ...args]);
    inNs(['addr', 'add', `${theirs}/30`, 'dev', inside]);
    inNs(['link', 'set', inside, 'up']);
    inNs(['link', 'set', 'lo', 'up']);
  } catch (err) {
    run('ip', ['netns', 'del', ns]);
    throw err;
  }
  return {
    ns,
    address: theirs,
    remove() {
      // Deleting the namespace deletes the veth pair with it.
      run('ip', ['netns', 'del', ns]);
    },
  };
}

/** Provisions and starts a domain controller for LATCHKEY.TEST; a few seconds, root only. */
export async function startSambaAd(): Promise<SambaAd> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-samba-'));
  const id = randomBytes(3).toString('hex');
  const network = createNetwork(id);
  let child: ChildProcess | undefined;
  try {
    const ca = createTestCa(dir, 'ad-test-ca');
    const cert = issueServerCert(ca, dir, 'dc', { ips: [network.address] });
    chmodSync(cert.keyFile, 0o600); // Samba refuses a TLS key others may read
    mkdirSync(join(dir, 'run'));
    const options = {
      interfaces: network.address,
      'bind interfaces only': 'yes',
      'server services': 'ldap',
      'pid directory': join(dir, 'run'),
      'log file': join(dir, 'log.%m'),
      'tls enabled': 'yes',
      'tls certfile': cert.certFile,
      'tls keyfile': cert.keyFile,
      'tls cafile': ca.certFile,
    };
    run('samba-tool', [
      'domain',
      'provision',
      '--realm=LATCHKEY.TEST',
      '--domain=LATCHKEY',
      `--adminpass=${AD_ADMIN.password}`,
      '--server-role=dc',
      '--dns-backend=NONE',
      `--host-name=dc${id}`,
      `--targetdir=${join(dir, 'dc')}`,
      ...Object.entries(options).map(([k, v]) => `--option=${k}=${v}`),
    ]);
    const conf = join(dir, 'dc', 'etc', 'smb.conf');
    child = spawn('ip', ['netns', 'exec', network.ns, 'samba', '-i', '-M', 'single', '-s', conf], {
      stdio: 'ignore',
    });
    await reachable(network.address, 636, 60_000);
    const ldapsUrl = `ldaps://${network.address}:636`;
    const stopped = child;
    return {
      ldapsUrl,
      caFile: ca.certFile,
      asAdmin: ldapAdmin(ldapsUrl, readFileSync(ca.certFile), {
        dn: AD_ADMIN.upn,
        password: AD_ADMIN.password,
      }),
      sambaTool: (args) => run('samba-tool', [...args, '-s', conf]),
      async cleanup() {
        await stopSamba(stopped, network.ns);
        network.remove();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child) await stopSamba(child, network.ns);
    network.remove();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** SIGTERM to every process in the namespace (samba and what it forked), then wait for `child`. */
async function stopSamba(child: ChildProcess, ns: string): Promise<void> {
  const exited =
    child.exitCode === null && child.signalCode === null
      ? new Promise((resolve) => child.once('exit', resolve))
      : Promise.resolve();
  for (const pid of run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean))
    try {
      process.kill(Number(pid), 'SIGTERM');
    } catch {
      // already gone
    }
  await exited;
}
