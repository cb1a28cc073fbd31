import type * as oidc from 'openid-client';
import type { NewUser } from '../../server/users/store.ts';
import { smtpEnv } from './mailbox.ts';
import { POST_LOGOUT_URI, REDIRECT_URI, relyingParty } from './relying-party.ts';
import { startTestServer, storageEnv, type Storage, type TestServer } from './server.ts';
import { startSmtpServer, type TestSmtpServer } from './smtp.ts';

export type MailApp = {
  server: TestServer;
  smtp: TestSmtpServer;
  rp: oidc.Configuration;
  stop(): Promise<void>;
};

/**
 * A server that mails through a test SMTP server, with a confidential client (REDIRECT_URI,
 * POST_LOGOUT_URI) named `clientName` and, when given, one verified user.
 */
export async function startMailApp(options: {
  storage?: Storage;
  env?: Record<string, string>;
  clientName: string;
  user?: NewUser;
}): Promise<MailApp> {
  const smtp = await startSmtpServer();
  const server = await startTestServer({
    ...(await storageEnv(options.storage ?? 'postgres+redis')),
    ...smtpEnv(smtp),
    ...options.env,
  });
  if (options.user) await server.users.create({ emailVerified: true, ...options.user });
  const client = await server.clients.create({
    name: options.clientName,
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_URI],
  });
  const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  return {
    server,
    smtp,
    rp,
    async stop() {
      await server.cleanup();
      await smtp.stop();
    },
  };
}
