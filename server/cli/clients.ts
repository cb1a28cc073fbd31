import { retainSeconds, rotateKeys } from '../keys/manager.ts';
import { loadKeyView } from '../keys/store.ts';
import { apiScopes, need, signingAlg, UsageError, type Command } from './command.ts';

/** latchkey clients ... and keys ... */
export const clientAndKeyCommands: Record<string, Command> = {
  'clients create': {
    audit: 'client_created',
    async run({ v, clients }) {
      const grantTypes = v['grant-type'];
      const redirectUris = v['redirect-uri'] ?? [];
      if (
        !redirectUris.length &&
        !(grantTypes?.length === 1 && grantTypes[0] === 'client_credentials')
      )
        throw new UsageError(
          'missing --redirect-uri (or use --grant-type client_credentials alone)',
        );
      if (v.public && v['pkce-optional'])
        throw new UsageError(
          '--pkce-optional is for confidential clients: a public client must use PKCE',
        );
      const corsOrigins =
        v['cors-origin'] ??
        (v.public ? [...new Set(redirectUris.map((u) => new URL(u).origin))] : []);
      const { clientId, clientSecret } = await clients.create({
        name: need(v.name, '--name'),
        redirectUris,
        postLogoutRedirectUris: v['post-logout-redirect-uri'],
        grantTypes,
        public: v.public,
        corsOrigins,
        idTokenAlg: signingAlg(v['id-token-alg']),
        pkceRequired: !v['pkce-optional'],
        apiScopes: apiScopes(v['api-scope']),
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
    async run({ arg, clients }) {
      const clientId = need(arg, '<client_id>');
      if (!(await clients.delete(clientId))) throw new UsageError(`no client ${clientId}`);
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
