import { FormatRegistry, Type, type Static } from '@sinclair/typebox';
import { StoredEvent } from './events.js';

// The payloads declare `format: 'uuid'`; TypeBox checks only formats registered in the process.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
if (!FormatRegistry.Has('uuid')) FormatRegistry.Set('uuid', (value) => UUID.test(value));

/** Payloads of every job, by job name: producers and the worker share these. */
export const jobPayloads = {
  /** A validated batch from `POST /v1/batch`, to be inserted idempotently. */
  'ingest-batch': Type.Object({
    projectId: Type.String({ format: 'uuid' }),
    receivedAt: Type.Integer(),
    events: Type.Array(StoredEvent, { minItems: 1 }),
  }),
  /** Premake time partitions ahead of the clock. */
  'maintain-partitions': Type.Object({}),
  /** Fold the events inserted since the last run into the experiment summaries. */
  rollup: Type.Object({}),
} as const;

export type JobName = keyof typeof jobPayloads;
export type JobPayload<N extends JobName> = Static<(typeof jobPayloads)[N]>;
