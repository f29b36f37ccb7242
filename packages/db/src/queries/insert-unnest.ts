import type { Database } from '../client.js';
import { EVENT_ROW_COLUMNS, decodeEventRows, type EventRows } from './event-rows.js';

/** One text array per column of the rows, each cast as COPY would read it. */
const INSERT_UNNEST = `
  INSERT INTO analytics_events (${EVENT_ROW_COLUMNS.join(', ')})
  SELECT e.project_id::uuid, e.event_id, e.event_type::event_type, e.session_id, e.view_id, e.experiment_id,
    e.variant_key, e.goal, e.properties::jsonb, e.event_time::timestamptz, e.client_time::timestamptz,
    e.received_at::timestamptz
  FROM unnest(${EVENT_ROW_COLUMNS.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS e(${EVENT_ROW_COLUMNS.join(', ')})
  ON CONFLICT DO NOTHING`;

/**
 * Inserts a batch's rows (event-rows.ts) in one statement, `INSERT … SELECT FROM
 * unnest($arrays) ON CONFLICT DO NOTHING`, one array parameter per column. Returns
 * how many rows were new. One round trip and no staging: the cheaper way for small
 * batches.
 */
export async function insertRowsByUnnest(db: Database, rows: EventRows): Promise<number> {
  if (rows.length === 0) return 0;
  const result = await db.$client.query({ name: 'tally-insert-events-unnest', text: INSERT_UNNEST, values: decodeEventRows(rows.toString()) });
  return result.rowCount ?? 0;
}
