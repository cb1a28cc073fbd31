import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { leaks } from '../support/log-leaks.ts';
import { authorizationRequest, REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const EMAIL = 'Zephyrine.Quillfeather@example.test';
const PASSWORD = 'velvet harbour crane 58 tundra';
const UNICODE_EMAIL = 'José.García@example.test';
const UNICODE_NAME = 'José García';
const VERIFY_LINK = /https?:\/\/\S+\/verify\?token=[\w-]+/;
const RESET_LINK = /https?:\/\/\S+\/reset\?token=[\w-]+/;

describe('log privacy of the development outbox', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let outbox: string;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      MAIL_TRANSPORT: 'outbox',
      LOG_LEVEL: 'trace',
      REGISTRATION_ENABLED: 'true',
      EMAIL_RESEND_SECONDS: '0',
    });
    outbox = join(server.env.DATA_DIR!, 'outbox');
    await server.users.create({ email: EMAIL, password: PASSWORD, emailVerified: true });
    const client = await server.clients.create({
      name: 'Outbox app',
      redirectUris: [REDIRECT_URI],
    });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  /** The link of the first mail in the outbox matching `link`, waiting for it to be written. */
  async function linkInOutbox(link: RegExp): Promise<string> {
    for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
      const files = existsSync(outbox) ? readdirSync(outbox) : [];
      for (const file of files) {
        const found = link.exec((await simpleParser(readFileSync(join(outbox, file)))).text ?? '');
        if (found) return found[0];
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no mail with a link like ${link} in the outbox`);
  }

  it('writes reset and verification links to the outbox file and logs neither, at any level', async () => {
    const browser = new Browser();
    const { url } = await authorizationRequest(rp);
    const login = await (await browser.follow(await browser.get(url), server.url)).res.text();
    const forgot = /href="([^"]*\/forgot)[^"]*"/.exec(login)![1]!;
    const forgotHtml = await (await browser.get(new URL(forgot, server.url))).text();
    await browser.post(new URL(formAction(forgotHtml, '/forgot'), server.url), {
      csrf: hiddenInput(forgotHtml, 'csrf'),
      email: EMAIL,
    });
    const register = /href="([^"]*\/register)"/.exec(login)![1]!;
    const registerHtml = await (await browser.get(new URL(register, server.url))).text();
    await browser.post(new URL(formAction(registerHtml, '/register'), server.url), {
      csrf: hiddenInput(registerHtml, 'csrf'),
      email: UNICODE_EMAIL,
      name: UNICODE_NAME,
      password: PASSWORD,
      confirm: PASSWORD,
    });

    const tokens = [await linkInOutbox(RESET_LINK), await linkInOutbox(VERIFY_LINK)].map(
      (link) => ({ what: link, value: new URL(link).searchParams.get('token')! }),
    );
    // The file is written before its log line: wait for both lines.
    const writtenLines = () =>
      server.logs.filter((line) => line.includes('"mail written to outbox"'));
    for (const deadline = Date.now() + 5000; writtenLines().length < 2 && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 20));
    const written = writtenLines();
    expect(written).toHaveLength(2);
    for (const line of written) expect(JSON.parse(line).file).toMatch(/\.eml$/);
    expect(leaks(server.logs, tokens)).toEqual([]);
  });
});
