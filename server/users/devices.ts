import { createHash } from 'node:crypto';
import { UAParser } from 'ua-parser-js';
import type { Config } from '../../config/load.ts';
import { userEvent, type Audit, type RequestFacts } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { EmailTokens } from './email-tokens.ts';
import { secureAccountLink } from './secure-account.ts';

export type Device = { fingerprint: string; description: string; ip: string };

/** "Chrome on Linux": the parts of a user agent a person recognises, and that rarely change. */
export function describeDevice(userAgent: string, ip: string): Device {
  const { key, description } = parseUserAgent(userAgent);
  const fingerprint = createHash('sha256').update(`${key}|${ip}`).digest('base64url');
  return { fingerprint, description, ip };
}

/** "Chrome on Linux" for a user agent alone (the account's sessions page). */
export const deviceName = (userAgent: string): string => parseUserAgent(userAgent).description;

// Parsing a user agent takes a series of regular expressions; a server sees few distinct ones.
const parsedAgents = new Map<string, { key: string; description: string }>();
const MAX_PARSED_AGENTS = 1000;

function parseUserAgent(userAgent: string) {
  let parsed = parsedAgents.get(userAgent);
  if (parsed) return parsed;
  const { browser, os, device } = UAParser(userAgent);
  parsed = {
    key: `${browser.name}|${os.name}|${device.model}`,
    description: [
      browser.name ?? 'Unknown browser',
      os.name && `on ${os.name}`,
      device.model && `(${device.model})`,
    ]
      .filter(Boolean)
      .join(' '),
  };
  if (parsedAgents.size >= MAX_PARSED_AGENTS) parsedAgents.clear();
  parsedAgents.set(userAgent, parsed);
  return parsed;
}

/** The devices (user agent + IP) each user has signed in from. */
export function createDeviceStore(db: Db) {
  return {
    /**
     * Records a sign-in; says whether the device is new to a user who had signed in before
     * (the very first sign-in is not news to anyone).
     */
    async recordSignIn(
      userId: string,
      device: Device,
      trx: Db = db,
    ): Promise<'known' | 'new' | 'first'> {
      // One statement: the CTE reads the devices as they were before its own insert.
      const { rows } = await trx.raw<{ rows: { devices: string; seen: boolean | null }[] }>(
        `with before as (
           select count(*) as devices, bool_or(fingerprint = :fingerprint) as seen
           from known_devices where user_id = :userId
         ), recorded as (
           insert into known_devices (user_id, fingerprint, description, ip, last_seen)
           values (:userId, :fingerprint, :description, :ip, now())
           on conflict (user_id, fingerprint) do update set last_seen = excluded.last_seen
         )
         select devices, seen from before`,
        { userId, ...device },
      );
      const [before] = rows;
      if (!before || Number(before.devices) === 0) return 'first';
      return before.seen ? 'known' : 'new';
    },
  };
}

export type DeviceStore = ReturnType<typeof createDeviceStore>;

type NoticeDeps = {
  db: Db;
  audit: Audit;
  devices: DeviceStore;
  mailer: Pick<Mailer, 'sendInBackground'>;
  config: Config;
  tokens: EmailTokens;
};

/**
 * After a sign-in: remembers the device and, when it is new for the user, records a
 * `new_device_sign_in` audit row about them (their security activity shows it) and emails them
 * with a "this wasn't me" link. Runs in the background (the user does not wait for mail);
 * failures are logged. The device and its row commit together: a try again after a failed
 * write still finds the device new.
 */
export function newDeviceNotice(deps: NoticeDeps) {
  const { db, audit, devices, mailer } = deps;
  return (user: { id: string; email: string; name: string | null }, facts: RequestFacts): void => {
    const ip = facts.ip ?? '';
    const device = describeDevice(facts.userAgent ?? '', ip);
    const at = new Date();
    const event = userEvent('new_device_sign_in', user.id, { device: device.description });
    mailer.sendInBackground(async () => {
      const seen = await db.transaction(async (trx) => {
        const found = await devices.recordSignIn(user.id, device, trx);
        if (found === 'new') await audit.within(trx, event, facts);
        return found;
      });
      if (seen !== 'new') return undefined;
      return {
        to: user.email,
        template: 'new-device',
        data: {
          device: device.description,
          ip,
          time: new Date(),
          ...(await secureAccountLink(deps, user.id, 'new_device', { at })),
          name: user.name ?? undefined,
        },
      };
    });
  };
}
