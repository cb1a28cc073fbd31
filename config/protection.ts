import type { Parsed } from './defaults.ts';

/**
 * The settings of brute-force protection, rate limits, trusted proxies and audit retention, as
 * the server reads them (part of Config).
 */
export function protectionConfig(c: Parsed) {
  return {
    /** Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed; empty: none. */
    trustProxy: c.TRUST_PROXY,
    /** Each limit, or undefined where turned off. */
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
      admin_api: c.RATE_LIMIT_ADMIN_API,
      email_change: c.RATE_LIMIT_EMAIL_CHANGE,
    },
    /** Failed sign-ins in a row that lock an account (0: never), and the growing lock periods. */
    lockout: { threshold: c.LOCKOUT_THRESHOLD, periodsSeconds: c.LOCKOUT_PERIODS },
    /** Device cookies' lifetime, and the sign-in attempts checked at once per account and per IP. */
    signIn: {
      deviceCookieDays: c.LOGIN_DEVICE_COOKIE_DAYS,
      inFlight: { account: c.LOGIN_IN_FLIGHT_ACCOUNT, ip: c.LOGIN_IN_FLIGHT_IP },
    },
    /** Days audit rows stay in the table (0: forever) and where older rows are archived. */
    auditRetention: {
      days: c.AUDIT_RETENTION_DAYS,
      archiveDir: c.AUDIT_ARCHIVE_DIR || `${c.DATA_DIR.replace(/\/$/, '')}/audit-archive`,
      checkSeconds: c.AUDIT_RETENTION_CHECK_SECONDS,
    },
    /** Seconds within which alike refusals share one counted audit row (0: one row each). */
    auditFailureWindowSeconds: c.AUDIT_FAILURE_WINDOW,
  };
}

export type RateLimitName = keyof ReturnType<typeof protectionConfig>['rateLimits'];
