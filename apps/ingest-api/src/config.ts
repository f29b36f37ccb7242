import { Type, type Static } from '@sinclair/typebox';
import { commonEnv, httpEnv, loadConfig, retentionEnv } from '@tally/config';

export const IngestApiEnv = Type.Object({
  ...commonEnv,
  ...httpEnv(3100),
  ...retentionEnv,
  DB_POOL_SIZE: Type.Integer({
    default: 5,
    minimum: 1,
    maximum: 1_000,
    description: 'Postgres connections of this process (only key lookups and readiness checks use them)',
  }),
  KEY_CACHE_TTL_SECONDS: Type.Integer({
    default: 60,
    minimum: 0,
    maximum: 86_400,
    description:
      'How long a write key found in Postgres is trusted without asking again; a rotated key keeps working for at most this long. ' +
      'While Postgres is unreachable, keys seen before keep working past it',
  }),
  KEY_NEGATIVE_CACHE_SECONDS: Type.Integer({
    default: 5,
    minimum: 0,
    maximum: 60,
    description: 'How long an unknown key is refused without asking Postgres again',
  }),
  MAX_BODY_BYTES: Type.Integer({
    default: 5_242_880,
    minimum: 1_024,
    maximum: 104_857_600,
    description: 'Largest request body, measured after decompression (413 above it)',
  }),
  MAX_EVENTS_PER_BATCH: Type.Integer({ default: 2_500, minimum: 1, maximum: 100_000, description: 'Most events in one batch (413 above it)' }),
  MAX_EVENT_BYTES: Type.Integer({
    default: 65_536,
    minimum: 256,
    maximum: 10_485_760,
    description: 'Largest single event, as JSON; a larger event is rejected on its own',
  }),
  MAX_FUTURE_HOURS: Type.Number({
    default: 24,
    minimum: 0,
    maximum: 8_760,
    description: 'How far ahead of the receive time an event may be, after clock-skew correction',
  }),
  MAX_INFLIGHT_BODY_BYTES: Type.Integer({
    default: 4_194_304,
    minimum: 1_024,
    description:
      'Bytes of batch bodies read and processed at once (a compressed or chunked body counts as MAX_BODY_BYTES); more ' +
      'wait their turn unread, so memory does not grow with the number of clients. One larger body is let in alone',
  }),
  MAX_INFLIGHT_WAIT_MS: Type.Integer({
    default: 10_000,
    minimum: 0,
    maximum: 600_000,
    description: 'How long a batch may wait for MAX_INFLIGHT_BODY_BYTES before it is refused with 429 and Retry-After',
  }),
  MAX_QUEUE_DEPTH: Type.Integer({
    default: 100_000,
    minimum: 0,
    description:
      'Ingest jobs waiting in Redis above which batches are refused with 429 and Retry-After, so a long worker outage cannot fill Redis. 0 never refuses',
  }),
  MAX_REDIS_MEMORY_RATIO: Type.Number({
    default: 0.8,
    minimum: 0,
    maximum: 1,
    description:
      "Share of Redis's maxmemory above which batches are refused with 429 and Retry-After, before Redis itself refuses writes. " +
      'Applies only when Redis has a maxmemory; 0 never refuses',
  }),
  MAX_REDIS_MEMORY_MB: Type.Number({
    default: 0,
    minimum: 0,
    description:
      'Redis memory in use (MiB) above which batches are refused with 429 and Retry-After: the limit for a Redis without maxmemory ' +
      '(with one, both limits apply). 0 never refuses',
  }),
  RATE_LIMIT_EVENTS_PER_MINUTE: Type.Integer({
    default: 600_000,
    minimum: 0,
    description:
      'Valid events one project may send per minute (a sliding window shared by every ingest process through Redis); ' +
      'batches beyond it are refused with 429 and Retry-After. 0 never limits',
  }),
});

export type IngestApiConfig = Static<typeof IngestApiEnv>;

export function loadIngestApiConfig(env: Record<string, string | undefined> = process.env): IngestApiConfig {
  return loadConfig(IngestApiEnv, env);
}
