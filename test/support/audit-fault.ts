import type { Knex } from 'knex';

/**
 * While `action` runs, PostgreSQL refuses audit rows of the given types the way it refuses a
 * statement that ran out of time (SQLSTATE 57014, as statement_timeout does): the write of the
 * record fails at once, and only that write. Returns what `action` returned.
 */
export async function withAuditRefused<T>(
  db: Knex,
  types: string[],
  action: () => Promise<T>,
): Promise<T> {
  await db.raw(`
    CREATE OR REPLACE FUNCTION test_refuse_audit() RETURNS trigger AS $$
    BEGIN
      IF NEW.type = ANY (TG_ARGV) THEN
        RAISE EXCEPTION 'audit row refused by the test' USING ERRCODE = 'query_canceled';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql`);
  const args = types.map((t) => `'${t.replace(/'/g, "''")}'`).join(', ');
  await db.raw('DROP TRIGGER IF EXISTS test_refuse_audit ON audit_events');
  await db.raw(
    `CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION test_refuse_audit(${args})`,
  );
  try {
    return await action();
  } finally {
    await db.raw('DROP TRIGGER IF EXISTS test_refuse_audit ON audit_events');
  }
}
