import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Logger } from '@tally/logger';
import { HttpError } from '@tally/server';
import type { IngestMetrics, OverloadCheck } from './metrics.js';

const SAMPLE_MS = 1_000;
export const RETRY_AFTER_OVERLOADED_S = 10;

export interface RedisMemory {
  /** `used_memory`: what Redis compares with maxmemory before refusing writes. */
  usedBytes: number;
  /** `maxmemory`; 0 when Redis has none. */
  maxBytes: number;
}

/** `used_memory` and `maxmemory` from the text of `INFO memory`; undefined if either is missing. */
export function parseMemoryInfo(info: string): RedisMemory | undefined {
  const field = (name: string) => {
    const value = new RegExp(`^${name}:(\\d+)\\r?$`, 'm').exec(info)?.[1];
    return value === undefined ? undefined : Number(value);
  };
  const usedBytes = field('used_memory');
  const maxBytes = field('maxmemory');
  return usedBytes === undefined || maxBytes === undefined ? undefined : { usedBytes, maxBytes };
}

export interface MemoryLimits {
  /** Share of maxmemory, when Redis has one; 0 is off. */
  ratio: number;
  /** Absolute limit in bytes, whatever maxmemory is; 0 is off. */
  bytes: number;
}

/** The lowest limit that applies to this Redis, with the words to explain it; undefined when none does. */
export function memoryLimit(memory: RedisMemory, limits: MemoryLimits): { bytes: number; explained: string } | undefined {
  const candidates: { bytes: number; explained: string }[] = [];
  if (limits.ratio > 0 && memory.maxBytes > 0) {
    candidates.push({
      bytes: limits.ratio * memory.maxBytes,
      explained: `${Math.round(limits.ratio * 100)}% of its maxmemory of ${mib(memory.maxBytes)} (MAX_REDIS_MEMORY_RATIO)`,
    });
  }
  if (limits.bytes > 0) candidates.push({ bytes: limits.bytes, explained: `the limit of ${mib(limits.bytes)} (MAX_REDIS_MEMORY_MB)` });
  return candidates.sort((a, b) => a.bytes - b.bytes)[0];
}

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;

/**
 * A value read at most once per `everyMs`, shared by every request meanwhile, so a
 * burst of batches costs Redis one command a second. A failed read resolves to
 * undefined: not knowing is no reason to refuse a batch (if Redis is really away,
 * adding the job fails and says so).
 */
function sampled<T>(read: () => Promise<T>, onError: (err: unknown) => void, everyMs = SAMPLE_MS): () => Promise<T | undefined> {
  let sampledUntil = 0;
  let latest: Promise<T | undefined> = Promise.resolve(undefined);
  return () => {
    const now = Date.now();
    if (now >= sampledUntil) {
      sampledUntil = now + everyMs;
      latest = read().catch((err: unknown) => {
        onError(err);
        return undefined;
      });
    }
    return latest;
  };
}

export interface OverloadOptions {
  ingest: Queue;
  /** The producer connection. */
  redis: Redis;
  logger: Logger;
  metrics: IngestMetrics;
  /** Waiting ingest jobs above which batches are refused; 0 never refuses. */
  maxQueueDepth: number;
  memory: MemoryLimits;
}

/**
 * The 429s that protect Redis, which holds every accepted batch until a worker
 * stores it: too many batches waiting, or too little memory left. Redis with
 * `noeviction` would refuse writes at maxmemory anyway, but as a 503 ("unreachable")
 * and also for the workers' own bookkeeping; refusing earlier, with Retry-After,
 * tells clients to back off while workers drain the backlog.
 */
export function createOverloadCheck({ ingest, redis, logger, metrics, maxQueueDepth, memory }: OverloadOptions): () => Promise<void> {
  const failing = new Set<OverloadCheck>();
  const failed = (check: OverloadCheck) => (err: unknown) => {
    metrics.checkFailures.inc({ check });
    if (!failing.has(check)) logger.warn({ err, check }, 'cannot read what the overload check needs from Redis; letting batches through');
    failing.add(check);
  };
  const recovered = (check: OverloadCheck) => {
    if (failing.delete(check)) logger.info({ check }, 'overload check reads Redis again');
  };

  const queueDepth = sampled(async () => {
    const depth = await ingest.count();
    recovered('queue_depth');
    return depth;
  }, failed('queue_depth'));

  const memoryEnabled = memory.ratio > 0 || memory.bytes > 0;
  const redisMemory = sampled(async () => {
    const info = parseMemoryInfo(await redis.info('memory'));
    if (!info) throw new Error('INFO memory has no used_memory or maxmemory');
    recovered('redis_memory');
    return info;
  }, failed('redis_memory'));

  const refuse = (reason: OverloadCheck, message: string) => {
    metrics.refusals.inc({ reason });
    return new HttpError(429, `${message}; send this batch again in ${RETRY_AFTER_OVERLOADED_S} s.`, {
      'retry-after': String(RETRY_AFTER_OVERLOADED_S),
    });
  };

  return async () => {
    const [depth, used] = await Promise.all([
      maxQueueDepth > 0 ? queueDepth() : undefined,
      memoryEnabled ? redisMemory() : undefined,
    ]);
    if (depth !== undefined && depth >= maxQueueDepth) {
      throw refuse('queue_depth', `The event queue holds ${maxQueueDepth} or more batches waiting to be stored`);
    }
    const limit = used && memoryLimit(used, memory);
    if (used && limit && used.usedBytes >= limit.bytes) {
      throw refuse(
        'redis_memory',
        `Redis, which holds the batches waiting to be stored, uses ${mib(used.usedBytes)}, past ${limit.explained}`,
      );
    }
  };
}
