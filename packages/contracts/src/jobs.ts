import { FormatRegistry, Type, type Static } from '@sinclair/typebox';
import { StoredEvent } from './events.js';

// The payloads declare `format: 'uuid'`; TypeBox checks only formats registered in the process.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
if (!FormatRegistry.Has('uuid')) FormatRegistry.Set('uuid', (value) => UUID.test(value));

const projectId = Type.String({ format: 'uuid' });

/**
 * The batch as the ingest API queues it: its events encoded as rows of
 * analytics_events in COPY's text format (encodeEventRowBytes in @tally/db), kept
 * in Redis beside the job under `rowsId` (batchRowsKey in @tally/queue), which the
 * worker stores as they are.
 */
export const IngestBatchRowsRef = Type.Object({
  projectId,
  receivedAt: Type.Integer(),
  /** How many rows (events) the batch has. */
  count: Type.Integer({ minimum: 1 }),
  rowsId: Type.String({ format: 'uuid' }),
});
export type IngestBatchRowsRef = Static<typeof IngestBatchRowsRef>;

/**
 * The batch with its rows inside the job, as an ingest API of an earlier version
 * queued it; the worker still takes it, so that jobs waiting through an upgrade
 * are stored.
 */
export const IngestBatchRows = Type.Object({
  projectId,
  receivedAt: Type.Integer(),
  /** How many rows (events) `rows` holds. */
  count: Type.Integer({ minimum: 1 }),
  rows: Type.String({ minLength: 1 }),
});
export type IngestBatchRows = Static<typeof IngestBatchRows>;

/**
 * The batch as events, the form ingest jobs had before rows. The worker still takes
 * it too, so that jobs queued by an earlier ingest API are stored after an upgrade.
 */
export const IngestBatchEvents = Type.Object({
  projectId,
  receivedAt: Type.Integer(),
  events: Type.Array(StoredEvent, { minItems: 1 }),
});
export type IngestBatchEvents = Static<typeof IngestBatchEvents>;

/**
 * What a completed ingest job keeps: its batch's events are stored, so the rows are
 * dropped from Redis and only these counts stay for as long as the job is kept.
 */
export const IngestBatchStored = Type.Object({
  projectId,
  receivedAt: Type.Integer(),
  count: Type.Integer({ minimum: 0 }),
});
export type IngestBatchStored = Static<typeof IngestBatchStored>;

/** Payloads of every job, by job name: producers and the worker share these. */
export const jobPayloads = {
  /** A validated batch from `POST /v1/batch`, to be inserted idempotently. */
  'ingest-batch': Type.Union([IngestBatchRowsRef, IngestBatchRows, IngestBatchEvents]),
  /** Premake time partitions ahead of the clock. */
  'maintain-partitions': Type.Object({}),
  /** Fold the events inserted since the last run into the experiment summaries. */
  rollup: Type.Object({}),
} as const;

export type JobName = keyof typeof jobPayloads;
export type JobPayload<N extends JobName> = Static<(typeof jobPayloads)[N]>;
