import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './services.ts';
import { TEST_SECRETS } from './server.ts';

export type ChildServer = {
  url: string;
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
};

/**
 * Starts server/main.ts as a real separate process (Node 22 runs the TypeScript as is), on the
 * given storage, and waits until /readyz answers 200.
 */
export async function startChildServer(
  env: Record<string, string>,
  port?: number,
): Promise<ChildServer> {
  const listen = port ?? (await freePort());
  const url = `http://127.0.0.1:${listen}`;
  // As `npm start` runs it (package.json).
  const child = spawn(process.execPath, ['--experimental-async-context-frame', 'server/main.ts'], {
    env: {
      PATH: process.env.PATH,
      ...TEST_SECRETS,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(listen),
      ISSUER: url,
      LOG_LEVEL: 'warn',
      ADMIN_PASSWORD: 'admin-password-for-tests',
      DEMO_CLIENT: 'false',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`server exited with ${child.exitCode}:\n${output}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready in 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
