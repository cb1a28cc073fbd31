import { Attribute, Change } from 'ldapts';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Directory } from '../../server/ldap/directory.ts';
import { PPOLICY_ADMIN_LOCK } from '../../server/ldap/presets.ts';
import { REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { SEEDED, startSlapd, type Slapd } from '../support/slapd.ts';

const { alice, bob, dave } = SEEDED;
const SCOPE = 'openid email offline_access';

describe.each(STORAGES)('a user the directory disables or removes, on %s storage', (storage) => {
  let slapd: Slapd;
  let server: TestServer;
  let directory: Directory;
  let rp: oidc.Configuration;
  let clientId: string;

  beforeAll(async () => {
    slapd = await startSlapd();
    server = await startTestServer({ ...(await storageEnv(storage)), ...slapd.env() });
    directory = server.directory!;
    const client = await server.clients.create({
      name: 'Directory app',
      redirectUris: [REDIRECT_URI],
    });
    clientId = client.clientId;
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(async () => {
    await server?.cleanup();
    await slapd?.cleanup();
  });

  /**
   * What a sign-in through the hosted page leaves behind, made through the provider's own
   * models: a session and a grant with a refresh token for the directory user.
   */
  async function signedIn(login: string, password: string) {
    const result = await directory.authenticate(login, password);
    if (!result.ok) throw new Error(`directory refused ${login}: ${result.reason}`);
    const accountId = result.user.id;
    const provider = server.provider();
    const now = Math.floor(Date.now() / 1000);
    const session = new provider.Session();
    session.loginAccount({ accountId, loginTs: now });
    await session.save(3600);
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const client = (await provider.Client.find(clientId))!;
    const refreshToken = await new provider.RefreshToken({
      client,
      accountId,
      grantId,
      scope: SCOPE,
      gty: 'authorization_code',
      authTime: now,
    }).save();
    // The token endpoint honours it (and rotates it): a real, working refresh token.
    const tokens = await oidc.refreshTokenGrant(rp, refreshToken);
    expect(tokens.claims()?.email).toBe(result.user.email);
    return { accountId, sessionId: session.jti, tokens };
  }

  const hasSession = async (id: string) => Boolean(await server.provider().Session.find(id));

  it("ends the sessions and revokes the refresh tokens of disabled and deleted users, no one else's", async () => {
    const disabled = await signedIn('bob', bob.password);
    const deleted = await signedIn('dave', dave.password);
    const bystander = await signedIn('alice', alice.password);

    await slapd.asAdmin(async (admin) => {
      await admin.modify(
        bob.dn,
        new Change({
          operation: 'add',
          modification: new Attribute({
            type: 'pwdAccountLockedTime',
            values: [PPOLICY_ADMIN_LOCK],
          }),
        }),
      );
      await admin.del(dave.dn);
    });
    const summary = await directory.sync({ full: true });
    expect(summary).toMatchObject({ disabled: 2, errors: 0 });

    for (const gone of [disabled, deleted]) {
      await expect(oidc.refreshTokenGrant(rp, gone.tokens.refresh_token!)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
      expect((await oidc.tokenIntrospection(rp, gone.tokens.access_token)).active).toBe(false);
      expect(await hasSession(gone.sessionId)).toBe(false);
    }
    expect(await hasSession(bystander.sessionId)).toBe(true);
    const refreshed = await oidc.refreshTokenGrant(rp, bystander.tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();

    const events = await server.db('audit_events').where({ type: 'user_disabled' });
    expect(events.map((e) => e.subject).sort()).toEqual(
      [disabled.accountId, deleted.accountId].sort(),
    );
  });
});
