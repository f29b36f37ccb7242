import { Type, type Static } from '@sinclair/typebox';
import { StoredEvent } from './events.js';

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
} as const;

export type JobName = keyof typeof jobPayloads;
export type JobPayload<N extends JobName> = Static<(typeof jobPayloads)[N]>;
