import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfBindings } from '../../server/http/csrf-bindings.ts';
import { errorPages } from '../../server/http/errors.ts';
import { EMAIL_MAX, FORM_LIMIT_BYTES, field, readForm } from '../../server/http/form.ts';
import { createCsrf } from '../../server/security/csrf.ts';
import { createViews } from '../../server/views.ts';

const csrf = createCsrf('form-test-key-0123456789abcdefghijkl');
const binding = csrfBindings.password('session-1');
const TOO_LONG = 'Enter your email address, like name@example.com.';
const schema = z.object({
  email: field.text(TOO_LONG, EMAIL_MAX),
  password: field.secret(),
  keep: field.checkbox(),
});

describe('readForm: one reader for every hosted form', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const app = new Koa();
    app.use(errorPages(createViews()));
    app.use(async (ctx) => {
      ctx.body = await readForm(ctx, schema, { csrf, binding });
    });
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const post = (body: string, type = 'application/x-www-form-urlencoded') =>
    fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
  const form = (fields: Record<string, string>, token = csrf.token(binding)) =>
    post(new URLSearchParams({ csrf: token, ...fields }).toString());

  it('gives the typed fields: trimmed text, a ticked box as true, a missing field as empty', async () => {
    const res = await form({ email: '  ann@example.test ', keep: 'on' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      ok: true,
      fields: { email: 'ann@example.test', password: '', keep: true },
    });
    const unticked = (await (await form({ email: 'ann@example.test', password: 'pw' })).json()) as {
      fields: unknown;
    };
    expect(unticked.fields).toEqual({ email: 'ann@example.test', password: 'pw', keep: false });
  });

  it("answers a field over its length with the page's words, keeping the input but never the password", async () => {
    const email = `${'a'.repeat(EMAIL_MAX)}@example.test`;
    const res = await form({ email, password: 'secret password 1' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      ok: false,
      problems: [TOO_LONG],
      input: { email, password: '', keep: '' },
    });
  });

  it('refuses a missing token, a wrong one and one made for another form with a 403 page', async () => {
    for (const token of ['', 'x'.repeat(43), csrf.token(csrfBindings.email('session-1'))]) {
      const res = await form({ email: 'ann@example.test' }, token);
      expect(res.status).toBe(403);
      expect(await res.text()).toContain('The form expired. Reload the page and try again.');
    }
  });

  it('refuses another content type (415), an oversized body (413) and a NUL character (400)', async () => {
    expect((await post('{"email":"x"}', 'application/json')).status).toBe(415);
    const big = await form({ email: 'x', pad: 'a'.repeat(FORM_LIMIT_BYTES) });
    expect(big.status).toBe(413);
    expect(await big.text()).toContain('The form is too large.');
    const nul = await form({ email: 'ann\u0000@example.test' });
    expect(nul.status).toBe(400);
    expect(await nul.text()).toContain('not allowed');
  });
});
