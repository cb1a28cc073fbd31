import type { Knex } from 'knex';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetLink } from '../../server/users/reset-link.ts';
import type { User } from '../../server/users/store.ts';
import { withAuditRefused } from '../support/audit-fault.ts';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { Flow } from '../support/flow.ts';
import {
  REDIRECT_URI,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
} from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const NEW_PASSWORD = 'granite feather 88 lighthouse oval';

describe.each(STORAGES)(
  'a change whose audit row cannot be written does not happen, and says so (%s)',
  (storage) => {
    let server: TestServer;
    let db: Knex;
    let rp: oidc.Configuration;
    let n = 0;

    beforeAll(async () => {
      server = await startTestServer(await storageEnv(storage));
      db = server.db;
      const client = await server.clients.create({
        name: 'Recorded app',
        redirectUris: [REDIRECT_URI],
      });
      rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    });
    afterAll(async () => {
      await server?.cleanup();
    });

    /** A new verified user with a password of its own. */
    async function newUser(): Promise<{ user: User; email: string; password: string }> {
      const email = `recorded-${++n}@example.test`;
      const password = `the first password of user ${n}`;
      const user = await server.users.create({ email, password, emailVerified: true });
      return { user, email, password };
    }

    const rows = (type: string, subject: string) => db('audit_events').where({ type, subject });
    const history = (userId: string) => db('password_history').where({ user_id: userId });
    const hasSession = async (browser: Browser) =>
      (
        await browser.follow(await browser.get(await silentAuthorizationUrl(rp)), server.url)
      ).url.searchParams.has('code');

    /** The old password still works, the history is as it was, `elsewhere` is still signed in. */
    async function expectUnchanged(user: User, password: string, elsewhere: Browser) {
      expect(await server.users.authenticate(user.email, password)).toBeDefined();
      expect(await server.users.authenticate(user.email, NEW_PASSWORD)).toBeUndefined();
      expect(await history(user.id)).toHaveLength(0);
      expect(await hasSession(elsewhere)).toBe(true);
    }

    /** The new password works, with its one audit row and history row; `elsewhere` is out. */
    async function expectChanged(user: User, type: string, elsewhere: Browser) {
      expect(await server.users.authenticate(user.email, NEW_PASSWORD)).toBeDefined();
      expect(await rows(type, user.id)).toHaveLength(1);
      expect(await history(user.id)).toHaveLength(1);
      expect(await hasSession(elsewhere)).toBe(false);
    }

    it('a password change: 503, the old password still works and the other sessions stand; sent again, it goes through', async () => {
      const { user, email, password } = await newUser();
      const other = new Browser();
      await signIn(rp, other, server.url, { email, password });
      const browser = new Browser();
      await signIn(rp, browser, server.url, { email, password });
      const url = `${server.url}/account/password`;
      const csrf = hiddenInput(await (await browser.get(url)).text(), 'csrf');
      const form = { csrf, current: password, password: NEW_PASSWORD, confirm: NEW_PASSWORD };

      const failed = await withAuditRefused(db, ['password_changed'], () =>
        browser.post(url, form),
      );
      const html = await failed.text();
      expect(failed.status).toBe(503);
      expect(html).toContain('Try again in a moment');
      expect(html).not.toContain(NEW_PASSWORD);
      await expectUnchanged(user, password, other);

      const done = await browser.post(url, form);
      expect(done.status).toBe(200);
      expect(await done.text()).toContain('Your password was changed');
      await expectChanged(user, 'password_changed', other);
      expect(await hasSession(browser)).toBe(true);
    });

    it('a password reset: 503, the old password still works and the link can still be used; sent again, it goes through', async () => {
      const { user, email, password } = await newUser();
      const elsewhere = new Browser();
      await signIn(rp, elsewhere, server.url, { email, password });
      const browser = new Browser();
      const html = await (await browser.get(await resetLink(server, user))).text();
      const action = new URL(formAction(html, '/reset'), server.url);
      const form = {
        csrf: hiddenInput(html, 'csrf'),
        token: hiddenInput(html, 'token'),
        password: NEW_PASSWORD,
        confirm: NEW_PASSWORD,
      };

      const failed = await withAuditRefused(db, ['password_reset'], () =>
        browser.post(action, form),
      );
      expect(failed.status).toBe(503);
      expect(await failed.text()).toContain('Try again in a moment');
      await expectUnchanged(user, password, elsewhere);

      const done = await browser.post(action, form);
      expect(done.status).toBe(200);
      expect(await done.text()).toContain('Your password was changed');
      await expectChanged(user, 'password_reset', elsewhere);
    });

    it('a consent: 503, and no later sign-in skips the consent screen; given again, it is recorded', async () => {
      const { user, email, password } = await newUser();
      const flow = new Flow(server, rp, { email, password });
      await flow.start();
      await flow.login();
      expect(flow.html).toContain('/consent');

      await withAuditRefused(db, ['consent_granted'], () => flow.submit('/consent'));
      expect(flow.status).toBe(503);
      expect(await db('consents').where({ account_id: user.id })).toHaveLength(0);

      // Another device, and this browser again: each is asked.
      const elsewhere = new Flow(server, rp, { email, password });
      await elsewhere.start();
      await elsewhere.login();
      expect(elsewhere.html).toContain('/consent');
      await flow.start();
      expect(flow.html).toContain('/consent');
      await flow.submit('/consent');
      expect(flow.url.href.startsWith(REDIRECT_URI)).toBe(true);
      expect(await rows('consent_granted', user.id)).toHaveLength(1);
    });

    it('more scopes on a grant the browser already has: 503, and the same browser is asked again for them', async () => {
      const { user, email, password } = await newUser();
      const flow = new Flow(server, rp, { email, password });
      await flow.signIn();
      await flow.start({ scope: 'openid email profile' });
      expect(flow.html).toContain('/consent');

      await withAuditRefused(db, ['consent_granted'], () => flow.submit('/consent'));
      expect(flow.status).toBe(503);
      const consent = await db('consents').where({ account_id: user.id }).first();
      expect(consent.scope).not.toContain('profile');

      await flow.start({ scope: 'openid email profile' });
      expect(flow.html).toContain('/consent');
      await flow.submit('/consent');
      expect(flow.url.href.startsWith(REDIRECT_URI)).toBe(true);
      expect(await rows('consent_granted', user.id)).toHaveLength(2);
    });

    // The CLI is another process: it cannot open the embedded database while the server has it.
    if (storage === 'postgres+redis')
      it("the CLI's set-password and force-reset: an error, and the password is what it was", async () => {
        const { user, email, password } = await newUser();
        const refused = ['password_set_by_admin', 'password_reset_forced'];
        const [set, forced] = await withAuditRefused(db, refused, async () => [
          await runCli(
            ['users', 'set-password', '--email', email, '--password', NEW_PASSWORD],
            server.env,
          ),
          await runCli(['users', 'force-reset', '--email', email], server.env),
        ]);
        expect(set!.code).toBe(1);
        expect(set!.stdout).not.toContain('password changed');
        expect(forced!.code).toBe(1);
        expect(forced!.stdout).not.toContain('signed out everywhere');
        expect(await server.users.authenticate(email, password)).toBeDefined();
        expect(await history(user.id)).toHaveLength(0);
        expect(
          await db('audit_events').where({ subject: user.id }).whereIn('type', refused),
        ).toHaveLength(0);

        const again = await runCli(
          ['users', 'set-password', '--email', email, '--password', NEW_PASSWORD],
          server.env,
        );
        expect(again.code).toBe(0);
        expect(await server.users.authenticate(email, NEW_PASSWORD)).toBeDefined();
        // Recorded about the user by id, never the address typed.
        expect(await rows('password_set_by_admin', user.id)).toHaveLength(1);
      });
  },
);
