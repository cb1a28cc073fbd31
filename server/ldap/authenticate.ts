import type { Entry } from 'ldapts';
import type { LdapConfig } from '../../config/ldap.ts';
import type { AccountSignOut } from '../users/sign-out.ts';
import type { Audit } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import type { DirectoryGuard } from './breaker.ts';
import {
  closeConnection,
  isConnectionFailure,
  isInvalidCredentials,
  openConnection,
  type Connection,
} from './connection.ts';
import { escapeDnValue, sameDn } from './dn.ts';
import {
  stableId,
  toDirectoryUser,
  UnusableEntryError,
  userAttributes,
  type DirectoryUser,
} from './entries.ts';
import { matchingAny } from './filters.ts';
import { groupsOf, rolesOf } from './groups.ts';
import {
  applyLink,
  DirectoryConflictError,
  directoryEvent,
  endReplaced,
  findLinked,
  planLink,
  signOutDisabled,
  type LinkedUser,
} from './linked-users.ts';
import type { ConnectionPool } from './pool.ts';
import type { DirectorySettings } from './presets.ts';
import { searchFew } from './search.ts';

export type SignInResult =
  { ok: true; user: LinkedUser } | { ok: false; reason: 'invalid' | 'disabled' | 'unavailable' };

export type SignInDeps = {
  config: LdapConfig;
  settings: DirectorySettings;
  pool: ConnectionPool | undefined;
  guard: DirectoryGuard;
  db: Db;
  log: Logger;
  audit: Audit;
  signOut: AccountSignOut;
};

/** Longer logins are not names anyone has; refusing them keeps filters and binds small. */
const MAX_LOGIN_LENGTH = 256;

const INVALID = { ok: false, reason: 'invalid' } as const;

/** A directory entry found for a login, with the groups it is in. */
export type FoundEntry = { user: DirectoryUser; groups: Set<string> };

/**
 * Finds the entry for a login and proves the password by binding as it. Undefined when no
 * entry matches or the bind fails with 49; connection failures are thrown.
 */
export async function findAndBind(
  deps: Pick<SignInDeps, 'config' | 'settings' | 'pool' | 'guard' | 'log'>,
  login: string,
  password: string,
): Promise<FoundEntry | undefined> {
  const { config, settings: s, pool } = deps;
  const read = (client: Connection, base: string, scope: 'base' | 'sub') =>
    searchFew(
      client,
      {
        base,
        scope,
        filter:
          scope === 'base' ? s.userFilter : matchingAny(s.userFilter, s.loginAttributes, login),
        attributes: userAttributes(s),
        binary: s.binaryId ? [s.attributes.id] : [],
      },
      2,
    );
  const withGroups = async (client: Connection, entry: Entry): Promise<FoundEntry> => {
    const user = toDirectoryUser(entry, s);
    return { user, groups: await groupsOf(client, s, user, config.pageSize) };
  };

  if (s.bindTemplate) {
    // Direct bind: the login names the entry; the entry is read as itself (or by the service).
    const dn = s.bindTemplate.replaceAll('{login}', escapeDnValue(login));
    const own = await bindAs(deps, dn, password);
    if (!own) return undefined;
    const readOwn = async (client: Connection) => {
      const [entry] = await read(client, dn, 'base');
      return entry ? withGroups(client, entry) : undefined;
    };
    try {
      return pool ? await pool.use(readOwn) : await deps.guard(() => readOwn(own));
    } finally {
      closeConnection(own);
    }
  }

  const entries = await pool!.use((client) => read(client, s.userBase, 'sub'));
  if (entries.length !== 1) {
    if (entries.length > 1) deps.log.warn('directory sign-in: the login matches several entries');
    // The same round trip as a real bind, so an unknown login takes as long as a wrong password.
    await bindAs(deps, `cn=no-such-entry,${s.userBase}`, password).then(
      (c) => c && closeConnection(c),
    );
    return undefined;
  }
  const connection = await bindAs(deps, entries[0]!.dn, password);
  if (!connection) return undefined;
  closeConnection(connection);
  return pool!.use((client) => withGroups(client, entries[0]!));
}

/**
 * The local account already linked to the entry a login names, found without a password (by
 * the service account's search, or by the DN a bind template makes), so that guesses at a
 * directory user count against the account whichever login is typed. Undefined when none is
 * linked yet or the directory cannot say.
 */
export async function linkedAccountOf(
  deps: Pick<SignInDeps, 'settings' | 'pool' | 'db' | 'log'>,
  login: string,
): Promise<LinkedUser | undefined> {
  const { settings: s, pool, db } = deps;
  const name = login.trim();
  if (!name || name.length > MAX_LOGIN_LENGTH) return undefined;
  try {
    if (s.bindTemplate) {
      // The directory binds `ｄａｖｅ` or `𝐝𝐚𝐯𝐞` as `dave` (RFC 4518 §2.3 folds compatibility
      // characters): the account is looked up by the DN so folded, or each spelling escapes it.
      const dn = s.bindTemplate.replaceAll('{login}', escapeDnValue(name.normalize('NFKC')));
      const linked = await db<LinkedUser>('users')
        .where({ source: 'ldap' })
        .whereRaw('lower(directory_dn) = lower(?)', [dn]);
      return linked.find((u) => u.directory_dn && sameDn(u.directory_dn, dn));
    }
    if (!pool) return undefined;
    const entries = await pool.use((client) =>
      searchFew(
        client,
        {
          base: s.userBase,
          scope: 'sub',
          filter: matchingAny(s.userFilter, s.loginAttributes, name),
          attributes: userAttributes(s),
          binary: s.binaryId ? [s.attributes.id] : [],
        },
        2,
      ),
    );
    if (entries.length !== 1) return undefined;
    // By its stable id alone: an entry that is no user any more (no email) is still its account's.
    return await findLinked(db, stableId(entries[0]!, s));
  } catch (err) {
    // The sign-in's own search meets the same trouble and says what it is.
    deps.log.debug({ err }, 'directory account lookup failed');
    return undefined;
  }
}

/** A connection bound as `dn`, or undefined when the directory says the credentials are wrong. */
async function bindAs(
  { config, guard }: Pick<SignInDeps, 'config' | 'guard'>,
  dn: string,
  password: string,
): Promise<Connection | undefined> {
  try {
    return await guard((signal) => openConnection(config, { dn, password }, signal));
  } catch (err) {
    if (isInvalidCredentials(err)) return undefined;
    // Other refusals of a user's bind (unwillingToPerform, a malformed DN) are the user's, not
    // an outage.
    if (!isConnectionFailure(err)) return undefined;
    throw err;
  }
}

/** Directory sign-in: find, bind, then create or update the local user just in time. */
export function createDirectorySignIn(deps: SignInDeps) {
  const { db, log, audit, signOut, config, settings } = deps;

  async function link(found: FoundEntry): Promise<SignInResult> {
    const roles = rolesOf(found.groups, settings.groupRoles);
    for (let attempt = 0; ; attempt++) {
      const local = await findLinked(db, found.user.id);
      const plan = planLink(local, found.user, roles, config.emailVerified);
      if (plan.action === 'skip') return { ok: false, reason: 'disabled' };
      try {
        const { user: linked, replaced } = await applyLink(db, plan);
        const user = linked!;
        if (replaced) await endReplaced(replaced, user.id, { signOut, audit });
        if (plan.action === 'create')
          await audit(directoryEvent('user_created', user.id, { source: 'ldap' }));
        if (plan.action === 'disable') await signOutDisabled(user.id, { signOut, audit });
        return user.disabled ? { ok: false, reason: 'disabled' } : { ok: true, user };
      } catch (err) {
        // A concurrent sign-in or sync linked the entry first: read it again and update.
        if (err instanceof DirectoryConflictError && err.field === 'directory_id' && attempt === 0)
          continue;
        throw err;
      }
    }
  }

  return async function authenticate(login: string, password: string): Promise<SignInResult> {
    const name = login.trim();
    // An empty password would be an unauthenticated bind, which succeeds (RFC 4513 §5.1.2).
    if (!name || !password || name.length > MAX_LOGIN_LENGTH) return INVALID;
    try {
      const found = await findAndBind(deps, name, password);
      return found ? await link(found) : INVALID;
    } catch (err) {
      if (err instanceof UnusableEntryError) {
        log.warn({ reason: err.message }, 'directory sign-in refused: the entry cannot be used');
        return INVALID;
      }
      if (err instanceof DirectoryConflictError) {
        log.warn({ reason: err.message }, 'directory sign-in refused: account conflict');
        return INVALID;
      }
      if (isConnectionFailure(err)) {
        log.warn({ error: (err as Error).message }, 'directory unavailable at sign-in');
        return { ok: false, reason: 'unavailable' };
      }
      log.error({ err }, 'directory sign-in failed');
      return { ok: false, reason: 'unavailable' };
    }
  };
}
