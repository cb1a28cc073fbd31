import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Outside production, missing SEALING_KEY / COOKIE_KEYS are generated once and kept in
 * DATA_DIR/dev-secrets.json so that `npm start` works alone and restarts keep sealed data
 * readable. Production never gets here: loadConfig refuses to start without them.
 */
export function withDevSecrets(
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  if (env.NODE_ENV === 'production' || (env.SEALING_KEY && env.COOKIE_KEYS)) return env;
  const dir = env.DATA_DIR ?? './data';
  const file = join(dir, 'dev-secrets.json');
  let secrets: { SEALING_KEY: string; COOKIE_KEYS: string };
  try {
    secrets = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    secrets = {
      SEALING_KEY: randomBytes(32).toString('base64'),
      COOKIE_KEYS: randomBytes(32).toString('base64url'),
    };
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  }
  return { ...secrets, ...Object.fromEntries(Object.entries(env).filter(([, v]) => v)) };
}
