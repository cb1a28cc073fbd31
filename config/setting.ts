import proxyaddr from 'proxy-addr';
import { z } from 'zod';

// What a setting is, and each kind of value a setting's text is read as: once, so that every
// setting of a kind takes the same spellings and names the same problem.

/**
 * A setting: the value it takes when its variable is unset or empty, and the schema that reads
 * the variable's text (and names the problem when it cannot).
 */
export const setting = <const T extends string | number | boolean, S extends z.ZodType>(
  value: T,
  schema: S,
) => ({ value, schema });

type Setting = ReturnType<typeof setting>;

/** What a group of settings reads as, one value per variable. */
export type Read<Group extends Record<string, Setting>> = {
  [K in keyof Group]: z.output<Group[K]['schema']>;
};

/** true/false, 1/0 or yes/no; a default written as a boolean passes as it is. */
export const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

/** A whole number of at least min (and at most max). */
export const int = (min: number, max?: number) => {
  const atLeast = z.coerce.number().int().min(min);
  return max === undefined ? atLeast : atLeast.max(max);
};

/** Empty, or a URL. */
export const optionalUrl = z.union([z.literal(''), z.url()]);

/** Comma-separated, each entry trimmed, empty ones dropped. */
export const list = z.string().transform((text) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/** Email domains, comma-separated; compared lower-cased. */
export const domains = list.transform((names) => names.map((d) => d.toLowerCase()));

/** "a:1,b:2" → [{ host: 'a', port: 1 }, { host: 'b', port: 2 }] */
export const hostPorts = z
  .string()
  .regex(/^$|^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$/, 'host:port, comma-separated')
  .transform((text) =>
    text
      .split(',')
      .filter(Boolean)
      .map((s) => ({
        host: s.slice(0, s.lastIndexOf(':')),
        port: Number(s.slice(s.lastIndexOf(':') + 1)),
      })),
  );

/** IPs, CIDR ranges, or proxy-addr's names for the private ranges; `false` counts as none. */
export const proxies = z
  .string()
  .transform((text) =>
    text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s && s !== 'false'),
  )
  .refine(
    (names) => {
      try {
        proxyaddr.compile(names);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'comma-separated proxy addresses or CIDR ranges (or loopback, uniquelocal)' },
  );

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** "15m" → 900; undefined when not a positive duration. */
function seconds(text: string): number | undefined {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  const value = m ? Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS] : 0;
  return value > 0 ? value : undefined;
}

/** A positive duration like 5m, in seconds. */
export const duration = z
  .string()
  .transform((text) => seconds(text) ?? NaN)
  .refine((value) => value > 0, { message: 'a duration like 5m' });

/** Durations like 1m,5m,15m,1h, in seconds. */
export const durations = z
  .string()
  .transform((text) => text.split(',').map((d) => seconds(d) ?? NaN))
  .refine((values) => values.length > 0 && values.every((s) => s > 0), {
    message: 'comma-separated durations like 1m,5m,15m,1h',
  });

/** A duration up to `max` seconds, or `off` (0). */
export const durationOrOff = (max: number, message: string) =>
  z.string().transform((text, ctx): number => {
    if (text.trim() === 'off') return 0;
    const value = seconds(text);
    if (!value || value > max) {
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    return value;
  });

export type Limit = { points: number; seconds: number };

/** "30/5m" → 30 per 300 seconds; "off" → undefined (no limit). */
export const limit = z.string().transform((text, ctx): Limit | undefined => {
  if (text.trim() === 'off') return undefined;
  const [points, per] = text.split('/');
  const window = seconds(per ?? '');
  if (!/^\d+$/.test(points?.trim() ?? '') || Number(points) < 1 || !window) {
    ctx.addIssue({ code: 'custom', message: 'a limit like 30/5m (count/duration) or off' });
    return z.NEVER;
  }
  return { points: Number(points), seconds: window };
});
