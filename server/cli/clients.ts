import { retainSeconds, rotateKeys } from '../keys/manager.ts';
import { loadKeyView } from '../keys/store.ts';
import { ClientRuleError, registerClient, type NewClient } from '../clients/registration.ts';
import { removeClient } from '../clients/removal.ts';
import { apiScopes, need, signingAlg, UsageError, type Command } from './command.ts';

/** The option that sets each field of a client, to name in a refusal. */
const FLAGS: Record<string, string> = {
  name: '--name',
  redirectUris: '--redirect-uri',
  postLogoutRedirectUris: '--post-logout-redirect-uri',
  grantTypes: '--grant-type',
  corsOrigins: '--cors-origin',
  pkceRequired: '--pkce-optional',
  idTokenAlg: '--id-token-alg',
  apiScopes: '--api-scope',
};

/** latchkey clients ... and keys ... */
export const clientAndKeyCommands: Record<string, Command> = {
  'clients create': {
    audit: 'client_created',
    async run({ v, clients }) {
      const input = {
        name: need(v.name, '--name'),
        redirectUris: v['redirect-uri'] ?? [],
        postLogoutRedirectUris: v['post-logout-redirect-uri'],
        grantTypes: v['grant-type'] as NewClient['grantTypes'],
        public: v.public,
        corsOrigins: v['cors-origin'],
        idTokenAlg: signingAlg(v['id-token-alg']) as NewClient['idTokenAlg'],
        pkceRequired: !v['pkce-optional'],
        apiScopes: apiScopes(v['api-scope']),
      };
      const { clientId, clientSecret } = await registerClient(clients, input).catch((err) => {
        if (!(err instanceof ClientRuleError)) throw err;
        throw new UsageError(`${FLAGS[err.field] ?? err.field}: ${err.message}`);
      });
      return `client_id: ${clientId}\n${clientSecret ? `client_secret: ${clientSecret}  <- shown once, stored sealed` : 'public client: no secret, PKCE required'}`;
    },
  },
  'clients list': {
    async run({ clients }) {
      const list = await clients.list();
      return (
        list
          .map(
            (c) =>
              `${c.clientId}\t${String(c.metadata.client_name)}\t${JSON.stringify(c.metadata.redirect_uris)}`,
          )
          .join('\n') || 'no clients'
      );
    },
  },
  'clients delete': {
    audit: 'client_deleted',
    async run(c) {
      const clientId = need(c.arg, '<client_id>');
      if (!(await removeClient(c, clientId, (trx) => c.recordWithin(trx))))
        throw new UsageError(`no client ${clientId}`);
      return `deleted ${clientId}`;
    },
  },
  'keys rotate': {
    audit: 'keys_rotated',
    async run({ config, db }) {
      const kids = await rotateKeys(db, config);
      const at = new Date(Date.now() + config.keys.announceSeconds * 1000).toISOString();
      return kids.length
        ? `announced ${kids.join(', ')}; they start signing at ${at}`
        : 'another process is rotating; try again';
    },
  },
  'keys list': {
    async run({ config, db }) {
      const view = await loadKeyView(db, config.sealingKey, retainSeconds(config));
      return view.keys
        .map(
          (k) =>
            `${k.kid}\t${k.alg}\t${k.state}\tactivates ${k.activateAt.toISOString()}${k.unpublishAt ? `\tleaves JWKS ${k.unpublishAt.toISOString()}` : ''}`,
        )
        .join('\n');
    },
  },
};
