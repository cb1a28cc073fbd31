import type { Adapter, AdapterPayload } from 'oidc-provider';

export type { Adapter, AdapterPayload };

/** Our stores: oidc-provider's adapter, and an atomic read-and-delete for single-use values. */
export type StorageAdapter = Adapter & {
  /** The payload, deleted in the same step: of two concurrent takes, only one gets it. */
  take(id: string): Promise<AdapterPayload | undefined>;
};
