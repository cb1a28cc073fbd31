import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import {
  REDIRECT_URI,
  relyingParty,
  signIn,
  tokenRequest,
  type TokenAnswer,
} from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'rotation@example.test', password: 'a long enough password' };
const TIMEOUT_MS = 1000;

// A refresh token's row held locked by another transaction: its consume (an UPDATE) waits,
// as it would behind a slow disk or a long-running statement, while its reads do not.
async function lockRow(db: Knex, id: string): Promise<Knex.Transaction> {
  const trx = await db.transaction();
  await trx.raw(`SELECT 1 FROM oidc_payloads WHERE model = 'RefreshToken' AND id = ? FOR UPDATE`, [
    id,
  ]);
  return trx;
}

describe('refresh token rotation under faults (no reuse grace)', () => {
  let server: TestServer;
  let db: Knex;
  let app: { clientId: string; clientSecret: string };

  const refresh = (refreshToken: string) =>
    tokenRequest(server.url, app, { grant_type: 'refresh_token', refresh_token: refreshToken });

  async function newRefreshToken(): Promise<string> {
    const rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    return (await signIn(rp, new Browser(), server.url, USER)).refresh_token!;
  }

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      DEPENDENCY_TIMEOUT_MS: String(TIMEOUT_MS),
      REFRESH_REUSE_GRACE_SECONDS: '0',
    });
    db = knexFactory({ client: 'pg', connection: server.env.DATABASE_URL });
    await server.users.create({ ...USER, emailVerified: true });
    const created = await server.clients.create({ name: 'App', redirectUris: [REDIRECT_URI] });
    app = { clientId: created.clientId, clientSecret: created.clientSecret! };
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('a refresh answered 503 because its consume was too slow leaves the presented token usable', async () => {
    const refreshToken = await newRefreshToken();
    const lock = await lockRow(db, refreshToken);
    let during: TokenAnswer;
    try {
      during = await refresh(refreshToken);
    } finally {
      await lock.commit();
    }
    expect(during.status).toBe(503);
    expect(during.body.error).toBe('temporarily_unavailable');
    // The client was told to try again; the statement it gave up on must not spend the token.
    await new Promise((r) => setTimeout(r, 300));
    const retry = await refresh(refreshToken);
    expect(retry.body.error).toBeUndefined();
    expect(retry.status).toBe(200);
  });

  it('of two concurrent refreshes with one token, only one gets a new refresh token', async () => {
    const refreshToken = await newRefreshToken();
    const lock = await lockRow(db, refreshToken);
    let answers: TokenAnswer[];
    try {
      const both = Promise.all([refresh(refreshToken), refresh(refreshToken)]);
      // Both reach their consume (and wait on the row) well within the dependency timeout.
      await new Promise((r) => setTimeout(r, 400));
      await lock.commit();
      answers = await both;
    } catch (err) {
      await lock.rollback().catch(() => undefined);
      throw err;
    }
    const issued = answers.filter((a) => a.status === 200);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    expect(issued).toHaveLength(1);
    // One of the two was a reuse, so the grant is revoked: the token the winner got is dead too.
    expect((await refresh(issued[0]!.body.refresh_token as string)).status).toBe(400);
  });
});
