import type { Adapter, AdapterPayload } from 'oidc-provider';

export type { Adapter, AdapterPayload };
