import type { Redis } from 'ioredis';
import type { Logger } from '@tally/logger';

/**
 * A sliding-window counter (as Cloudflare's and nginx's limiters count): the
 * events of the current fixed window plus the previous window's, weighted by the
 * share of the previous window still inside the sliding one. Unlike a fixed
 * window it never lets twice the limit through across a window boundary, and it
 * costs one small hash per project instead of an entry per event or batch.
 *
 * One script, so that reading and adding are atomic however many ingest processes
 * share the counter; Redis's clock, so that they agree on the windows.
 *
 * KEYS[1]: the project's hash, fields = window numbers, values = events counted.
 * ARGV: limit, window (ms), events of this batch, now (ms; empty = Redis's clock).
 * Returns {1, 0, events counted} when the batch fits (and counts it), or
 * {0, ms until it would fit if nothing else came, events counted}.
 */
const SLIDING_WINDOW = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local index = math.floor(now / window)
local elapsed = now - index * window
local current, previous = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local field = tonumber(fields[i])
  if field == index then
    current = tonumber(fields[i + 1])
  elseif field == index - 1 then
    previous = tonumber(fields[i + 1])
  elseif field == nil or field < index - 1 then
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
local used = previous * (window - elapsed) / window + current
if used + n <= limit then
  redis.call('HINCRBY', KEYS[1], index, n)
  redis.call('PEXPIRE', KEYS[1], 2 * window)
  return {1, 0, math.ceil(used + n)}
end
local wait
if current + n <= limit then
  -- Fits once enough of the previous window has slid out (previous > 0, or it would fit now).
  wait = window * (1 - (limit - current - n) / previous) - elapsed
else
  -- Fits only once this window is the previous one and enough of it has slid out (current > 0).
  wait = (window - elapsed) + window * (1 - (limit - n) / current)
end
return {0, math.ceil(wait), math.floor(used)}
`;

const COMMAND = 'tallySlidingWindow';

type WithCommand = Redis & {
  [COMMAND]: (key: string, limit: number, windowMs: number, events: number, now: number | '') => Promise<[number, number, number]>;
};

export type RateDecision =
  | { allowed: true; counted: number }
  | { allowed: false; counted: number; retryAfterMs: number }
  /** The batch alone is more than the limit allows in a window: it never fits. */
  | { allowed: false; tooLarge: true };

export interface RateLimiterOptions {
  /** A connection that fails fast (the producer connection). */
  redis: Redis;
  /** Keys are `<prefix>:ratelimit:<projectId>`: under the queue prefix, removed with it. */
  prefix: string;
  /** Events per window; 0 never limits. */
  limit: number;
  windowMs: number;
  logger: Logger;
  /** Told of every failure to count; the batch is let through. */
  onError?: (err: unknown) => void;
}

export interface RateLimiter {
  /** Events per window. */
  limit: number;
  /**
   * Counts `events` against the project's window if they fit. Undefined when the
   * count could not be made: a Redis failure is no proof of abuse, so the caller
   * lets the batch through. `now` (ms) replaces Redis's clock, for tests.
   */
  take: (projectId: string, events: number, now?: number) => Promise<RateDecision | undefined>;
}

export function createRateLimiter({ redis, prefix, limit, windowMs, logger, onError }: RateLimiterOptions): RateLimiter {
  const limited = redis as WithCommand;
  if (typeof limited[COMMAND] !== 'function') redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SLIDING_WINDOW });
  let failing = false;

  return {
    limit,
    async take(projectId, events, now) {
      if (events > limit) return { allowed: false, tooLarge: true };
      try {
        const [allowed, retryAfterMs, counted] = await limited[COMMAND](`${prefix}:ratelimit:${projectId}`, limit, windowMs, events, now ?? '');
        if (failing) logger.info('rate limiting counts in Redis again');
        failing = false;
        return allowed === 1 ? { allowed: true, counted } : { allowed: false, counted, retryAfterMs };
      } catch (err) {
        onError?.(err);
        if (!failing) logger.warn({ err }, 'cannot count events for rate limiting in Redis; letting batches through');
        failing = true;
        return undefined;
      }
    },
  };
}
