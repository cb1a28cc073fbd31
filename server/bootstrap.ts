import { randomBytes } from 'node:crypto';
import type { Config } from '../config/load.ts';
import { UserExistsError, type UserStore } from './users/store.ts';
import type { ClientStore } from './clients/store.ts';

export type BootstrapReport = {
  admin?: { email: string; password: string | undefined };
  demoClient?: { clientId: string; clientSecret: string | undefined; redirectUri: string };
};

/** Another process starting at the same moment created it first: nothing to report. */
function ignoreRace(err: unknown): undefined {
  if (err instanceof UserExistsError || (err as { code?: string }).code === '23505')
    return undefined;
  throw err;
}

/** On first start (empty tables): an admin account and, outside production, a demo client. */
export async function bootstrap(
  config: Config,
  users: UserStore,
  clients: ClientStore,
): Promise<BootstrapReport> {
  const report: BootstrapReport = {};
  if ((await users.count()) === 0) {
    const password = config.admin.password ?? randomBytes(12).toString('base64url');
    const created = await users
      .create({
        email: config.admin.email,
        password,
        name: 'Administrator',
        roles: ['admin'],
        emailVerified: true,
      })
      .catch(ignoreRace);
    if (created)
      report.admin = {
        email: config.admin.email,
        password: config.admin.password ? undefined : password,
      };
  }
  if (config.demoClient.enabled && (await clients.count()) === 0) {
    const redirectUri = config.demoClient.redirectUri;
    const created = await clients
      .create({
        clientId: 'demo',
        name: 'Demo application',
        redirectUris: [redirectUri],
        postLogoutRedirectUris: [new URL(redirectUri).origin + '/'],
        grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      })
      .catch(ignoreRace);
    if (created) report.demoClient = { ...created, redirectUri };
  }
  return report;
}
