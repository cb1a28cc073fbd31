import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

describe('the discovery document', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    server = await startTestServer(await storageEnv('embedded'));
    const client = await server.clients.create({ name: 'Linker', redirectUris: [REDIRECT_URI] });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  it('names the account center and its connected apps page, each starting its own sign-in', async () => {
    const metadata = rp.serverMetadata();
    expect(metadata.account_management_uri).toBe(`${server.url}/account`);
    expect(metadata.authorization_management_uri).toBe(`${server.url}/account/apps`);
    // What oidc-provider publishes by default stays.
    expect(metadata.claim_types_supported).toEqual(['normal']);
    for (const uri of [metadata.account_management_uri, metadata.authorization_management_uri]) {
      const res = await new Browser().get(String(uri));
      expect(res.status).toBe(303);
      expect(new URL(res.headers.get('location')!, server.url).pathname).toBe('/auth');
    }
  });
});
