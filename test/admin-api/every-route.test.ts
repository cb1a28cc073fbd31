import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_SCOPES } from '../../server/admin-api/scopes.ts';
import { apiCall, apiClient, documentChecker, type Json } from '../support/admin-api.ts';
import { startTestServer, storageEnv, STORAGES, type TestServer } from '../support/server.ts';

// Properties every route of the published document must have, whatever it does: these run over
// the routes the server says it has, so a new route is covered the day it is added.

type Operation = { method: string; template: string; scope: string; hasBody: boolean };

const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';
const pathOf = (template: string, value: string) =>
  template.replace(/\{\w+\}/g, encodeURIComponent(value));

describe.each(STORAGES)('every admin API route (%s)', (storage) => {
  let server: TestServer;
  let operations: Operation[];
  let check: ReturnType<typeof documentChecker>;

  beforeAll(async () => {
    server = await startTestServer({ ...(await storageEnv(storage)), RATE_LIMIT_ADMIN_API: 'off' });
    const { body: document } = await apiCall(server, undefined, 'GET', '/openapi.json');
    check = documentChecker(document);
    operations = Object.entries(document.paths as Record<string, Record<string, Json>>).flatMap(
      ([template, item]) =>
        Object.entries(item).map(([method, op]) => ({
          method: method.toUpperCase(),
          template,
          scope: op.security[0].oauth2[0],
          hasBody: !!op.requestBody,
        })),
    );
    expect(operations.length).toBeGreaterThan(1);
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('answers 401 without a token, on every route', async () => {
    for (const op of operations) {
      const res = await apiCall(server, undefined, op.method, pathOf(op.template, NO_SUCH_ID));
      expect(res.status, `${op.method} ${op.template}`).toBe(401);
      check(op.method, op.template, res);
    }
  });

  it("answers 403 to a token with every scope but the route's own, on every route", async () => {
    for (const op of operations) {
      const others = ADMIN_SCOPES.filter((s) => s !== op.scope);
      const token = await (await apiClient(server, others)).token();
      const res = await apiCall(server, token, op.method, pathOf(op.template, NO_SUCH_ID), {
        ...(op.hasBody && { body: {} }),
      });
      expect(res.status, `${op.method} ${op.template}`).toBe(403);
      expect(res.body.type).toBe('urn:latchkey:problem:insufficient-scope');
      check(op.method, op.template, res);
    }
  });

  it('answers bad input with a 4xx problem, never a 500, on every route', async () => {
    const token = await (await apiClient(server, [...ADMIN_SCOPES])).token();
    const bad: { label: string; path: string; body?: unknown; headers?: Record<string, string> }[] =
      [
        { label: 'long id', path: 'x'.repeat(2000) },
        { label: 'NUL in id', path: 'a\u0000b' },
        { label: 'odd id', path: "'; DROP TABLE users; --" },
      ];
    for (const op of operations) {
      const cases = [
        ...bad.map((b) => ({ ...b, path: pathOf(op.template, b.path) })),
        {
          label: 'query junk',
          path: `${pathOf(op.template, NO_SUCH_ID)}?limit=-1&cursor=%00&q=${'y'.repeat(3000)}`,
        },
        ...(op.hasBody
          ? [
              { label: 'not JSON', path: pathOf(op.template, NO_SUCH_ID), body: '{"a":' },
              { label: 'a list', path: pathOf(op.template, NO_SUCH_ID), body: [] },
              {
                label: 'wrong types',
                path: pathOf(op.template, NO_SUCH_ID),
                body: { email: 5, name: {}, roles: 'x' },
              },
              {
                label: 'form body',
                path: pathOf(op.template, NO_SUCH_ID),
                body: 'a=b',
                headers: { 'content-type': 'application/x-www-form-urlencoded' },
              },
            ]
          : []),
      ];
      for (const c of cases) {
        const res = await apiCall(server, token, op.method, c.path, {
          ...(c.body !== undefined && { body: c.body }),
          headers: { 'if-match': '"1"', ...c.headers },
        });
        const where = `${op.method} ${op.template} (${c.label})`;
        expect(res.status, where).toBeLessThan(500);
        if (res.status >= 400) {
          expect(res.headers.get('content-type'), where).toContain('application/problem+json');
          expect(JSON.stringify(res.body), where).not.toMatch(/at .*\.ts:\d+|stack/i);
        }
        // Whatever it answers, the document says it may.
        check(op.method, op.template, res);
      }
    }
  });
});
