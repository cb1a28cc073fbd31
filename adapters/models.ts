/** What Latchkey does with one kind of stored payload. */
type ModelTraits = {
  /** TTL-driven and short-lived: in Redis when it is configured (ARCHITECTURE.md, state table). */
  shortLived: boolean;
  /** Names its grant (`grantId`): revoked together with the grant. */
  ofGrant: boolean;
};

/**
 * Every model stored through the adapters: oidc-provider's (the Client model, read-only, comes
 * from the client store instead) and our WebAuthn challenges.
 */
export const MODELS = {
  Session: { shortLived: true, ofGrant: false },
  Interaction: { shortLived: true, ofGrant: false },
  AuthorizationCode: { shortLived: true, ofGrant: true },
  AccessToken: { shortLived: true, ofGrant: true },
  ClientCredentials: { shortLived: true, ofGrant: false },
  DeviceCode: { shortLived: true, ofGrant: true },
  BackchannelAuthenticationRequest: { shortLived: true, ofGrant: true },
  PushedAuthorizationRequest: { shortLived: true, ofGrant: false },
  ReplayDetection: { shortLived: true, ofGrant: false },
  WebAuthnChallenge: { shortLived: true, ofGrant: false },
  RefreshToken: { shortLived: false, ofGrant: true },
  Grant: { shortLived: false, ofGrant: false },
} as const satisfies Record<string, ModelTraits>;

export type Model = keyof typeof MODELS;

/** The models with a trait, e.g. `modelsThat('ofGrant')`. */
export const modelsThat = (trait: keyof ModelTraits): Model[] =>
  (Object.keys(MODELS) as Model[]).filter((model) => MODELS[model][trait]);
