import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { z } from 'zod';

// The browser's answers to navigator.credentials.create() and .get(), as @simplewebauthn/browser
// serialises them (WebAuthn L3 §5.1, the *JSON dictionaries), posted in a form field.

const base64url = z.string().regex(/^[\w-]+$/);
const common = {
  id: base64url,
  rawId: base64url,
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
};

const registration = z.object({
  ...common,
  response: z.looseObject({
    clientDataJSON: base64url,
    attestationObject: base64url,
    transports: z.array(z.string().max(32)).max(10).optional(),
  }),
});

const authentication = z.object({
  ...common,
  response: z.object({
    clientDataJSON: base64url,
    authenticatorData: base64url,
    signature: base64url,
    userHandle: base64url.optional(),
  }),
});

function parse<T>(schema: z.ZodType, json: string | undefined): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(json ?? ''));
    return parsed.success ? (parsed.data as T) : undefined;
  } catch {
    return undefined;
  }
}

/** A posted registration (attestation) response, or undefined when it is not one. */
export const parseRegistration = (json: string | undefined) =>
  parse<RegistrationResponseJSON>(registration, json);

/** A posted authentication (assertion) response, or undefined when it is not one. */
export const parseAuthentication = (json: string | undefined) =>
  parse<AuthenticationResponseJSON>(authentication, json);
