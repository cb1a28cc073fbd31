import type { Db } from '../db.ts';
import { affected } from '../db.ts';
import type { Challenges } from './challenges.ts';
import { parseAuthentication, parseRegistration } from './passkey-responses.ts';

/** How long the browser's own passkey prompt waits for the user (WebAuthn L3 §5.4, timeout). */
// Loaded at the first passkey ceremony: ~5 MiB of heap that a server without passkeys never needs.
const webauthn = () => import('@simplewebauthn/server');

export const PASSKEY_TIMEOUT_MS = 120_000;
/** A passkey's name is a label in a list: anything longer is cut. */
export const PASSKEY_NAME_MAX = 60;

export type Passkey = {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  /** Synced between the user's devices (a multi-device credential), not bound to one. */
  synced: boolean;
};

/** RFC 8176 §2: a key bound to its authenticator is hardware-secured (hwk); a synced one, swk. */
export type PasskeyFactor = 'hwk' | 'swk';
const factorOf = (deviceType: string): PasskeyFactor =>
  deviceType === 'multiDevice' ? 'swk' : 'hwk';

export type PasskeyCheck =
  | { ok: true; userId: string; factor: PasskeyFactor }
  | { ok: false; reason: 'expired' | 'unknown_passkey' | 'wrong_passkey' };

type Row = {
  id: string;
  user_id: string;
  public_key: Uint8Array;
  counter: string | number;
  transports: string[];
  device_type: string;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
};

export const passkeyName = (name: string | undefined) =>
  (name ?? '').replace(/\s+/g, ' ').trim().slice(0, PASSKEY_NAME_MAX);

/**
 * Passkeys (WebAuthn credentials) of users: the two ceremonies, each answer checked against a
 * single-use challenge bound to what asked for it, and the list a user manages. The relying party
 * is the issuer: its host name is the RP ID, its origin the only accepted origin.
 */
export function createPasskeys(
  db: Db,
  challenges: Challenges,
  { issuer, productName }: { issuer: string; productName: string },
) {
  const { hostname: rpID, origin } = new URL(issuer);
  const table = () => db<Row>('webauthn_credentials');
  const descriptors = async (userId: string) =>
    (await table().where({ user_id: userId }).select('id', 'transports')).map((r) => ({
      id: r.id,
      transports: r.transports,
    }));
  // The user handle is the user id's bytes: a discoverable credential names its owner with it.
  const userHandle = (userId: string) => new TextEncoder().encode(userId);

  return {
    async list(userId: string): Promise<Passkey[]> {
      const rows = await table().where({ user_id: userId }).orderBy('created_at');
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        createdAt: new Date(r.created_at),
        lastUsedAt: r.last_used_at && new Date(r.last_used_at),
        synced: r.device_type === 'multiDevice',
      }));
    },

    /** Options for navigator.credentials.create(); `binding` is the asking session. */
    async registrationOptions(
      user: { id: string; email: string; name?: string | null },
      binding: string,
    ) {
      const options = await (
        await webauthn()
      ).generateRegistrationOptions({
        rpName: productName,
        rpID,
        userName: user.email,
        userID: userHandle(user.id),
        userDisplayName: user.name || user.email,
        timeout: PASSKEY_TIMEOUT_MS,
        attestationType: 'none',
        excludeCredentials: await descriptors(user.id),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      });
      await challenges.issue(`register:${user.id}:${binding}`, options.challenge);
      return options;
    },

    /**
     * Checks the answer to registrationOptions() and keeps the new passkey; the factor it is
     * (hwk or swk), or undefined if refused.
     */
    async register(
      userId: string,
      binding: string,
      json: string | undefined,
      name: string,
    ): Promise<PasskeyFactor | undefined> {
      const expectedChallenge = await challenges.take(`register:${userId}:${binding}`);
      const response = parseRegistration(json);
      if (!expectedChallenge || !response) return undefined;
      const verified = await (
        await webauthn()
      )
        .verifyRegistrationResponse({
          response,
          expectedChallenge,
          expectedOrigin: origin,
          expectedRPID: rpID,
          requireUserVerification: false,
        })
        .catch(() => undefined);
      if (!verified?.verified) return undefined;
      const { credential, credentialDeviceType, credentialBackedUp } = verified.registrationInfo;
      const inserted = await table()
        .insert({
          id: credential.id,
          user_id: userId,
          public_key: Buffer.from(credential.publicKey),
          counter: credential.counter,
          transports: JSON.stringify(credential.transports ?? []) as never,
          device_type: credentialDeviceType,
          backed_up: credentialBackedUp,
          name: passkeyName(name) || 'Passkey',
        } as never)
        .onConflict('id')
        .ignore();
      return affected(inserted) === 1 ? factorOf(credentialDeviceType) : undefined;
    },

    /**
     * Options for navigator.credentials.get(): the user's passkeys as a second factor (undefined
     * when they have none: an empty list would let the browser offer any passkey), or any
     * discoverable passkey of this site (no userId: passwordless), which must verify the user.
     */
    async authenticationOptions(binding: string, userId?: string) {
      const allowCredentials = userId ? await descriptors(userId) : undefined;
      if (allowCredentials?.length === 0) return undefined;
      const options = await (
        await webauthn()
      ).generateAuthenticationOptions({
        rpID,
        timeout: PASSKEY_TIMEOUT_MS,
        userVerification: userId ? 'preferred' : 'required',
        ...(allowCredentials && { allowCredentials }),
      });
      await challenges.issue(
        userId ? `mfa:${userId}:${binding}` : `login:${binding}`,
        options.challenge,
      );
      return options;
    },

    /** Checks the answer to authenticationOptions(binding, userId) with the same arguments. */
    async authenticate(
      binding: string,
      json: string | undefined,
      userId?: string,
    ): Promise<PasskeyCheck> {
      const expectedChallenge = await challenges.take(
        userId ? `mfa:${userId}:${binding}` : `login:${binding}`,
      );
      if (!expectedChallenge) return { ok: false, reason: 'expired' };
      const response = parseAuthentication(json);
      if (!response) return { ok: false, reason: 'wrong_passkey' };
      const row = await table().where({ id: response.id }).first();
      if (!row || (userId && row.user_id !== userId))
        return { ok: false, reason: 'unknown_passkey' };
      const handle = response.response.userHandle;
      // WebAuthn L3 §7.2 step 6: a user handle, when given, must be the credential's owner.
      if (handle && Buffer.from(handle, 'base64url').toString('utf8') !== row.user_id)
        return { ok: false, reason: 'wrong_passkey' };
      const verified = await (
        await webauthn()
      )
        .verifyAuthenticationResponse({
          response,
          expectedChallenge,
          expectedOrigin: origin,
          expectedRPID: rpID,
          credential: {
            id: row.id,
            publicKey: new Uint8Array(row.public_key),
            counter: Number(row.counter),
            transports: row.transports,
          },
          requireUserVerification: !userId,
        })
        .catch(() => undefined);
      if (!verified?.verified) return { ok: false, reason: 'wrong_passkey' };
      const info = verified.authenticationInfo;
      await table()
        .where({ id: row.id })
        .update({
          counter: info.newCounter,
          backed_up: info.credentialBackedUp,
          last_used_at: db.fn.now(),
        } as never);
      return { ok: true, userId: row.user_id, factor: factorOf(info.credentialDeviceType) };
    },

    async rename(userId: string, id: string, name: string): Promise<boolean> {
      const clean = passkeyName(name);
      if (!clean) return false;
      return affected(await table().where({ user_id: userId, id }).update({ name: clean })) === 1;
    },

    async remove(userId: string, id: string): Promise<boolean> {
      return affected(await table().where({ user_id: userId, id }).delete()) === 1;
    },
  };
}

export type Passkeys = ReturnType<typeof createPasskeys>;
