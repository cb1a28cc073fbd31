// 1,000,000 users in PostgreSQL: the password-login flow's p50 at 1,000 users and at 1,000,000
// (alternated: 1k, 1M, 1k, 1M), and the plan of the email lookup every sign-in makes.
import pg from 'pg';
import { createPasswordHasher } from '../../../server/security/passwords.ts';
import { createUserStore } from '../../../server/users/store.ts';
import { passwordLoginFlow, runJobs, type Measurement, type RelyingParty } from '../load.ts';
import type { Cleanup } from '../process.ts';
import { startTarget, USER } from '../target.ts';
import { fmt } from '../format.ts';
import { capturing, explainAnalyze, knexOf, planBlock } from './sql.ts';

export const SMALL = 1_000;
export const LARGE = 1_000_000;
const FLOWS = 150;
const WORKERS = 2;

export type UsersResult = {
  runs: { users: number; m: Measurement }[];
  ratio: number;
  plan: string;
  sql: string;
  lookupMs: number;
  indexScan: boolean;
  generateSeconds: number;
};

/**
 * Users like the CLI makes them, in one INSERT … SELECT: every one with the bench user's own
 * argon2 hash (so any of them could sign in with its password), ids as the server makes them.
 */
async function addUsers(client: pg.Client, from: number, to: number): Promise<void> {
  await client.query(
    `INSERT INTO users (id, email, email_verified, password_hash, given_name, family_name, name)
     SELECT gen_random_uuid()::text, 'scale-' || g || '@example.test', true,
            (SELECT password_hash FROM users WHERE lower(email) = lower($3)),
            'Scale', 'User ' || g, 'Scale User ' || g
     FROM generate_series($1::int, $2::int) AS g`,
    [from, to, USER.email],
  );
  await client.query('ANALYZE users');
}

async function removeUsersAbove(client: pg.Client, n: number): Promise<void> {
  await client.query(
    `DELETE FROM users WHERE email LIKE 'scale-%' AND substring(email from 7 for position('@' in email) - 7)::int > $1`,
    [n],
  );
  await client.query('VACUUM ANALYZE users');
}

export async function benchUsers(cleanup: Cleanup, note: (l: string) => void) {
  const target = await startTarget('postgres+redis', cleanup);
  const url = target.env.DATABASE_URL!;
  const client = new pg.Client(url);
  await client.connect();
  cleanup.defer(() => client.end());
  const rp: RelyingParty = { issuer: target.url, client: target.web };
  const fresh = async () => () => passwordLoginFlow(rp);

  await addUsers(client, 2, SMALL); // the bench user is the first
  await runJobs(20, WORKERS, fresh);
  const runs: UsersResult['runs'] = [];
  const measure = async (users: number) => {
    const m = await runJobs(FLOWS, WORKERS, fresh);
    if (m.failed) throw new Error(`password logins failed at ${users} users: ${m.firstFailure}`);
    runs.push({ users, m });
    note(`users: ${fmt(users)} users, password-login p50 ${fmt(m.p50Ms, 1)} ms`);
  };

  await measure(SMALL);
  const t0 = performance.now();
  await addUsers(client, SMALL + 1, LARGE);
  const generateSeconds = (performance.now() - t0) / 1000;
  note(`users: ${fmt(LARGE)} users generated in ${fmt(generateSeconds, 1)} s`);
  await measure(LARGE);

  // The lookup as the login makes it (server/users/password-check.ts → store.findByEmail),
  // for a user in the middle of the table.
  const db = knexOf(url);
  cleanup.defer(() => db.destroy());
  const passwords = createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1 });
  const store = createUserStore(db, passwords);
  const [found, sent] = await capturing(db, () => store.findByEmail('Scale-500000@example.test'));
  if (!found) throw new Error('the generated user was not found');
  const explained = await explainAnalyze(client, sent);

  await removeUsersAbove(client, SMALL);
  await measure(SMALL);
  await addUsers(client, SMALL + 1, LARGE);
  await measure(LARGE);

  const p50 = (users: number) => {
    const of = runs.filter((r) => r.users === users).map((r) => r.m.p50Ms);
    return of.reduce((a, b) => a + b, 0) / of.length;
  };
  return {
    runs,
    ratio: p50(LARGE) / p50(SMALL),
    plan: explained.plan,
    sql: sent.sql,
    lookupMs: explained.ms,
    indexScan: explained.indexOnly,
    generateSeconds,
  } satisfies UsersResult;
}

export function usersReport(r: UsersResult): string[] {
  const met = r.ratio <= 1.1;
  return [
    `## ${fmt(LARGE)} users in PostgreSQL`,
    '',
    `Password-login flows (the bench user; ${FLOWS} flows, ${WORKERS} workers each run), alternated ${r.runs.map((x) => fmt(x.users)).join(' → ')}; the ${fmt(LARGE - SMALL)} extra users made in SQL in ${fmt(r.generateSeconds, 1)} s.`,
    '',
    '| users | flows/s | p50 ms | p99 ms |',
    '| --: | --: | --: | --: |',
    ...r.runs.map(
      ({ users, m }) =>
        `| ${fmt(users)} | ${fmt(m.perSecond, 1)} | ${fmt(m.p50Ms, 1)} | ${fmt(m.p99Ms, 1)} |`,
    ),
    '',
    `p50 at ${fmt(LARGE)} / p50 at ${fmt(SMALL)} (means of the runs): **${fmt(r.ratio, 3)}×** — target ≤ 1.10: ${met ? 'met' : '**missed**'}.`,
    `The email lookup at ${fmt(LARGE)} users: ${fmt(r.lookupMs, 3)} ms, ${r.indexScan ? 'an index scan' : '**not an index scan**'}.`,
    '',
    planBlock('Its plan (EXPLAIN ANALYZE of the statement `findByEmail` sends):', r.sql, r.plan),
  ];
}
