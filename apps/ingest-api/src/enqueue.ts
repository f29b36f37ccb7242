import type { Redis } from 'ioredis';
import type { Logger } from '@tally/logger';
import { addIngestBatch, type BatchToQueue, type TallyQueues } from '@tally/queue';
import { HttpError } from '@tally/server';
import type { IngestMetrics } from './metrics.js';
import type { RateLimiter } from './rate-limit.js';

export interface EnqueueOptions {
  queues: TallyQueues;
  /** The producer connection the queues use. */
  redis: Redis;
  logger: Logger;
  metrics: IngestMetrics;
  /** Throws a 429 while Redis is too full or the backlog too deep (see overload.ts). */
  checkOverload: () => Promise<void>;
  /** Per-project limit; absent when there is none. */
  rateLimiter?: RateLimiter;
}

const RETRY_AFTER_UNAVAILABLE_S = 5;

/**
 * Stores a batch as an ingest job; resolves only once Redis has it, which is what
 * the 202 promises. Fails fast with a 503 while Redis is away (the producer
 * connection queues nothing offline), with a 429 while Redis is overloaded, and
 * with a 429 when the project sends more than its rate limit. Overload is checked
 * before the rate limit, so a batch refused for overload costs the project none of
 * its allowance.
 */
export function createEnqueuer({ queues, redis, logger, metrics, checkOverload, rateLimiter }: EnqueueOptions) {
  let redisDown = false;
  const unavailable = () =>
    new HttpError(503, 'The event queue is unreachable, so nothing was accepted; send the same batch again shortly.', {
      'retry-after': String(RETRY_AFTER_UNAVAILABLE_S),
    });

  const checkRate = async ({ projectId, count }: BatchToQueue) => {
    if (!rateLimiter) return;
    const decision = await rateLimiter.take(projectId, count);
    if (decision === undefined || decision.allowed) return;
    metrics.refusals.inc({ reason: 'rate_limit' });
    if ('tooLarge' in decision) {
      throw new HttpError(
        413,
        `The batch has ${count} valid events, more than the ${rateLimiter.limit} this project may send in a minute ` +
          `(rate limit: RATE_LIMIT_EVENTS_PER_MINUTE); split it into smaller batches.`,
      );
    }
    const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1_000));
    throw new HttpError(
      429,
      `Rate limit: this project may send ${rateLimiter.limit} events per minute (RATE_LIMIT_EVENTS_PER_MINUTE) and has ` +
        `sent about ${decision.counted} in the last minute; these ${count} events fit in ${seconds} s, send this batch again then.`,
      { 'retry-after': String(seconds) },
    );
  };

  return async (batch: BatchToQueue): Promise<string | undefined> => {
    // BullMQ waits for a connection that is not ready yet, however long that takes: refuse instead.
    if (redis.status !== 'ready') throw unavailable();
    await checkOverload();
    await checkRate(batch);
    let jobId: string | undefined;
    try {
      jobId = (await addIngestBatch(queues, redis, batch)).id;
    } catch (err) {
      if (!redisDown) logger.warn({ err }, 'cannot add ingest jobs to Redis');
      redisDown = true;
      throw unavailable();
    }
    if (redisDown) logger.info('ingest jobs reach Redis again');
    redisDown = false;
    return jobId;
  };
}
