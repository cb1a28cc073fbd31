import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDb, openDb, startTime } from '../../server/db.ts';

describe('the embedded database has one owner process', () => {
  let other: ChildProcess;
  let dataDir: string;
  const open = () => openDb({ databaseUrl: undefined, dataDir, poolMax: 1 });
  const pidFile = () => join(dataDir, 'pglite.pid');

  beforeAll(() => {
    other = spawn('sleep', ['60']);
  });
  afterAll(() => {
    other?.kill();
  });

  it('refuses a folder whose owner is another live process, and names it', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'latchkey-owner-'));
    writeFileSync(pidFile(), `${other.pid} ${startTime(other.pid!)}`);
    await expect(open()).rejects.toThrow(`is in use by process ${other.pid}`);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('takes over a pid file whose pid now belongs to another process (a restart, a container)', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'latchkey-owner-'));
    // The same pid as a live process, but not the start time the owner had.
    writeFileSync(pidFile(), `${other.pid} 1`);
    const db = await open();
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${process.pid} ${startTime(process.pid)}`);
    await closeDb(db);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('takes over the pid file of a process that is gone', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'latchkey-owner-'));
    const gone = spawn('true');
    await new Promise((r) => gone.on('exit', r));
    writeFileSync(pidFile(), String(gone.pid));
    await closeDb(await open());
    rmSync(dataDir, { recursive: true, force: true });
  });
});
