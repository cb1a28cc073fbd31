import { request } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportAuditEvents, type AuditRecord } from '../../server/audit/export.ts';
import { apiCall, apiClient, documentChecker, type Json } from '../support/admin-api.ts';
import { runCli } from '../support/cli.ts';
import { startTestServer, storageEnv, STORAGES, type TestServer } from '../support/server.ts';

const parseLines = (text: string): AuditRecord[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditRecord);

// The seeded rows live in 2020, the bulk rows in 2018: what the server writes meanwhile (its
// own calls, now) stays out of every range these tests read.
const IN_2020 = 'since=2020-01-01&until=2021-01-01';
const SEEDED = [
  // type, at, actor type, actor id, subject, outcome
  ['sign_in', '2020-01-10T08:30:00.250000Z', 'user', 'u-ada', 'u-ada', 'success'],
  ['sign_in', '2020-01-11T09:00:00.000000Z', 'user', null, null, 'failure'],
  ['client_created', '2020-02-01T00:00:00.000000Z', 'admin', 'root', 'client-x', 'success'],
  ['token_issued', '2020-03-01T00:00:00.000000Z', 'user', 'u-ada', 'client-x', 'success'],
  // Two rows at the same instant: pages must neither skip nor repeat one of them.
  ['password_changed', '2020-04-01T00:00:00.000000Z', 'user', 'u-bob', 'u-bob', 'success'],
  ['mfa_enabled', '2020-04-01T00:00:00.000000Z', 'user', 'u-bob', 'u-bob', 'success'],
  ['user_deleted', '2020-05-01T00:00:00.000000Z', 'client', 'job-1', 'u-cy', 'success'],
] as const;

describe.each(STORAGES)('admin API audit trail (%s)', (storage) => {
  let server: TestServer;
  let token: string;
  let check: ReturnType<typeof documentChecker>;

  const get = async (path: string) => {
    const answer = await apiCall(server, token, 'GET', path);
    check('GET', '/audit', answer);
    return answer;
  };
  /** Every page of a query, following `next`. */
  async function allPages(query: string, limit: number) {
    const items: Json[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(
        `/audit?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(limit);
      items.push(...res.body.items);
      cursor = res.body.next;
      pages++;
    } while (cursor && pages < 20);
    return { items, pages };
  }
  /** A download of the export, read as it arrives. */
  const download = (query: string) =>
    fetch(`${server.url}/api/v1/audit/export?${query}`, {
      headers: { authorization: `Bearer ${token}` },
    });

  beforeAll(async () => {
    server = await startTestServer({ ...(await storageEnv(storage)), RATE_LIMIT_ADMIN_API: 'off' });
    const { body: document } = await apiCall(server, undefined, 'GET', '/openapi.json');
    check = documentChecker(document);
    token = await (await apiClient(server, ['audit:read'])).token();
    await server.db('audit_events').insert(
      SEEDED.map(([type, at, actorType, actor, subject, outcome]) => ({
        type,
        at,
        outcome,
        actor_type: actorType,
        actor_id: actor,
        subject,
        ip: '192.0.2.7',
        user_agent: 'test agent',
        request_id: `req-${type}`,
        detail: JSON.stringify({ seeded: type }),
      })),
    );
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('lists the rows of a time range newest first, each as the CLI export shows it', async () => {
    const res = await get(`/audit?${IN_2020}`);
    expect(res.status).toBe(200);
    expect(res.body.next).toBeNull();
    expect(res.body.items.map((r: AuditRecord) => r.type)).toEqual([
      'user_deleted',
      'mfa_enabled',
      'password_changed',
      'token_issued',
      'client_created',
      'sign_in',
      'sign_in',
    ]);
    expect(res.body.items.at(-1)).toEqual({
      id: expect.any(Number),
      at: '2020-01-10T08:30:00.250000Z',
      type: 'sign_in',
      outcome: 'success',
      actor_type: 'user',
      actor_id: 'u-ada',
      subject: 'u-ada',
      ip: '192.0.2.7',
      user_agent: 'test agent',
      request_id: 'req-sign_in',
      detail: { seeded: 'sign_in' },
    });
    // since is inclusive, until exclusive; a date alone is its midnight UTC.
    const march = await get('/audit?since=2020-03-01T00:00:00Z&until=2020-04-01');
    expect(march.body.items.map((r: AuditRecord) => r.type)).toEqual(['token_issued']);
  });

  it('filters by several types, by actor, by subject and by outcome', async () => {
    const types = (res: Json) => res.body.items.map((r: AuditRecord) => r.type);
    expect(types(await get(`/audit?${IN_2020}&type=sign_in,client_created`))).toEqual([
      'client_created',
      'sign_in',
      'sign_in',
    ]);
    expect(types(await get(`/audit?${IN_2020}&actor=u-ada`))).toEqual(['token_issued', 'sign_in']);
    expect(types(await get(`/audit?${IN_2020}&subject=client-x`))).toEqual([
      'token_issued',
      'client_created',
    ]);
    expect(types(await get(`/audit?${IN_2020}&outcome=failure`))).toEqual(['sign_in']);
    expect(types(await get(`/audit?${IN_2020}&type=sign_in&outcome=success&actor=u-ada`))).toEqual([
      'sign_in',
    ]);
    expect(types(await get(`/audit?${IN_2020}&type=no_such_type`))).toEqual([]);
  });

  it('pages with a cursor through every row once, rows at the same instant too', async () => {
    const whole = await get(`/audit?${IN_2020}`);
    for (const limit of [1, 2, 3]) {
      const { items, pages } = await allPages(IN_2020, limit);
      expect(items).toEqual(whole.body.items);
      expect(pages).toBe(Math.ceil(SEEDED.length / limit));
    }
    // A cursor keeps its filters' meaning: it is a position, the query still filters.
    const first = await get(`/audit?${IN_2020}&limit=2`);
    const next = await get(
      `/audit?${IN_2020}&type=sign_in&cursor=${encodeURIComponent(first.body.next)}`,
    );
    expect(next.body.items.map((r: AuditRecord) => r.type)).toEqual(['sign_in', 'sign_in']);
  });

  it.each([
    ['a cursor it did not give', 'cursor=bm90LWEtY3Vyc29y'],
    [
      'a forged cursor time',
      `cursor=${Buffer.from('{"at":"2020-13-45T99:00:00.000000Z","id":1}').toString('base64url')}`,
    ],
    ['a time that is not ISO 8601', 'since=yesterday'],
    ['since after until', 'since=2020-02-01&until=2020-01-01'],
    ['an unknown outcome', 'outcome=maybe'],
    ['an unknown filter (a typo must not widen the answer)', 'acter=u-ada'],
    ['an empty type', 'type=,'],
    ['a limit too large', 'limit=100000'],
  ])('answers %s with a 400 problem', async (_label, query) => {
    const res = await get(`/audit?${query}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.type).toBe('urn:latchkey:problem:invalid-request');
  });

  it('exports the same JSON Lines as the CLI, as an attachment, for the same filter', async () => {
    const res = await download(IN_2020);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/jsonl; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="audit-.*\.jsonl"$/,
    );
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    check('GET', '/audit/export', { status: res.status, headers: res.headers, body: text });
    const lines = parseLines(text);
    expect(lines.map((l) => l.type)).toEqual([
      'sign_in',
      'sign_in',
      'client_created',
      'token_issued',
      'password_changed',
      'mfa_enabled',
      'user_deleted',
    ]);

    // PGlite admits one process: the CLI's own function over the server's database there.
    let cli: string;
    if (storage === 'postgres+redis') {
      const run = await runCli(
        ['audit', 'export', '--since', '2020-01-01', '--until', '2021-01-01'],
        server.env,
      );
      expect(run).toMatchObject({ code: 0, stderr: '' });
      cli = run.stdout;
    } else {
      const chunks: string[] = [];
      const sink = new Writable({
        write(chunk, _enc, done) {
          chunks.push(String(chunk));
          done();
        },
      });
      await exportAuditEvents(
        server.db,
        { since: new Date('2020-01-01'), until: new Date('2021-01-01') },
        sink,
      );
      cli = chunks.join('');
    }
    expect(text).toBe(cli);

    const filtered = parseLines(
      await (await download(`${IN_2020}&type=sign_in&outcome=failure`)).text(),
    );
    expect(filtered.map((l) => [l.type, l.outcome])).toEqual([['sign_in', 'failure']]);
    const refused = await apiCall(server, token, 'GET', '/audit/export?limit=5');
    expect(refused.status).toBe(400);
    check('GET', '/audit/export', refused);
  });

  it('streams a big export: rows are read from the table while the download goes on', async () => {
    const ROWS = 20_000;
    // ~1.5 kB a line, 30 MB in all: more than the socket buffers on the way can hold.
    await server.db.raw(
      `INSERT INTO audit_events (at, type, outcome, actor_type, detail)
       SELECT timestamptz '2018-01-01 00:00:00Z' + i * interval '1 second', 'bulk', 'success',
              'system', jsonb_build_object('i', i, 'pad', repeat('x', 1500))
       FROM generate_series(1, ?) AS i`,
      [ROWS],
    );
    const url = new URL(`${server.url}/api/v1/audit/export?type=bulk`);
    const { lines, last } = await new Promise<{ lines: number; last: AuditRecord }>(
      (resolve, reject) => {
        const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          let text = '';
          let paused = false;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
            if (paused) return;
            // The first bytes are here: the server has not read the whole table yet, so a row
            // added now at the end of the range must still reach this download.
            paused = true;
            res.pause();
            server
              .db('audit_events')
              .insert({
                at: '2018-12-31T00:00:00Z',
                type: 'bulk',
                outcome: 'success',
                actor_type: 'system',
                detail: JSON.stringify({ i: 'late' }),
              })
              .then(() => res.resume(), reject);
          });
          res.on('end', () => {
            const all = text.split('\n').filter(Boolean);
            resolve({ lines: all.length, last: JSON.parse(all.at(-1)!) });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      },
    );
    expect(lines).toBe(ROWS + 1);
    expect(last.detail).toEqual({ i: 'late' });
  }, 120_000);

  it('audits each call with the client as its actor', async () => {
    const job = await apiClient(server, ['audit:read'], 'Audit reader');
    expect((await apiCall(server, await job.token(), 'GET', '/audit?limit=1')).status).toBe(200);
    const rows = await get(`/audit?type=admin_api_call&actor=${job.clientId}`);
    expect(rows.body.items).toEqual([
      expect.objectContaining({
        actor_type: 'client',
        actor_id: job.clientId,
        outcome: 'success',
        detail: { operation: 'listAuditEvents', status: 200 },
      }),
    ]);
  });
});
