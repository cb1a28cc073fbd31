import { createHash } from 'node:crypto';
import { UAParser } from 'ua-parser-js';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import type { Mailer } from '../mail/mailer.ts';

export type Device = { fingerprint: string; description: string; ip: string };

/** "Chrome on Linux": the parts of a user agent a person recognises, and that rarely change. */
export function describeDevice(userAgent: string, ip: string): Device {
  const { browser, os, device } = UAParser(userAgent);
  const description = [
    browser.name ?? 'Unknown browser',
    os.name && `on ${os.name}`,
    device.model && `(${device.model})`,
  ]
    .filter(Boolean)
    .join(' ');
  const fingerprint = createHash('sha256')
    .update(`${browser.name}|${os.name}|${device.model}|${ip}`)
    .digest('base64url');
  return { fingerprint, description, ip };
}

/** The devices (user agent + IP) each user has signed in from. */
export function createDeviceStore(db: Db) {
  return {
    /**
     * Records a sign-in; says whether the device is new to a user who had signed in before
     * (the very first sign-in is not news to anyone).
     */
    async recordSignIn(userId: string, device: Device): Promise<'known' | 'new' | 'first'> {
      const known = await db('known_devices').where({ user_id: userId }).select('fingerprint');
      await db('known_devices')
        .insert({ user_id: userId, ...device, last_seen: new Date() })
        .onConflict(['user_id', 'fingerprint'])
        .merge(['last_seen']);
      if (known.length === 0) return 'first';
      return known.some((d: { fingerprint: string }) => d.fingerprint === device.fingerprint)
        ? 'known'
        : 'new';
    },
  };
}

export type DeviceStore = ReturnType<typeof createDeviceStore>;

type NoticeDeps = {
  devices: DeviceStore;
  mailer: { send: Mailer['send'] };
  issuer: string;
  log: Logger;
};

/**
 * After a sign-in: remembers the device and, when it is new for the user, emails them. Runs
 * beside the request (the user does not wait for mail); failures are logged.
 */
export function newDeviceNotice({ devices, mailer, issuer, log }: NoticeDeps) {
  return (
    user: { id: string; email: string; name: string | null },
    userAgent: string,
    ip: string,
  ): void => {
    const device = describeDevice(userAgent, ip);
    devices
      .recordSignIn(user.id, device)
      .then(async (seen) => {
        if (seen !== 'new') return;
        await mailer.send({
          to: user.email,
          template: 'new-device',
          data: {
            device: device.description,
            ip,
            time: new Date(),
            link: `${issuer}/`,
            name: user.name ?? undefined,
          },
        });
      })
      .catch((err) => log.error({ err }, 'new device notice failed'));
  };
}
