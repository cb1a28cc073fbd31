import type { Config } from '../../config/load.ts';
import type { Audit } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import { withAdvisoryLock } from '../locks.ts';
import type { Logger } from '../log.ts';
import { addKeySet, latestActivation, loadKeyView, type KeyView } from './store.ts';

const DAY_MS = 24 * 3600 * 1000;
/** Allowance for relying parties' clocks when deciding a retired key can leave the JWKS. */
const CLOCK_SKEW_SECONDS = 60;

/**
 * How long a key stays published after it stops signing: the longest anything it signed can
 * still be presented. That includes an ID token sent back as id_token_hint at logout, which
 * may be as old as the session (OIDC RP-Initiated Logout §2: expired hints are accepted).
 */
export function retainSeconds(config: Config): number {
  const ttls = [
    config.ttl.idToken,
    config.ttl.accessToken,
    config.ttl.clientCredentials,
    config.ttl.session,
    ...config.resourceServers.map((s) => s.accessTokenTTL ?? 0),
  ];
  return Math.max(...ttls) + CLOCK_SKEW_SECONDS;
}

/** Starts the announce stage of a rotation now: new keys published, signing after the announce period. */
export async function rotateKeys(db: Db, config: Config): Promise<string[]> {
  const activateAt = new Date(Date.now() + config.keys.announceSeconds * 1000);
  return (
    (await withAdvisoryLock(db, 'keys', (trx) => addKeySet(trx, config.sealingKey, activateAt))) ??
    []
  );
}

type Deps = {
  db: Db;
  config: Config;
  log: Logger;
  audit: Audit;
  onChange: (view: KeyView) => void;
};

/**
 * Keeps this process's view of the signing keys current: creates the first keys, rotates on
 * schedule (one process, under an advisory lock) and re-reads the table every KEY_REFRESH_SECONDS
 * and at each stage change, calling onChange when the published or signing keys differ.
 */
export async function startKeyManager({ db, config, log, audit, onChange }: Deps) {
  // Processes starting together wait for each other here, so none starts without keys.
  await withAdvisoryLock(
    db,
    'keys',
    async (trx) => {
      if (!(await latestActivation(trx))) await addKeySet(trx, config.sealingKey, new Date());
    },
    { wait: true },
  );

  let view = await loadKeyView(db, config.sealingKey, retainSeconds(config));
  if (view.jwks.length === 0) throw new Error('no signing keys in the database');
  onChange(view);
  let stageTimer: NodeJS.Timeout | undefined;

  async function refresh() {
    if (config.keys.rotationDays > 0) {
      const latest = await latestActivation(db);
      // Announce early enough that the new key activates when the current one is rotationDays old.
      if (
        latest &&
        latest.getTime() + config.keys.rotationDays * DAY_MS - config.keys.announceSeconds * 1000 <=
          Date.now()
      ) {
        const kids = await withAdvisoryLock(db, 'keys', async (trx) => {
          const again = await latestActivation(trx);
          if (again && again.getTime() > latest.getTime()) return undefined;
          return addKeySet(
            trx,
            config.sealingKey,
            new Date(Date.now() + config.keys.announceSeconds * 1000),
          );
        });
        if (kids) {
          log.info({ kids }, 'signing keys announced by schedule');
          await audit({
            type: 'keys_rotated',
            outcome: 'success',
            actor: { type: 'system' },
            detail: { kids, by: 'schedule' },
          });
        }
      }
    }
    const next = await loadKeyView(db, config.sealingKey, retainSeconds(config));
    if (next.fingerprint !== view.fingerprint) {
      view = next;
      log.info(
        { keys: view.keys.map((k) => `${k.alg}:${k.kid}:${k.state}`) },
        'signing keys changed',
      );
      onChange(view);
    }
    clearTimeout(stageTimer);
    if (view.nextChange) {
      const wait = Math.min(view.nextChange.getTime() - Date.now() + 50, 2 ** 31 - 1);
      stageTimer = setTimeout(tick, Math.max(wait, 0)).unref();
    }
  }

  function tick() {
    refresh().catch((err) => log.error({ err }, 'signing key refresh failed'));
  }

  const interval = setInterval(tick, config.keys.refreshSeconds * 1000).unref();
  await refresh();
  return {
    current: () => view,
    refresh,
    /** Announces new keys now (CLI `keys rotate` does the same from another process). */
    async rotate() {
      const kids = await rotateKeys(db, config);
      await refresh();
      return kids;
    },
    stop() {
      clearInterval(interval);
      clearTimeout(stageTimer);
    },
  };
}

export type KeyManager = Awaited<ReturnType<typeof startKeyManager>>;
