import { affected, type Db } from '../db.ts';
import { LEGACY_PREFIX, seal, unseal } from './seal.ts';

/** Every sealed column, with the key of its row. */
const SEALED_COLUMNS = [
  { table: 'clients', column: 'secret_sealed', key: 'client_id' },
  { table: 'clients', column: 'previous_secret_sealed', key: 'client_id' },
  { table: 'signing_keys', column: 'private_sealed', key: 'kid' },
  { table: 'totp_factors', column: 'secret_sealed', key: 'user_id' },
] as const;

/**
 * Re-seals values of the old format (no additional data) bound to their column and row. Run at
 * start-up (a migration cannot: it has no sealing key). A row changed meanwhile keeps its new
 * value: the update applies only where the old one is still there. Returns the rows re-sealed.
 */
export async function resealLegacy(db: Db, sealingKey: Buffer): Promise<number> {
  let resealed = 0;
  for (const { table, column, key } of SEALED_COLUMNS) {
    const rows: Record<string, string>[] = await db(table)
      .select(key, column)
      .where(column, 'like', `${LEGACY_PREFIX}%`);
    for (const row of rows) {
      const old = row[column]!;
      const field = { table, column, row: String(row[key]) };
      const value = seal(sealingKey, unseal(sealingKey, old, field), field);
      resealed += affected(
        await db(table)
          .where({ [key]: row[key], [column]: old })
          .update({ [column]: value }),
      );
    }
  }
  return resealed;
}
