import type { Redis } from 'ioredis';
import type { JobPayload } from '@tally/contracts';
import type { Logger } from '@tally/logger';
import { addJob, QUEUES, type TallyQueues } from '@tally/queue';
import { HttpError } from '@tally/server';

export interface EnqueueOptions {
  queues: TallyQueues;
  /** The producer connection the queues use. */
  redis: Redis;
  logger: Logger;
  /** Waiting ingest jobs above which batches are refused; 0 never refuses. */
  maxQueueDepth: number;
}

const DEPTH_SAMPLE_MS = 1_000;
const RETRY_AFTER_OVERLOADED_S = 10;
const RETRY_AFTER_UNAVAILABLE_S = 5;

/**
 * Stores a batch as an ingest job; resolves only once Redis has it, which is what
 * the 202 promises. Fails fast with a 503 while Redis is away (the producer
 * connection queues nothing offline) and with a 429 while the backlog is too deep.
 */
export function createEnqueuer({ queues, redis, logger, maxQueueDepth }: EnqueueOptions) {
  const ingest = queues[QUEUES.ingest];
  // The depth is read at most once a second, shared by every request meanwhile.
  let sampledUntil = 0;
  let depth: Promise<number> = Promise.resolve(0);
  const queueDepth = () => {
    const now = Date.now();
    if (now >= sampledUntil) {
      sampledUntil = now + DEPTH_SAMPLE_MS;
      // Not known is not full: if Redis fails here, the add below fails and says so.
      depth = ingest.count().catch(() => 0);
    }
    return depth;
  };

  let redisDown = false;
  const unavailable = () =>
    new HttpError(503, 'The event queue is unreachable, so nothing was accepted; send the same batch again shortly.', {
      'retry-after': String(RETRY_AFTER_UNAVAILABLE_S),
    });

  return async (payload: JobPayload<'ingest-batch'>): Promise<string | undefined> => {
    // BullMQ waits for a connection that is not ready yet, however long that takes: refuse instead.
    if (redis.status !== 'ready') throw unavailable();
    if (maxQueueDepth > 0 && (await queueDepth()) >= maxQueueDepth) {
      throw new HttpError(429, `The event queue holds ${maxQueueDepth} or more batches waiting to be stored; send this batch again in ${RETRY_AFTER_OVERLOADED_S} s.`, {
        'retry-after': String(RETRY_AFTER_OVERLOADED_S),
      });
    }
    let jobId: string | undefined;
    try {
      jobId = (await addJob(queues, 'ingest-batch', payload)).id;
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
