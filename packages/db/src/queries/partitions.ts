import { sql } from 'drizzle-orm';
import type { Database } from '../client.js';

/** Makes the daily partitions from `daysBack` days ago to `daysAhead` days ahead; returns how many were new. */
export async function ensurePartitions(db: Database, daysBack: number, daysAhead: number): Promise<number> {
  const { rows } = await db.execute<{ made: number }>(
    sql`SELECT tally_ensure_partitions((now() AT TIME ZONE 'UTC')::date - ${daysBack}::int,
      (now() AT TIME ZONE 'UTC')::date + ${daysAhead}::int) AS made`,
  );
  return rows[0]?.made ?? 0;
}
