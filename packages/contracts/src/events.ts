import { Type, type Static } from '@sinclair/typebox';

export const EVENT_TYPES = ['PAGEVIEW', 'EXPOSURE', 'CONVERSION'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const id = (description: string, maxLength = 128) =>
  Type.String({ minLength: 1, maxLength, description, errorMessage: `must be a string of 1 to ${maxLength} characters` });

/**
 * ISO-8601 date-time with a zone; a bare date or local time would be ambiguous.
 * Lower-case `t` and `z` are allowed as RFC 3339 does; no flags, because the
 * schema below reuses `.source` and a flag would be lost there.
 */
export const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})$/;

export const EventTimestamp = Type.Union(
  [
    Type.Integer({ minimum: 0, description: 'epoch milliseconds' }),
    Type.String({ pattern: ISO_DATE_TIME.source, description: 'ISO-8601 with time zone' }),
  ],
  { errorMessage: 'must be epoch milliseconds or an ISO-8601 date-time with a time zone' },
);

/** One event as a tracking client sends it (`POST /v1/batch`). */
export const IncomingEvent = Type.Object(
  {
    eventId: id('Idempotency key chosen by the client (a UUID is typical)'),
    eventType: Type.Union(
      EVENT_TYPES.map((t) => Type.Literal(t)),
      { errorMessage: `must be one of ${EVENT_TYPES.join(', ')}` },
    ),
    sessionId: id('Session the event belongs to', 256),
    viewId: Type.Optional(id('Page view the event belongs to', 256)),
    experimentId: Type.Optional(id('Experiment; required for EXPOSURE')),
    variantKey: Type.Optional(id('Variant shown; required for EXPOSURE')),
    goal: Type.Optional(id('Conversion goal, for CONVERSION')),
    properties: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { errorMessage: 'must be a JSON object' }),
    ),
    timestamp: EventTimestamp,
  },
  { additionalProperties: false, errorMessage: 'must be a JSON object' },
);
export type IncomingEvent = Static<typeof IncomingEvent>;

/** The batch envelope. Events are checked one by one so that one bad event does not sink the batch. */
export const BatchBody = Type.Object(
  {
    sentAt: Type.Optional(EventTimestamp),
    events: Type.Array(Type.Unknown(), {
      minItems: 1,
      description: 'Events (see the IncomingEvent schema); each is accepted or rejected on its own',
      errorMessage: 'must be an array of at least one event',
    }),
  },
  { additionalProperties: false, errorMessage: 'must be a JSON object' },
);
export type BatchBody = Static<typeof BatchBody>;

export const BatchRejection = Type.Object({
  index: Type.Integer({ description: 'Position of the event in `events`' }),
  errors: Type.Array(Type.String()),
});

export const BatchResponse = Type.Object({
  accepted: Type.Integer(),
  rejected: Type.Array(BatchRejection),
});
export type BatchResponse = Static<typeof BatchResponse>;

/** An accepted event, as queued for the worker and stored. Times are epoch milliseconds. */
export const StoredEvent = Type.Object({
  eventId: Type.String(),
  eventType: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
  sessionId: Type.String(),
  viewId: Type.Union([Type.String(), Type.Null()]),
  experimentId: Type.Union([Type.String(), Type.Null()]),
  variantKey: Type.Union([Type.String(), Type.Null()]),
  goal: Type.Union([Type.String(), Type.Null()]),
  properties: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  /** Event time after clock-skew correction: what every result is computed on. */
  timestamp: Type.Integer(),
  /** The time the client sent: with eventId, the idempotency key, so retries dedupe even when skew correction moves `timestamp`. */
  clientTimestamp: Type.Integer(),
});
export type StoredEvent = Static<typeof StoredEvent>;
