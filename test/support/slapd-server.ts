import type * as oidc from 'openid-client';
import { REDIRECT_URI, relyingParty } from './relying-party.ts';
import { startTestServer, storageEnv, type Storage, type TestServer } from './server.ts';
import { startSlapd, type Slapd } from './slapd.ts';

/**
 * A test slapd and a Latchkey server signing its users in, with one local user (email
 * verified) and a client to sign in at; `ldapEnv` overrides LDAP_* settings. Clean up the
 * server, then the slapd.
 */
export async function startSlapdServer(
  storage: Storage,
  local: { email: string; password: string },
  ldapEnv: Record<string, string> = {},
): Promise<{ slapd: Slapd; server: TestServer; rp: oidc.Configuration }> {
  const slapd = await startSlapd();
  const server = await startTestServer({ ...(await storageEnv(storage)), ...slapd.env(ldapEnv) });
  await server.users.create({ ...local, emailVerified: true });
  const client = await server.clients.create({ name: 'Intranet', redirectUris: [REDIRECT_URI] });
  const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  return { slapd, server, rp };
}
