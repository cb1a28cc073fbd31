import { standingSessions } from './session-rule.ts';
import type { AdapterPayload } from 'oidc-provider';
import type { Services } from '../services.ts';
import type { User } from './store.ts';

type Deps = Pick<Services, 'db' | 'adapter' | 'config'>;

/** Bumped when a field changes meaning or goes; docs/account-export.md describes each. */
export const EXPORT_FORMAT = 'latchkey-account-export/1';

const iso = (value: Date | string | null | undefined) =>
  value ? new Date(value).toISOString() : null;
const fromEpoch = (seconds: unknown) =>
  typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : null;
const parse = <T>(value: unknown): T =>
  (typeof value === 'string' ? JSON.parse(value) : value) as T;

/**
 * Audit detail that names a stored grant: a handle on its tokens (what revokes them), left out
 * of the file like the grants' own ids. The client it was for stays.
 */
const HANDLE_KEYS = new Set(['grant']);
const withoutHandles = (detail: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(detail).filter(([key]) => !HANDLE_KEYS.has(key)));

/** What a stored grant allowed, without its id (a handle on tokens) or any token. */
function grantFacts(payload: AdapterPayload) {
  return {
    clientId: payload.clientId ?? null,
    scope: (payload.openid as { scope?: string } | undefined)?.scope ?? '',
    claims: (payload.openid as { claims?: string[] } | undefined)?.claims ?? [],
    apis: payload.resources ?? {},
    createdAt: fromEpoch(payload.iat),
    expiresAt: fromEpoch(payload.exp),
  };
}

/** A browser session, without its id (the cookie's value) or the per-app `sid`s. */
function sessionFacts(payload: AdapterPayload, current: boolean) {
  const authorizations = (payload.authorizations ?? {}) as Record<string, unknown>;
  return {
    thisSession: current,
    signedInAt: fromEpoch(payload.loginTs),
    lastActiveAt: fromEpoch(payload.iat),
    expiresAt: fromEpoch(payload.exp),
    methods: (payload.amr as string[] | undefined) ?? [],
    assurance: payload.acr ?? null,
    apps: Object.keys(authorizations),
  };
}

/**
 * Everything Latchkey keeps about a user, as one JSON document (GDPR Art. 15 and 20): what is
 * about them, never what proves them (password and recovery code hashes, authenticator
 * secrets, passkeys' public keys, email link tokens) nor the values and ids of tokens and
 * sessions. docs/account-export.md describes each field; test/e2e/account-export.test.ts holds
 * it to that.
 */
export async function exportAccount(
  { db, adapter, config }: Deps,
  user: User,
  currentSession?: string,
) {
  const id = user.id;
  const [consents, devices, totp, recovery, passkeys, emailLinks, passwords, audit] =
    await Promise.all([
      db('consents')
        .leftJoin('clients', 'clients.client_id', 'consents.client_id')
        .where({ account_id: id })
        .select('consents.*', db.raw(`clients.metadata->>'client_name' as client_name`))
        .orderBy('consents.client_id'),
      db('known_devices').where({ user_id: id }).orderBy('first_seen'),
      db('totp_factors').where({ user_id: id }).select('confirmed_at', 'created_at').first(),
      db('recovery_codes').where({ user_id: id }).select('used_at'),
      db('webauthn_credentials')
        .where({ user_id: id })
        .select('name', 'device_type', 'backed_up', 'transports', 'created_at', 'last_used_at')
        .orderBy('created_at'),
      db('email_tokens')
        .where({ user_id: id })
        .select('purpose', 'created_at', 'expires_at', 'used_at')
        .orderBy('created_at'),
      db('password_history').where({ user_id: id }).select('created_at').orderBy('created_at'),
      db('audit_events')
        .where({ subject: id })
        .select('at', 'last_at', 'count', 'type', 'outcome', 'actor_type', 'ip', 'user_agent')
        .select('detail')
        .orderBy('at', 'desc'),
    ]);
  const [sessions, grants] = await Promise.all([
    standingSessions(adapter, user),
    adapter.grantsOf(id),
  ]);

  return {
    format: EXPORT_FORMAT,
    exportedAt: new Date().toISOString(),
    issuer: config.issuer,
    profile: {
      id,
      email: user.email,
      emailVerified: user.email_verified,
      name: user.name,
      givenName: user.given_name,
      familyName: user.family_name,
      source: user.source,
      createdAt: iso(user.created_at),
      updatedAt: iso(user.updated_at),
      disabled: user.disabled,
      lockedUntil: iso(user.locked_until),
      ownerLockedAt: iso(user.owner_locked_at),
      signedOutEverywhereAt: fromEpoch(Number(user.sessions_valid_from) || undefined),
    },
    roles: user.roles,
    consents: consents.map((c) => ({
      clientId: c.client_id,
      clientName: c.client_name ?? null,
      scope: c.scope,
      claims: parse<string[]>(c.claims),
      apis: parse<Record<string, string>>(c.resources),
      updatedAt: iso(c.updated_at),
    })),
    grants: grants.map((g) => grantFacts(g.payload)),
    sessions: sessions.map((s) => sessionFacts(s.payload, s.id === currentSession)),
    knownDevices: devices.map((d) => ({
      device: d.description,
      ip: d.ip,
      firstSeen: iso(d.first_seen),
      lastSeen: iso(d.last_seen),
    })),
    secondFactors: {
      authenticatorApp: totp
        ? { addedAt: iso(totp.created_at), confirmedAt: iso(totp.confirmed_at) }
        : null,
      recoveryCodes: {
        total: recovery.length,
        used: recovery.filter((r) => r.used_at).length,
      },
      passkeys: passkeys.map((p) => ({
        name: p.name,
        type: p.device_type === 'multiDevice' ? 'synced' : 'device-bound',
        backedUp: p.backed_up,
        transports: parse<string[]>(p.transports),
        addedAt: iso(p.created_at),
        lastUsedAt: iso(p.last_used_at),
      })),
    },
    passwordChanges: passwords.map((p) => iso(p.created_at)),
    emailLinks: emailLinks.map((l) => ({
      purpose: l.purpose,
      sentAt: iso(l.created_at),
      expiresAt: iso(l.expires_at),
      usedAt: iso(l.used_at),
    })),
    auditEvents: audit.map((a) => ({
      at: iso(a.at),
      lastAt: iso(a.last_at),
      count: a.count,
      type: a.type,
      outcome: a.outcome,
      by: a.actor_type,
      ip: a.ip,
      userAgent: a.user_agent,
      detail: withoutHandles(parse<Record<string, unknown>>(a.detail)),
    })),
  };
}

export type AccountExport = Awaited<ReturnType<typeof exportAccount>>;
