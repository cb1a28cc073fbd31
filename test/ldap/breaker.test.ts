import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  createDirectoryGuard,
  FAILURES_BEFORE_OPEN,
  PROBE_AFTER_MS,
} from '../../server/ldap/breaker.ts';
import { DirectoryUnavailableError } from '../../server/ldap/connection.ts';
import { createLogger } from '../../server/log.ts';

const BOUND = { connectTimeoutMs: 100, timeoutMs: 100 };
const refused = () =>
  Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));

describe('the guard of every directory call', () => {
  it('gives a call up past one connect and one operation timeout, but for a sync reading page after page', async () => {
    const guard = createDirectoryGuard(BOUND, createLogger('silent'));
    await expect(guard(() => sleep(400))).rejects.toThrow(
      /no answer from the directory within 200 ms/,
    );
    await expect(guard(() => sleep(400, 'read'), { unbounded: true })).resolves.toBe('read');
  });

  it('stops calling a failing directory, lets one probe through after a while, and nobody waits behind it', async () => {
    const guard = createDirectoryGuard(BOUND, createLogger('silent'));
    let calls = 0;
    const counted =
      <T>(work: () => Promise<T>) =>
      () => (calls++, work());
    for (let i = 0; i < FAILURES_BEFORE_OPEN; i++)
      await expect(guard(counted(refused))).rejects.toThrow();
    await expect(guard(counted(refused))).rejects.toThrow(DirectoryUnavailableError);
    expect(calls).toBe(FAILURES_BEFORE_OPEN);

    await sleep(PROBE_AFTER_MS + 50);
    const probe = guard(counted(() => sleep(150, 'back')));
    const started = Date.now();
    await expect(guard(counted(() => sleep(0, 'skipped')))).rejects.toThrow(/being probed/);
    expect(Date.now() - started).toBeLessThan(50);
    await expect(probe).resolves.toBe('back');
    expect(calls).toBe(FAILURES_BEFORE_OPEN + 1);
    await expect(guard(counted(() => sleep(0, 'closed')))).resolves.toBe('closed');
  });
});
