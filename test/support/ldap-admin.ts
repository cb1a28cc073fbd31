import { Client } from 'ldapts';

export type AdminWork = <T>(work: (client: Client) => Promise<T>) => Promise<T>;

/** Runs `work` with a client bound over LDAPS as `bind`, unbinding after. */
export function ldapAdmin(
  url: string,
  ca: Buffer,
  bind: { dn: string; password: string },
): AdminWork {
  return async (work) => {
    const client = new Client({ url, timeout: 10_000, connectTimeout: 5000, tlsOptions: { ca } });
    try {
      await client.bind(bind.dn, bind.password);
      return await work(client);
    } finally {
      await client.unbind();
    }
  };
}
