import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAdvisoryLock } from '../../server/locks.ts';
import { apiCall, apiClient, documentChecker, type ApiAnswer } from '../support/admin-api.ts';
import { startTestServer, storageEnv, STORAGES } from '../support/server.ts';
import { startSlapd, type Slapd } from '../support/slapd.ts';

const PROBLEM = 'application/problem+json';

let slapd: Slapd;
beforeAll(async () => {
  slapd = await startSlapd();
});
afterAll(async () => {
  await slapd?.cleanup();
});

/** A server of `env` and a client allowed directory:sync, every answer checked against the document. */
async function apiOf(env: Record<string, string>) {
  const server = await startTestServer(env);
  const { body: document } = await apiCall(server, undefined, 'GET', '/openapi.json');
  const check = documentChecker(document);
  const job = await apiClient(server, ['directory:sync'], 'Directory job');
  const token = await job.token();
  const call = async (method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const answer = await apiCall(server, token, method, path, { body });
    check(method, path, answer);
    return answer;
  };
  return { server, job, call };
}

describe.each(STORAGES)('admin API directory sync against OpenLDAP (%s)', (storage) => {
  let api: Awaited<ReturnType<typeof apiOf>>;
  const ldapUsers = () => api.server.db('users').where({ source: 'ldap' });

  beforeAll(async () => {
    api = await apiOf({ ...(await storageEnv(storage)), ...slapd.env() });
  });
  afterAll(async () => {
    await api?.server.cleanup();
  });

  it('says the directory is configured and has not been synced yet', async () => {
    const res = await api.call('GET', '/directory');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      configured: true,
      canSync: true,
      lastFullSyncAt: null,
      lastRun: null,
    });
  });

  it('runs a dry run: reports what a sync would do, changes nothing, is not the last run', async () => {
    const res = await api.call('POST', '/directory/sync', { dryRun: true });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      mode: 'full',
      dryRun: true,
      created: 4,
      updated: 0,
      disabled: 0,
      errors: 0,
      problems: [],
      problemsOmitted: 0,
      changesOmitted: 0,
    });
    expect(res.body.changes.map((c: { action: string }) => c.action)).toEqual(
      Array(4).fill('create'),
    );
    expect(await ldapUsers()).toEqual([]);
    expect((await api.call('GET', '/directory')).body.lastRun).toBeNull();
  });

  it('runs a sync: the users are there, the report is the last run, audited as the client', async () => {
    const res = await api.call('POST', '/directory/sync', { dryRun: false });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ mode: 'full', dryRun: false, created: 4, errors: 0 });
    expect(await ldapUsers()).toHaveLength(4);

    const status = await api.call('GET', '/directory');
    expect(status.body.lastRun).toEqual({
      finishedAt: expect.any(String),
      outcome: 'success',
      mode: 'full',
      created: 4,
      updated: 0,
      disabled: 0,
      errors: 0,
      problems: [],
      error: null,
      by: { type: 'client', id: api.job.clientId },
    });
    expect(Date.parse(status.body.lastFullSyncAt)).toBeGreaterThan(Date.now() - 60_000);

    const events = await api.server
      .db('audit_events')
      .where({ type: 'directory_sync' })
      .orderBy('id');
    expect(events.map((e) => [e.actor_type, e.actor_id, e.outcome])).toEqual([
      ['client', api.job.clientId, 'success'],
      ['client', api.job.clientId, 'success'],
    ]);

    const again = await api.call('POST', '/directory/sync', { dryRun: false });
    expect(again.body).toMatchObject({ created: 0, updated: 0, disabled: 0, changes: [] });
  });

  it.each([
    ['no dryRun', {}],
    ['a string dryRun', { dryRun: 'false' }],
    ['an unknown field', { dryRun: true, full: false }],
  ])('refuses a sync request with %s (400 problem)', async (_label, body) => {
    const res = await api.call('POST', '/directory/sync', body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain(PROBLEM);
  });

  if (storage === 'postgres+redis')
    // PGlite is one process's database: no other process can hold the lock there.
    it('answers 409 while another process is syncing', async () => {
      const res = await withAdvisoryLock(api.server.db, 'ldap-sync', () =>
        api.call('POST', '/directory/sync', { dryRun: false }),
      );
      expect(res!.status).toBe(409);
      expect(res!.body.type).toBe('urn:latchkey:problem:conflict');
    });

  it('answers 503 when the directory does not answer, and the status keeps its error', async () => {
    await slapd.stop();
    try {
      const res = await api.call('POST', '/directory/sync', { dryRun: false });
      expect(res.status).toBe(503);
      expect(res.body.type).toBe('urn:latchkey:problem:temporarily-unavailable');
      const { lastRun } = (await api.call('GET', '/directory')).body;
      expect(lastRun).toMatchObject({ outcome: 'failure', mode: null, created: 0 });
      expect(lastRun.error).toEqual(expect.any(String));
      // A dry run that fails is not the last run either.
      await api.call('POST', '/directory/sync', { dryRun: true });
      expect((await api.call('GET', '/directory')).body.lastRun.finishedAt).toBe(
        lastRun.finishedAt,
      );
    } finally {
      await slapd.start();
    }
  });
});

describe('admin API directory without LDAP', () => {
  let api: Awaited<ReturnType<typeof apiOf>>;
  beforeAll(async () => {
    api = await apiOf(await storageEnv('embedded'));
  });
  afterAll(async () => {
    await api?.server.cleanup();
  });

  it('says no directory is configured, and refuses a sync with 409', async () => {
    const status = await api.call('GET', '/directory');
    expect(status.status).toBe(200);
    expect(status.body).toEqual({
      configured: false,
      canSync: false,
      lastFullSyncAt: null,
      lastRun: null,
    });
    const sync = await api.call('POST', '/directory/sync', { dryRun: true });
    expect(sync.status).toBe(409);
    expect(sync.body.type).toBe('urn:latchkey:problem:conflict');
    expect(sync.body.detail).toContain('LDAP_URL');
  });
});
