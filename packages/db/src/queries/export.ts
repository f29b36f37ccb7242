import { Readable } from 'node:stream';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import type { Database } from '../client.js';

/**
 * Raw events read out for export, through a server-side cursor on a connection of
 * its own: a batch is fetched only when the consumer asks for the next one, so
 * memory stays flat whatever the number of rows, and a slow consumer slows the
 * reading instead of piling rows up.
 */

/**
 * One stored event, every value as Postgres wrote it as text: times as ISO-8601
 * UTC with milliseconds, `properties` as the stored JSON text. Nothing is parsed
 * on the way out, which is most of the cost of reading millions of rows.
 */
export interface ExportedEvent {
  eventId: string;
  eventType: 'PAGEVIEW' | 'EXPOSURE' | 'CONVERSION';
  sessionId: string;
  viewId: string | null;
  experimentId: string | null;
  variantKey: string | null;
  goal: string | null;
  /** Skew-corrected event time, the one every result is computed on. */
  timestamp: string;
  /** The time the client's clock gave. */
  clientTimestamp: string;
  receivedAt: string;
  /** JSON text, or null. */
  properties: string | null;
}

/** The columns of an export, in order. */
export const EXPORTED_EVENT_FIELDS = [
  'eventId',
  'eventType',
  'sessionId',
  'viewId',
  'experimentId',
  'variantKey',
  'goal',
  'timestamp',
  'clientTimestamp',
  'receivedAt',
  'properties',
] as const satisfies readonly (keyof ExportedEvent)[];

export interface EventExportSelection {
  projectId: string;
  /**
   * Only sessions with an exposure to this experiment, and of their events only
   * the exposures to this experiment, pageviews and conversions.
   */
  experimentId?: string;
  /** Events with `event_time >= from`. */
  from?: Date;
  /** Events with `event_time < to`. */
  to?: Date;
}

export interface EventExportOptions {
  /** Rows fetched per round trip. */
  batchSize?: number;
  /**
   * How long a fetched batch may wait for the consumer to ask for the next one.
   * Past it the export fails: a client that stopped reading must not hold a
   * connection and an open snapshot (which keeps vacuum from cleaning up) for ever.
   */
  consumerTimeoutMs?: number;
  /** Told the size of every batch fetched from Postgres (also the last, shorter one). */
  onBatch?: (rows: number) => void;
}

const DEFAULT_BATCH_SIZE = 1_000;
const DEFAULT_CONSUMER_TIMEOUT_MS = 120_000;
/** A cursor close or rollback that takes longer than this means the connection is not worth keeping. */
const CLOSE_TIMEOUT_MS = 5_000;

const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const COLUMNS = `
  e.event_id AS "eventId", e.event_type::text AS "eventType", e.session_id AS "sessionId", e.view_id AS "viewId",
  e.experiment_id AS "experimentId", e.variant_key AS "variantKey", e.goal AS "goal",
  ${iso('e.event_time')} AS "timestamp", ${iso('e.client_time')} AS "clientTimestamp",
  ${iso('e.received_at')} AS "receivedAt", e.properties::text AS "properties"`;

// Both exports come out grouped by session, in event time within a session: the
// order in which the sessions index (project_id, session_id, event_time) hands
// rows over, so Postgres sorts at most one session's events at a time (an
// incremental sort) instead of the whole result before the first row. eventId
// breaks ties so that two exports of the same data are byte for byte the same.

/**
 * The sessions come from the exposures index (a session is in the export if it has
 * any exposure to the experiment, whatever `from`/`to` say); their events from the
 * sessions index. Exposures to other experiments are left out: they decide nothing
 * in this experiment, and their own exports have them.
 *
 * The LATERAL subquery, kept from being flattened into a join by OFFSET 0, makes
 * the plan one index lookup per exposed session whatever the statistics say. As a
 * join, a table not yet analyzed (a fresh partition, a big import) led the planner
 * to compare every exposed session with every event of the project: quadratic.
 */
const EXPERIMENT_EVENTS = `
  SELECT ${COLUMNS}
  FROM (
    SELECT DISTINCT session_id FROM analytics_events
    WHERE project_id = $1 AND experiment_id = $2 AND event_type = 'EXPOSURE'
  ) exposed
  CROSS JOIN LATERAL (
    SELECT * FROM analytics_events s
    WHERE s.project_id = $1 AND s.session_id = exposed.session_id
      AND (s.event_type <> 'EXPOSURE' OR s.experiment_id = $2)
      AND s.event_time >= $3 AND s.event_time < $4
    OFFSET 0
  ) e
  -- exposed.session_id, not e.session_id: the planner knows the sessions come
  -- sorted by it, and sorts one session's events at a time.
  ORDER BY exposed.session_id, e.event_time, e.event_id`;

const PROJECT_EVENTS = `
  SELECT ${COLUMNS}
  FROM analytics_events e
  WHERE e.project_id = $1 AND e.event_time >= $2 AND e.event_time < $3
  ORDER BY e.session_id, e.event_time, e.event_id`;

const HAS_EXPOSURE = `
  SELECT EXISTS (
    SELECT 1 FROM analytics_events WHERE project_id = $1 AND experiment_id = $2 AND event_type = 'EXPOSURE'
  ) AS "exposed"`;

// Every value stays the text Postgres sent: the SQL already formatted it.
const AS_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

/**
 * Opens an export of the selected events: an object-mode stream of batches
 * (`ExportedEvent[]`). Undefined, with nothing held, when `experimentId` is given
 * and the project has no exposure to it.
 *
 * Everything is read in one REPEATABLE READ, READ ONLY transaction: the export is
 * the data as of one instant, even while events arrive or the export takes hours.
 * The connection goes back to the pool when the stream ends, is destroyed (the
 * consumer went away) or fails; a connection that failed is discarded instead.
 */
export async function openEventExport(
  db: Database,
  selection: EventExportSelection,
  options: EventExportOptions = {},
): Promise<EventExportStream | undefined> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const from = selection.from ? pgInstant(selection.from) : '-infinity';
  const to = selection.to ? pgInstant(selection.to) : 'infinity';
  const client = await db.$client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let cursor: Cursor<ExportedEvent>;
    if (selection.experimentId === undefined) {
      cursor = client.query(new Cursor<ExportedEvent>(PROJECT_EVENTS, [selection.projectId, from, to], { types: AS_TEXT }));
    } else {
      // In the same snapshot as the rows, so "no such experiment" and the rows agree.
      const { rows } = await client.query<{ exposed: boolean }>(HAS_EXPOSURE, [selection.projectId, selection.experimentId]);
      if (!rows[0]?.exposed) {
        await client.query('ROLLBACK');
        client.release();
        return undefined;
      }
      cursor = client.query(
        new Cursor<ExportedEvent>(EXPERIMENT_EVENTS, [selection.projectId, selection.experimentId, from, to], { types: AS_TEXT }),
      );
    }
    // Read the first batch now: a query that fails at once then fails the request
    // with a status, before any byte of the response is sent.
    const first = await cursor.read(batchSize);
    options.onBatch?.(first.length);
    return new EventExportStream(client, cursor, first, {
      batchSize,
      consumerTimeoutMs: options.consumerTimeoutMs ?? DEFAULT_CONSUMER_TIMEOUT_MS,
      onBatch: options.onBatch,
    });
  } catch (error) {
    // Whatever state the session is in (mid-transaction, broken), it is not reused.
    client.release(error instanceof Error ? error : true);
    throw error;
  }
}

const EARLIEST = Date.parse('0001-01-01T00:00:00.000Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * Postgres has no year 0 and does not read the signed years toISOString writes
 * past 9999; no event can be stored out there, so such a bound is no bound.
 */
function pgInstant(instant: Date): string {
  const ms = instant.getTime();
  return ms < EARLIEST ? '-infinity' : ms > LATEST ? 'infinity' : instant.toISOString();
}

/** Thrown into an export whose consumer stopped asking for rows for longer than allowed. */
export class ExportConsumerTimeoutError extends Error {
  constructor(ms: number) {
    super(`the export's reader took no rows for ${ms} ms`);
    this.name = 'ExportConsumerTimeoutError';
  }
}

/**
 * Batches of exported events, one cursor read per batch. With a high-water mark of
 * one batch, the next read starts only when the consumer has taken the previous
 * batch: this is the backpressure that keeps memory flat.
 */
export class EventExportStream extends Readable {
  readonly #client: pg.PoolClient;
  readonly #cursor: Cursor<ExportedEvent>;
  readonly #batchSize: number;
  readonly #consumerTimeoutMs: number;
  readonly #onBatch: ((rows: number) => void) | undefined;
  #first: ExportedEvent[] | undefined;
  #reading: Promise<unknown> | undefined;
  #consumerTimer: NodeJS.Timeout | undefined;
  /** The session failed (query error, lost connection): it is discarded, not returned to the pool. */
  #broken: Error | undefined;

  constructor(
    client: pg.PoolClient,
    cursor: Cursor<ExportedEvent>,
    first: ExportedEvent[],
    options: { batchSize: number; consumerTimeoutMs: number; onBatch: ((rows: number) => void) | undefined },
  ) {
    super({ objectMode: true, highWaterMark: 1 });
    this.#client = client;
    this.#cursor = cursor;
    this.#first = first;
    this.#batchSize = options.batchSize;
    this.#consumerTimeoutMs = options.consumerTimeoutMs;
    this.#onBatch = options.onBatch;
    // A checked-out client has no error listener of the pool's: without this one, a
    // connection lost between two reads would crash the process.
    client.on('error', this.#onClientError);
  }

  readonly #onClientError = (error: Error) => {
    this.#broken = error;
    this.destroy(error);
  };

  override _read(): void {
    clearTimeout(this.#consumerTimer);
    const first = this.#first;
    if (first) {
      this.#first = undefined;
      this.#deliver(first);
      return;
    }
    this.#reading = this.#cursor.read(this.#batchSize).then(
      (rows) => {
        this.#reading = undefined;
        this.#onBatch?.(rows.length);
        if (!this.destroyed) this.#deliver(rows);
      },
      (error: unknown) => {
        this.#reading = undefined;
        this.#broken = error instanceof Error ? error : new Error(String(error));
        this.destroy(this.#broken);
      },
    );
  }

  #deliver(rows: ExportedEvent[]): void {
    // A batch shorter than asked for is the last: the portal has run out.
    if (rows.length < this.#batchSize) {
      if (rows.length > 0) this.push(rows);
      this.push(null);
      return;
    }
    // Armed before push: a consumer that wants more calls _read (which disarms it)
    // from within push or soon after.
    this.#consumerTimer = setTimeout(
      () => this.destroy(new ExportConsumerTimeoutError(this.#consumerTimeoutMs)),
      this.#consumerTimeoutMs,
    );
    this.push(rows);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#consumerTimer);
    this.#release().then(
      () => callback(error),
      () => callback(error),
    );
  }

  async #release(): Promise<void> {
    const client = this.#client;
    try {
      if (this.#broken) throw this.#broken;
      await withTimeout(
        (async () => {
          // pg-cursor cannot close a portal with a fetch in flight: let the fetch land.
          await this.#reading;
          await this.#cursor.close();
          await client.query('ROLLBACK');
        })(),
        CLOSE_TIMEOUT_MS,
      );
      client.removeListener('error', this.#onClientError);
      client.release();
    } catch (error) {
      client.removeListener('error', this.#onClientError);
      client.release(error instanceof Error ? error : true);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
