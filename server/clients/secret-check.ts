import type Provider from 'oidc-provider';
import { constantTimeEqual } from '../security/constant-time.ts';
import type { ClientStore } from './store.ts';

/**
 * oidc-provider keeps one secret per client, and names Client#compareClientSecret as the place
 * to compare otherwise (its maintainer in panva/node-oidc-provider discussion #1410). Ours
 * accepts the current secret, and the one before during its overlap after a rotation
 * (CLIENT_SECRET_OVERLAP), each compared in constant time. A secret that matches neither is
 * compared once more against a fresh read, past the client cache: a rotation made by another
 * process then works here at once.
 */
export function acceptRotatedSecrets(provider: Provider, clients: Pick<ClientStore, 'secretsOf'>) {
  const matches = (
    actual: string,
    { current, previous }: Awaited<ReturnType<ClientStore['secretsOf']>>,
  ) =>
    [current, previous]
      .map((secret) => secret !== undefined && constantTimeEqual(secret, actual))
      .includes(true);

  provider.Client.prototype.compareClientSecret = async function compare(actual: string) {
    if (typeof actual !== 'string' || !actual) return false;
    const { clientId } = this;
    if (matches(actual, await clients.secretsOf(clientId))) return true;
    return matches(actual, await clients.secretsOf(clientId, { fresh: true }));
  };
}
