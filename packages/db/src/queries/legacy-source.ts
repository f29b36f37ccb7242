import pg from 'pg';
import Cursor from 'pg-cursor';

/**
 * Reading a database in the seed's legacy schema (Prisma `AnalyticsEvent`, table
 * `analytics_events`) for `tally import-legacy`. Read-only, in one snapshot, and in
 * batches through a cursor: memory stays flat however large the table is.
 */

/**
 * The columns an import reads, with the names each may have: Prisma's own (quoted
 * camelCase) first, then the snake_case the seed plan's SQL uses.
 */
export const LEGACY_COLUMNS = {
  id: { names: ['id'], required: true },
  projectId: { names: ['projectId', 'project_id'], required: true },
  experimentId: { names: ['experimentId', 'experiment_id'], required: true },
  eventType: { names: ['eventType', 'event_type'], required: true },
  sessionId: { names: ['sessionId', 'session_id'], required: true },
  // Optional: events then have no view.
  viewId: { names: ['viewId', 'view_id'], required: false },
  // Added by the seed plan's phase 2.2; before it, the variant is in properties.variantKey.
  variantKey: { names: ['variantKey', 'variant_key'], required: false },
  properties: { names: ['properties'], required: true },
  timestamp: { names: ['timestamp'], required: true },
} as const;

export type LegacyField = keyof typeof LEGACY_COLUMNS;

export interface LegacyTable {
  /** `schema.table`, for people and checkpoints. */
  name: string;
  /** The same, quoted for SQL. */
  sql: string;
  /** The column found for each field; a missing optional field has none. */
  columns: Partial<Record<LegacyField, string>>;
  /** Required fields with no column. */
  missing: LegacyField[];
  /** The SQL type of the timestamp column (bigint in the seed's schema). */
  timestampType: string | undefined;
}

/** One legacy row, every value as text (properties as stored: parsed JSON, or text to parse). */
export interface LegacyRow {
  id: string;
  projectId: string | null;
  experimentId: string | null;
  eventType: string | null;
  sessionId: string | null;
  viewId: string | null;
  variantKey: string | null;
  properties: unknown;
  timestamp: string | null;
}

/**
 * Epoch seconds and epoch milliseconds of any date from 1973 to 5138 fall on
 * either side of 10^11, so the magnitude of a value tells its unit.
 */
export const MILLISECONDS_FROM = 100_000_000_000;

/** What the `timestamp` column holds, to choose its unit. */
export interface LegacyTimestampStats {
  rows: number;
  /** Rows after the checkpoint (all of them without one). */
  remaining: number;
  /** Whole numbers below 10^11: epoch seconds. */
  secondsLike: number;
  /** Whole numbers from 10^11 on: epoch milliseconds. */
  millisecondsLike: number;
  /** Smallest and largest value of each kind, null when there is none. */
  seconds: { min: number | null; max: number | null };
  milliseconds: { min: number | null; max: number | null };
}

export interface LegacyBatches {
  /** Up to `rows` more rows, in id order; none once the table is read. */
  read: (rows: number) => Promise<LegacyRow[]>;
  close: () => Promise<void>;
}

const INTEGER_TYPES = new Set(['bigint', 'integer', 'smallint']);

export class LegacySource {
  private inTransaction = false;

  private constructor(
    private readonly client: pg.Client,
    private readonly url: string,
  ) {}

  /** Connects, or rejects with the driver's error (its `code` says why). */
  static async connect(url: string): Promise<LegacySource> {
    const client = new pg.Client({
      connectionString: url,
      application_name: 'tally-import-legacy',
      // An unroutable host would otherwise hang for minutes.
      connectionTimeoutMillis: 10_000,
    });
    // A server that goes away between queries emits 'error'; unheard, it would crash
    // the process instead of failing the next query.
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return new LegacySource(client, url);
  }

  /**
   * What identifies this database across runs, whichever URL reaches it: the
   * server's system identifier when this user may read it, else host and port.
   */
  async identity(): Promise<string> {
    const { rows } = await this.client.query<{ db: string }>('SELECT current_database() AS db');
    const db = rows[0]!.db;
    try {
      const { rows: control } = await this.client.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
      return `system ${control[0]!.id}/${db}`;
    } catch {
      const url = new URL(this.url);
      return `${url.hostname}:${url.port || 5432}/${db}`;
    }
  }

  /**
   * The table by that name: exactly as written first (Prisma's default table name
   * is `"AnalyticsEvent"`, in capitals), then as SQL would fold it.
   */
  async findTable(name: string): Promise<LegacyTable | undefined> {
    const parts = name.split('.');
    const exact = parts.map((part) => pg.escapeIdentifier(part)).join('.');
    const { rows } = await this.client.query<{ oid: number; schema: string; table: string }>(
      `SELECT c.oid, n.nspname AS schema, c.relname AS table
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = coalesce(to_regclass($1), to_regclass($2))`,
      [exact, name],
    );
    const found = rows[0];
    if (!found) return undefined;
    const { rows: attributes } = await this.client.query<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type
         FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`,
      [found.oid],
    );
    const present = new Map(attributes.map((a) => [a.name, a.type]));
    const columns: Partial<Record<LegacyField, string>> = {};
    const missing: LegacyField[] = [];
    for (const [field, { names, required }] of Object.entries(LEGACY_COLUMNS) as [LegacyField, (typeof LEGACY_COLUMNS)[LegacyField]][]) {
      const column = names.find((candidate) => present.has(candidate));
      if (column !== undefined) columns[field] = column;
      else if (required) missing.push(field);
    }
    return {
      name: `${found.schema}.${found.table}`,
      sql: `${pg.escapeIdentifier(found.schema)}.${pg.escapeIdentifier(found.table)}`,
      columns,
      missing,
      timestampType: columns.timestamp === undefined ? undefined : present.get(columns.timestamp),
    };
  }

  /**
   * Starts the one read-only snapshot that the statistics and every batch are read
   * in, so that the counts match what the batches then return.
   */
  async begin(): Promise<void> {
    await this.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    this.inTransaction = true;
  }

  async timestampStats(table: LegacyTable, afterId: string | null): Promise<LegacyTimestampStats> {
    const ts = this.timestampExpression(table);
    const id = this.column(table, 'id');
    const { rows } = await this.client.query<Record<string, string | null>>(
      `SELECT count(*) AS rows,
          count(*) FILTER (WHERE ${afterId === null ? 'true' : `${id} > $1`}) AS remaining,
          count(*) FILTER (WHERE ts >= 0 AND ts < ${MILLISECONDS_FROM}) AS seconds_like,
          count(*) FILTER (WHERE ts >= ${MILLISECONDS_FROM}) AS milliseconds_like,
          min(ts) FILTER (WHERE ts >= 0 AND ts < ${MILLISECONDS_FROM}) AS s_min,
          max(ts) FILTER (WHERE ts >= 0 AND ts < ${MILLISECONDS_FROM}) AS s_max,
          min(ts) FILTER (WHERE ts >= ${MILLISECONDS_FROM}) AS ms_min,
          max(ts) FILTER (WHERE ts >= ${MILLISECONDS_FROM}) AS ms_max
        FROM (SELECT ${id}, ${ts} AS ts FROM ${table.sql}) t`,
      afterId === null ? [] : [afterId],
    );
    const row = rows[0]!;
    const n = (value: string | null | undefined) => (value === null || value === undefined ? null : Number(value));
    return {
      rows: n(row.rows) ?? 0,
      remaining: n(row.remaining) ?? 0,
      secondsLike: n(row.seconds_like) ?? 0,
      millisecondsLike: n(row.milliseconds_like) ?? 0,
      seconds: { min: n(row.s_min), max: n(row.s_max) },
      milliseconds: { min: n(row.ms_min), max: n(row.ms_max) },
    };
  }

  /**
   * The rows after `afterId`, in id order, through a server-side cursor: only the
   * batch being read is ever in memory. The id is the primary key, so the order is
   * total and a checkpoint on it resumes exactly.
   */
  batches(table: LegacyTable, afterId: string | null): LegacyBatches {
    const text = (field: LegacyField) => {
      const column = table.columns[field];
      return column === undefined ? 'NULL::text' : `${pg.escapeIdentifier(column)}::text`;
    };
    const id = this.column(table, 'id');
    const cursor = this.client.query(
      new Cursor<LegacyRow>(
        `SELECT ${text('id')} AS "id", ${text('projectId')} AS "projectId", ${text('experimentId')} AS "experimentId",
            ${text('eventType')} AS "eventType", ${text('sessionId')} AS "sessionId", ${text('viewId')} AS "viewId",
            ${text('variantKey')} AS "variantKey", ${this.column(table, 'properties')} AS "properties",
            ${text('timestamp')} AS "timestamp"
           FROM ${table.sql}
          ${afterId === null ? '' : `WHERE ${id} > $1`}
          ORDER BY ${id}`,
        afterId === null ? [] : [afterId],
      ),
    );
    // After a failed read the portal is gone, and closing would wait for an answer
    // a dead connection never sends: only a cursor that never failed is closed.
    let failed = false;
    return {
      read: async (rows) => {
        try {
          return await cursor.read(rows);
        } catch (error) {
          failed = true;
          throw error;
        }
      },
      close: async () => {
        if (!failed) await cursor.close();
      },
    };
  }

  async close(): Promise<void> {
    // Read-only: nothing to commit, and ending the connection would roll back anyway.
    if (this.inTransaction) await this.client.query('ROLLBACK').catch(() => {});
    await this.client.end().catch(() => {});
  }

  private column(table: LegacyTable, field: LegacyField): string {
    const column = table.columns[field];
    if (column === undefined) throw new Error(`table ${table.name} has no ${field} column`);
    return pg.escapeIdentifier(column);
  }

  /** The timestamp as a bigint where it is a whole number, NULL where it is not (text columns, or garbage in them). */
  private timestampExpression(table: LegacyTable): string {
    const column = this.column(table, 'timestamp');
    if (INTEGER_TYPES.has(table.timestampType ?? '')) return `${column}::bigint`;
    return `CASE WHEN ${column}::text ~ '^[0-9]{1,18}$' THEN ${column}::text::bigint END`;
  }
}
