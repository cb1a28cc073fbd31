import proxyaddr from 'proxy-addr';
import { z } from 'zod';

// Settings of brute-force protection, rate limits, trusted proxies and audit retention: their
// schema and the typed view loadConfig builds from them.

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** "15m" → 900; undefined when not a positive duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS] : 0;
  return seconds > 0 ? seconds : undefined;
}

export type Limit = { points: number; seconds: number };

/** "30/5m" → 30 per 300 seconds; "off" → undefined (no limit). */
const limit = z.string().transform((text, ctx): Limit | undefined => {
  if (text.trim() === 'off') return undefined;
  const [points, duration] = text.split('/');
  const seconds = parseDuration(duration ?? '');
  if (!/^\d+$/.test(points?.trim() ?? '') || Number(points) < 1 || !seconds) {
    ctx.addIssue({ code: 'custom', message: 'a limit like 30/5m (count/duration) or off' });
    return z.NEVER;
  }
  return { points: Number(points), seconds };
});

/** IPs, CIDR ranges, or proxy-addr's names for the private ranges. */
function validProxies(list: string[]): boolean {
  try {
    proxyaddr.compile(list);
    return true;
  } catch {
    return false;
  }
}

export const protectionSchema = {
  TRUST_PROXY: z
    .string()
    .transform((text) =>
      text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s && s !== 'false'),
    )
    .refine(validProxies, {
      message: 'comma-separated proxy addresses or CIDR ranges (or loopback, uniquelocal)',
    }),
  RATE_LIMIT_LOGIN_IP: limit,
  RATE_LIMIT_LOGIN_ACCOUNT: limit,
  RATE_LIMIT_LOGIN_DEVICE: limit,
  LOGIN_DEVICE_COOKIE_DAYS: z.coerce.number().int().min(1),
  LOGIN_IN_FLIGHT_ACCOUNT: z.coerce.number().int().min(1),
  LOGIN_IN_FLIGHT_IP: z.coerce.number().int().min(1),
  RATE_LIMIT_REGISTER_IP: limit,
  RATE_LIMIT_RESET_IP: limit,
  RATE_LIMIT_RESET_ACCOUNT: limit,
  RATE_LIMIT_VERIFY_IP: limit,
  RATE_LIMIT_VERIFY_ACCOUNT: limit,
  RATE_LIMIT_TOKEN_CLIENT: limit,
  RATE_LIMIT_EMAIL_CHANGE: limit,
  LOCKOUT_THRESHOLD: z.coerce.number().int().min(0),
  LOCKOUT_PERIODS: z
    .string()
    .transform((text) => text.split(',').map((d) => parseDuration(d) ?? NaN))
    .refine((list) => list.length > 0 && list.every((s) => s > 0), {
      message: 'comma-separated durations like 1m,5m,15m,1h',
    }),
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0),
  AUDIT_ARCHIVE_DIR: z.string(),
  AUDIT_RETENTION_CHECK_SECONDS: z.coerce.number().int().min(1),
  AUDIT_FAILURE_WINDOW: z.string().transform((text, ctx): number => {
    if (text.trim() === 'off') return 0;
    const seconds = parseDuration(text);
    if (!seconds || seconds > 86_400) {
      ctx.addIssue({ code: 'custom', message: 'a duration up to 1d, like 15m, or off' });
      return z.NEVER;
    }
    return seconds;
  }),
};

type Parsed = { [K in keyof typeof protectionSchema]: z.output<(typeof protectionSchema)[K]> };

export type RateLimitName =
  | 'login_ip'
  | 'login_account'
  | 'login_device'
  | 'register_ip'
  | 'reset_ip'
  | 'reset_account'
  | 'verify_ip'
  | 'verify_account'
  | 'token_client'
  | 'email_change';

export type ProtectionConfig = {
  /** Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed; empty: none. */
  trustProxy: string[];
  /** Each limit, or undefined where turned off. */
  rateLimits: Record<RateLimitName, Limit | undefined>;
  /** Failed sign-ins in a row that lock an account (0: never), and the growing lock periods. */
  lockout: { threshold: number; periodsSeconds: number[] };
  /** Device cookies' lifetime, and the sign-in attempts checked at once per account and per IP. */
  signIn: { deviceCookieDays: number; inFlight: { account: number; ip: number } };
  /** Days audit rows stay in the table (0: forever) and where older rows are archived. */
  auditRetention: { days: number; archiveDir: string; checkSeconds: number };
  /** Seconds within which alike refusals share one counted audit row (0: one row each). */
  auditFailureWindowSeconds: number;
};

export function protectionConfig(c: Parsed, dataDir: string): ProtectionConfig {
  return {
    trustProxy: c.TRUST_PROXY,
    rateLimits: {
      login_ip: c.RATE_LIMIT_LOGIN_IP,
      login_account: c.RATE_LIMIT_LOGIN_ACCOUNT,
      login_device: c.RATE_LIMIT_LOGIN_DEVICE,
      register_ip: c.RATE_LIMIT_REGISTER_IP,
      reset_ip: c.RATE_LIMIT_RESET_IP,
      reset_account: c.RATE_LIMIT_RESET_ACCOUNT,
      verify_ip: c.RATE_LIMIT_VERIFY_IP,
      verify_account: c.RATE_LIMIT_VERIFY_ACCOUNT,
      token_client: c.RATE_LIMIT_TOKEN_CLIENT,
      email_change: c.RATE_LIMIT_EMAIL_CHANGE,
    },
    lockout: { threshold: c.LOCKOUT_THRESHOLD, periodsSeconds: c.LOCKOUT_PERIODS },
    signIn: {
      deviceCookieDays: c.LOGIN_DEVICE_COOKIE_DAYS,
      inFlight: { account: c.LOGIN_IN_FLIGHT_ACCOUNT, ip: c.LOGIN_IN_FLIGHT_IP },
    },
    auditRetention: {
      days: c.AUDIT_RETENTION_DAYS,
      archiveDir: c.AUDIT_ARCHIVE_DIR || `${dataDir.replace(/\/$/, '')}/audit-archive`,
      checkSeconds: c.AUDIT_RETENTION_CHECK_SECONDS,
    },
    auditFailureWindowSeconds: c.AUDIT_FAILURE_WINDOW,
  };
}
