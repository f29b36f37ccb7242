import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { retentionMs } from '@tally/config';
import type { Database } from '@tally/db';
import type { Logger } from '@tally/logger';
import { QUEUES, type TallyQueues } from '@tally/queue';
import { createMetricsRegistry, createServer, installHealth } from '@tally/server';
import { BodyBudget } from './admission.js';
import { batchRoutes } from './batch.js';
import type { IngestApiConfig } from './config.js';
import { createEnqueuer } from './enqueue.js';
import { describeRouterErrors } from './errors.js';
import { createWriteKeyResolver } from './keys.js';
import { createIngestMetrics } from './metrics.js';
import { createOverloadCheck } from './overload.js';
import { createRateLimiter } from './rate-limit.js';

export interface BuildAppOptions {
  config: Pick<
    IngestApiConfig,
    | 'KEY_CACHE_TTL_SECONDS'
    | 'KEY_NEGATIVE_CACHE_SECONDS'
    | 'MAX_BODY_BYTES'
    | 'MAX_EVENTS_PER_BATCH'
    | 'MAX_EVENT_BYTES'
    | 'MAX_FUTURE_HOURS'
    | 'MAX_INFLIGHT_BODY_BYTES'
    | 'MAX_INFLIGHT_WAIT_MS'
    | 'MAX_QUEUE_DEPTH'
    | 'MAX_REDIS_MEMORY_MB'
    | 'MAX_REDIS_MEMORY_RATIO'
    | 'RATE_LIMIT_EVENTS_PER_MINUTE'
    | 'RETENTION_DAYS'
  >;
  db: Database;
  /** Queues on `redis`. The caller closes both. */
  queues: TallyQueues;
  /** A connection made with `createRedis(url, 'producer')`: while Redis is away, batches get a 503 at once instead of waiting. */
  redis: Redis;
  logger: Logger;
  /** The registry `/metrics` serves; a fresh one when omitted. */
  registry?: Registry;
}

/** The ingest API: `POST /v1/batch`, plus `/healthz`, `/readyz`, `/metrics` and the OpenAPI document. */
export async function buildApp({ config, db, queues, redis, logger, registry }: BuildAppOptions) {
  const app = await createServer({
    logger,
    title: 'Tally ingest API',
    description: 'Receives batches of experiment events from tracking clients and queues them for storage.',
    bodyLimit: config.MAX_BODY_BYTES,
    fastify: { frameworkErrors: describeRouterErrors },
  });
  const metricsRegistry = registry ?? createMetricsRegistry('ingest-api');
  // Postgres is advisory: the API keeps accepting batches for every key it has cached while Postgres is away.
  installHealth(app, { redis: () => redis.ping() }, metricsRegistry, { postgres: () => db.$client.query('SELECT 1') });

  // A Queue re-emits its connection's errors, and an unheard 'error' event would crash the
  // process; the outage itself is logged once by the enqueuer and by whoever owns `redis`.
  for (const queue of Object.values(queues)) {
    queue.on('error', (err) => logger.debug({ err, queue: queue.name }, 'queue connection error'));
  }

  const budget = new BodyBudget(config.MAX_INFLIGHT_BODY_BYTES, config.MAX_INFLIGHT_WAIT_MS);
  const metrics = createIngestMetrics(metricsRegistry, budget);
  const ingest = queues[QUEUES.ingest];
  const checkOverload = createOverloadCheck({
    ingest,
    redis,
    logger: logger.child({ module: 'overload' }),
    metrics,
    maxQueueDepth: config.MAX_QUEUE_DEPTH,
    memory: { ratio: config.MAX_REDIS_MEMORY_RATIO, bytes: config.MAX_REDIS_MEMORY_MB * 1_048_576 },
  });
  const rateLimiter =
    config.RATE_LIMIT_EVENTS_PER_MINUTE > 0
      ? createRateLimiter({
          redis,
          // The queues' own prefix (BullMQ's default is `bull`): the counters live, and are removed, with the jobs.
          prefix: ingest.opts.prefix ?? 'bull',
          limit: config.RATE_LIMIT_EVENTS_PER_MINUTE,
          windowMs: 60_000,
          logger: logger.child({ module: 'rate-limit' }),
          onError: () => metrics.checkFailures.inc({ check: 'rate_limit' }),
        })
      : undefined;

  await app.register(batchRoutes, {
    keys: createWriteKeyResolver(db, logger.child({ module: 'keys' }), {
      ttlMs: config.KEY_CACHE_TTL_SECONDS * 1_000,
      negativeTtlMs: config.KEY_NEGATIVE_CACHE_SECONDS * 1_000,
    }),
    enqueue: createEnqueuer({ queues, redis, logger: logger.child({ module: 'queue' }), metrics, checkOverload, rateLimiter }),
    metrics,
    budget,
    limits: {
      maxBodyBytes: config.MAX_BODY_BYTES,
      maxEventsPerBatch: config.MAX_EVENTS_PER_BATCH,
      maxEventBytes: config.MAX_EVENT_BYTES,
      maxFutureMs: config.MAX_FUTURE_HOURS * 3_600_000,
      maxAgeMs: retentionMs(config.RETENTION_DAYS),
    },
  });
  return app;
}
