import { createHmac } from 'node:crypto';
import { generateURI, ScureBase32Plugin, verify } from 'otplib';
import { affected, type Db } from '../db.ts';
import { seal, unseal } from '../security/seal.ts';

const seedField = (userId: string) =>
  ({ table: 'totp_factors', column: 'secret_sealed', row: userId }) as const;

/** RFC 6238 as authenticator apps expect it: SHA-1, 6 digits, 30 s; ±1 step for clock drift. */
const PERIOD = 30;
const TOLERANCE_SECONDS = PERIOD;
const CODE = /^\d{6}$/;
/** 160-bit seeds, as RFC 4226 §4 recommends (and authenticator apps expect). */
const SECRET_BYTES = 20;
const BASE32 = new ScureBase32Plugin();

export type TotpEnrolment = { secret: string; uri: string; qrSvg: string };

/** Codes typed with spaces ("123 456") are fine. */
const cleanCode = (code: string) => code.replace(/\s+/g, '');

/**
 * A user's authenticator app. The seed is sealed at rest; a code is accepted once (the last
 * accepted time step is kept, and only a later one passes, also between concurrent requests).
 */
export function createTotpFactors(db: Db, sealingKey: Buffer, productName: string) {
  async function enrolment(user: { email: string }, secret: string): Promise<TotpEnrolment> {
    const uri = generateURI({ issuer: productName, label: user.email, secret });
    // qrcode is loaded at the first enrolment, not by every server at start.
    const { default: QRCode } = await import('qrcode');
    const qrSvg = await QRCode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
    return { secret, uri, qrSvg };
  }

  async function row(userId: string) {
    return db('totp_factors').where({ user_id: userId }).first();
  }

  /** The time step of a right code newer than `after`, or undefined. */
  async function matchingStep(secret: string, code: string, after: number) {
    const token = cleanCode(code);
    if (!CODE.test(token)) return undefined;
    const result = await verify({
      secret,
      token,
      epochTolerance: TOLERANCE_SECONDS,
      afterTimeStep: after,
    });
    return result.valid && 'timeStep' in result ? result.timeStep : undefined;
  }

  /**
   * The key offered to one enrolment: derived from the user and what the enrolment belongs to
   * (a sign-in's interaction, an account session), so a reload shows the same key while no
   * other session can see it. Nothing is stored until a first right code confirms it.
   */
  function enrolmentSecret(userId: string, binding: string): string {
    const mac = createHmac('sha256', sealingKey).update(`totp-enrolment:${userId}:${binding}`);
    return BASE32.encode(mac.digest().subarray(0, SECRET_BYTES));
  }

  return {
    /** The key and QR code an enrolment bound to `binding` shows. */
    offer: (user: { id: string; email: string }, binding: string) =>
      enrolment(user, enrolmentSecret(user.id, binding)),

    /**
     * Finishes the enrolment bound to `binding` with a first right code; true when the app is now
     * in use. Never replaces a confirmed seed: that is removed only on purpose (remove, reset).
     */
    async confirm(user: { id: string }, binding: string, code: string): Promise<boolean> {
      const secret = enrolmentSecret(user.id, binding);
      const step = await matchingStep(secret, code, 0);
      if (step === undefined) return false;
      const stored = await db('totp_factors')
        .insert({
          user_id: user.id,
          secret_sealed: seal(sealingKey, secret, seedField(user.id)),
          confirmed_at: db.fn.now(),
          last_step: step,
        })
        .onConflict('user_id')
        .merge(['secret_sealed', 'confirmed_at', 'last_step', 'created_at'])
        // A seed left pending by an earlier version is replaced; a confirmed one never is.
        .whereNull('totp_factors.confirmed_at')
        .returning('user_id');
      return stored.length > 0;
    },

    /** A sign-in code: right, and of a later time step than any accepted before. */
    async verify(userId: string, code: string): Promise<boolean> {
      const found = await row(userId);
      if (!found?.confirmed_at) return false;
      const last = Number(found.last_step);
      const seed = unseal(sealingKey, found.secret_sealed, seedField(userId));
      const step = await matchingStep(seed, code, last);
      if (step === undefined) return false;
      // Of two requests with the same code, only one moves last_step forward.
      const updated = await db('totp_factors')
        .where({ user_id: userId })
        .where('last_step', '<', step)
        .update({ last_step: step });
      return affected(updated) > 0;
    },

    async enrolled(userId: string): Promise<boolean> {
      return !!(await row(userId))?.confirmed_at;
    },

    async remove(userId: string): Promise<void> {
      await db('totp_factors').where({ user_id: userId }).delete();
    },
  };
}

export type TotpFactors = ReturnType<typeof createTotpFactors>;
