import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Database } from '../client.js';
import { EVENT_ROW_COLUMNS, ROW_DELIMITER, type EventRows } from './event-rows.js';

/**
 * Stores a batch's rows (event-rows.ts) by COPY; returns how many were new.
 *
 * First straight into the partitioned table, one statement, atomic on its own:
 * the common case (no event of the batch stored yet) costs Postgres what a plain
 * COPY does, about half of the staging path below. If any row is already there
 * (a client's retry, a job run again after a crash, the same event twice in the
 * batch), the unique key refuses the whole COPY, nothing of it stays, and the batch
 * goes through the staging path, which skips the rows already stored. Sequence
 * numbers the refused COPY drew are left unused: the rollup reads numbered
 * windows and does not mind gaps.
 */
export async function insertRowsByCopy(db: Database, rows: EventRows): Promise<number> {
  if (rows.length === 0) return 0;
  const client = await db.$client.connect();
  try {
    let inserted: number;
    try {
      const copy = client.query(copyFrom(COPY_INTO_EVENTS));
      await pipeline(Readable.from([rows]), copy);
      inserted = copy.rowCount;
    } catch (error) {
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
      inserted = await insertThroughStaging(client, rows);
    }
    client.release();
    return inserted;
  } catch (error) {
    // Whatever the failure (mid-COPY, mid-transaction, connection lost), this session
    // is not worth reusing: the pool drops it and the transaction with it.
    client.release(error instanceof Error ? error : true);
    throw error;
  }
}

const UNIQUE_VIOLATION = '23505';

/**
 * In one transaction: `COPY` into a temporary staging table, then one
 * `INSERT … SELECT … ON CONFLICT DO NOTHING` into the partitioned table.
 */
async function insertThroughStaging(client: pg.PoolClient, rows: EventRows): Promise<number> {
  if (!sessionsWithStaging.has(client)) {
    await client.query(CREATE_STAGING);
    sessionsWithStaging.add(client);
  }
  await client.query('BEGIN');
  await pipeline(Readable.from([rows]), client.query(copyFrom(COPY_INTO_STAGING)));
  // Named: each pooled connection parses and plans it once.
  const result = await client.query({ name: 'tally-insert-from-staging', text: INSERT_FROM_STAGING });
  await client.query('COMMIT');
  return result.rowCount ?? 0;
}

/** `seq` is left to its default: every row draws its number from the sequence, as in every other insert. */
const COPY_INTO_EVENTS = `COPY analytics_events (${EVENT_ROW_COLUMNS.join(', ')}) FROM STDIN WITH (DELIMITER '${ROW_DELIMITER}')`;

/**
 * One staging table per session, made once: `ON COMMIT DELETE ROWS` empties it at
 * every commit, and creating a table per batch would churn the system catalogs.
 */
const sessionsWithStaging = new WeakSet<pg.PoolClient>();

const CREATE_STAGING = `
  CREATE TEMP TABLE IF NOT EXISTS tally_events_staging (
    project_id uuid, event_id text, event_type text, session_id text, view_id text, experiment_id text,
    variant_key text, goal text, properties jsonb, event_time timestamptz, client_time timestamptz, received_at timestamptz
  ) ON COMMIT DELETE ROWS`;

const COPY_INTO_STAGING = `COPY pg_temp.tally_events_staging FROM STDIN WITH (DELIMITER '${ROW_DELIMITER}')`;

const INSERT_FROM_STAGING = `
  INSERT INTO analytics_events (project_id, event_id, event_type, session_id, view_id, experiment_id,
    variant_key, goal, properties, event_time, client_time, received_at)
  SELECT s.project_id, s.event_id, s.event_type::event_type, s.session_id, s.view_id, s.experiment_id,
    s.variant_key, s.goal, s.properties, s.event_time, s.client_time, s.received_at
  FROM pg_temp.tally_events_staging s
  ON CONFLICT DO NOTHING`;
