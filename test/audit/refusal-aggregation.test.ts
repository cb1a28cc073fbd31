import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit, signInEvent } from '../../server/audit/audit.ts';
import { exportAuditEvents, type AuditRecord } from '../../server/audit/export.ts';
import { archiveAuditEvents } from '../../server/audit/retention.ts';
import { createLogger } from '../../server/log.ts';
import { Browser } from '../support/browser.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import {
  STORAGES,
  startTestServer,
  storageEnv,
  type Storage,
  type TestServer,
} from '../support/server.ts';

const USER = { email: 'counted@example.test', password: 'the password that works' };
const GHOST = 'ghost@example.test';
const REFUSALS = 200;
// Each request sends a user agent as long as the header allows us to keep.
const LONG_AGENT = `Mozilla/5.0 ${'x'.repeat(2000)}`;

const parseLines = (text: string): AuditRecord[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditRecord);

describe.each(STORAGES)('repeated refused sign-ins on %s storage', (storage: Storage) => {
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer(await storageEnv(storage));
    await server.users.create({ ...USER, emailVerified: true });
    const client = await server.clients.create({ name: 'Counted', redirectUris: [REDIRECT_URI] });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  const signInRows = () =>
    server.db('audit_events').where({ type: 'sign_in' }).orderBy('id') as Promise<
      Array<{ outcome: string; user_agent: string | null; count: number; detail: object }>
    >;

  it('200 refusals from one IP for one unknown email make a few rows carrying the count; a success is its own row', async () => {
    const refuse = () =>
      expect(
        signIn(rp, new Browser({ userAgent: LONG_AGENT }), server.url, {
          email: GHOST,
          password: 'not anybody’s password',
        }),
      ).rejects.toThrow();
    // First, while the IP's sign-in limit still lets the owner in.
    await signIn(rp, new Browser(), server.url, USER);
    // In waves of ten at once: events that arrive together are written together.
    for (let i = 0; i < REFUSALS; i += 10) await Promise.all(Array.from({ length: 10 }, refuse));

    const rows = await signInRows();
    const failures = rows.filter((r) => r.outcome === 'failure');
    // unknown_email, then rate_limited once the account limit is reached; a window may end
    // during the test and start new rows: at most twice as many.
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures.length).toBeLessThanOrEqual(4);
    expect(failures.reduce((sum, r) => sum + Number(r.count), 0)).toBe(REFUSALS);
    for (const row of failures) expect(row.user_agent!.length).toBeLessThanOrEqual(512);
    const successes = rows.filter((r) => r.outcome === 'success');
    expect(successes).toHaveLength(1);
    expect(Number(successes[0]!.count)).toBe(1);

    // The export shows how many refusals each line stands for and when the last one was.
    let out = '';
    const sink = new Writable({ write: (chunk, _enc, done) => ((out += chunk), done()) });
    await exportAuditEvents(server.db, {}, sink);
    const exported = parseLines(out).filter((l) => l.type === 'sign_in');
    const refused = exported.filter((l) => l.outcome === 'failure');
    expect(refused.reduce((sum, l) => sum + l.count!, 0)).toBe(REFUSALS);
    for (const line of refused) {
      expect(line.detail).toMatchObject({ email: 'gh***@example.test' });
      expect(line.last_at! >= line.at).toBe(true);
    }
    const success = exported.find((l) => l.outcome === 'success')!;
    expect(success.count).toBeUndefined();
    expect(success.last_at).toBeUndefined();

    // Retention archives the rows with their counts.
    const archiveDir = mkdtempSync(join(tmpdir(), 'latchkey-aggregate-archive-'));
    try {
      const later = new Date(Date.now() + 3 * 86_400_000);
      const summary = await archiveAuditEvents(server.db, { days: 1, archiveDir }, { now: later });
      const archived = summary!.files.flatMap((file) =>
        parseLines(gunzipSync(readFileSync(file)).toString('utf8')),
      );
      const archivedRefusals = archived.filter((l) => l.type === 'sign_in' && l.count);
      expect(archivedRefusals.reduce((sum, l) => sum + l.count!, 0)).toBe(REFUSALS);
      expect(await server.db('audit_events').where({ type: 'sign_in' })).toEqual([]);
    } finally {
      rmSync(archiveDir, { recursive: true, force: true });
    }
  });

  it('counts only alike refusals: another IP, account or reason is its own row; successes never', async () => {
    const audit = createAudit(server.db, createLogger('silent'), { failureWindowSeconds: 900 });
    const from = (ip: string) => ({ ip, userAgent: 'agent', requestId: `req-${ip}` });
    const refused = (user: string | undefined, reason: string, email?: string) =>
      signInEvent('failure', user, { reason, client: 'c', ...(email && { email }) });
    await Promise.all([
      // One sender, made-up emails: one row (the first email kept), three counted.
      audit(refused(undefined, 'probe', 'a***@one.test'), from('192.0.2.1')),
      audit(refused(undefined, 'probe', 'b***@two.test'), from('192.0.2.1')),
      audit(refused(undefined, 'probe', 'c***@three.test'), from('192.0.2.1')),
      audit(refused(undefined, 'probe'), from('192.0.2.2')),
      audit(refused('user-1', 'probe'), from('192.0.2.1')),
      audit(refused('user-1', 'other_probe'), from('192.0.2.1')),
      audit(signInEvent('success', 'user-1', { method: 'probe' }), from('192.0.2.1')),
      audit(signInEvent('success', 'user-1', { method: 'probe' }), from('192.0.2.1')),
    ]);
    await audit(refused(undefined, 'probe', 'd***@four.test'), from('192.0.2.1'));
    const rows = await server
      .db('audit_events')
      .whereRaw("detail->>'reason' in ('probe', 'other_probe') or detail->>'method' = 'probe'");
    // Per kind: how many rows and how many events (a window ending mid-test may split a row).
    const seen = new Map<string, { rows: number; events: number }>();
    for (const r of rows) {
      const label = [r.outcome, r.subject, r.ip, r.detail.reason ?? ''].join(' ');
      const now = seen.get(label) ?? { rows: 0, events: 0 };
      seen.set(label, { rows: now.rows + 1, events: now.events + Number(r.count) });
    }
    const events = Object.fromEntries([...seen].map(([label, n]) => [label, n.events]));
    expect(events).toEqual({
      'failure  192.0.2.1 probe': 4,
      'failure  192.0.2.2 probe': 1,
      'failure user-1 192.0.2.1 other_probe': 1,
      'failure user-1 192.0.2.1 probe': 1,
      'success user-1 192.0.2.1 ': 2,
    });
    expect(seen.get('failure  192.0.2.1 probe')!.rows).toBeLessThanOrEqual(2);
    expect(seen.get('success user-1 192.0.2.1 ')!.rows).toBe(2);
    const counted = rows.find((r) => r.detail.email === 'a***@one.test');
    expect(Number(counted.count)).toBeGreaterThanOrEqual(3);
    expect(counted).toMatchObject({
      request_id: 'req-192.0.2.1',
      detail: { email: 'a***@one.test' },
    });
  });
});
