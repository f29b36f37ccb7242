import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@tally/logger';
import { closeQueues, createRedis, QUEUES, type TallyQueues } from '@tally/queue';
import { startThrowawayRedis, waitFor, type ThrowawayRedis } from '@tally/testing';
import { buildApp } from '../src/app.js';
import { loadIngestApiConfig, type IngestApiConfig } from '../src/config.js';
import { memoryLimit, parseMemoryInfo } from '../src/overload.js';
import { createFixture, metricValue, post, validEvents, type Fixture, type IngestApp } from './fixture.js';

const MAXMEMORY = 16 * 1_048_576;
const FILLER = 'x'.repeat(256 * 1_024);

/**
 * Every test here runs on a redis-server of its own (port and directory of its own,
 * removed afterwards) with a small maxmemory, which it fills and empties: the
 * shared Redis is never filled.
 */
describe('POST /v1/batch when Redis memory runs short', () => {
  let fixture: Fixture;
  let redis: ThrowawayRedis;
  let admin: Redis;
  let fillers = 0;

  const usedMemory = async () => parseMemoryInfo(await admin.info('memory'))!.usedBytes;
  /** Writes 256 KiB values until Redis uses at least `bytes`. */
  const fillTo = async (bytes: number) => {
    while ((await usedMemory()) < bytes) await admin.set(`filler:${fillers++}`, FILLER);
  };
  const empty = async () => {
    const keys = Array.from({ length: fillers }, (_, i) => `filler:${i}`);
    if (keys.length > 0) await admin.del(...keys);
    fillers = 0;
  };
  const producer = async () => {
    const connection = createRedis(redis.url, 'producer');
    connection.on('error', () => {});
    if (connection.status !== 'ready') await new Promise((resolve) => connection.once('ready', resolve));
    return connection;
  };
  const jobsOnThrowaway = async () => {
    const queue = new Queue(QUEUES.ingest, { connection: { url: redis.url }, prefix: fixture.prefix.prefix });
    try {
      return await queue.count();
    } finally {
      await queue.close();
    }
  };

  beforeAll(async () => {
    fixture = await createFixture();
    // No AOF: the fillers need not reach the disk.
    redis = await startThrowawayRedis(['--maxmemory', String(MAXMEMORY), '--appendonly', 'no']);
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await fixture?.cleanup();
    await redis?.remove();
  });
  afterEach(async () => {
    await empty();
    await admin.config('SET', 'maxmemory', String(MAXMEMORY));
  });

  it('answers 429 with Retry-After past MAX_REDIS_MEMORY_RATIO of maxmemory, and 202 again once memory is freed', async () => {
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, MAX_REDIS_MEMORY_RATIO: 0.8 }, { redis: await producer() });
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);

    await fillTo(0.82 * MAXMEMORY);
    // The app reads Redis memory at most once a second: the refusal comes within that.
    const refused = await waitFor(
      async () => {
        const response = await post(app, fixture, { events: validEvents() });
        return response.statusCode === 202 ? undefined : response;
      },
      { intervalMs: 100, what: 'a 429' },
    );
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.json()).toMatchObject({
      statusCode: 429,
      error: 'Too Many Requests',
      accepted: 0,
      rejected: [],
      message: expect.stringMatching(/^Redis, which holds the batches waiting to be stored, uses [\d.]+ MiB, past 80% of its maxmemory of 16\.0 MiB \(MAX_REDIS_MEMORY_RATIO\); send this batch again in \d+ s\.$/),
    });
    const queued = await jobsOnThrowaway();
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(429);
    expect(await jobsOnThrowaway()).toBe(queued);
    expect(await metricValue(app, 'tally_ingest_refusals_total{reason="redis_memory",app="ingest-api"}')).toBeGreaterThanOrEqual(2);
    expect(await metricValue(app, 'tally_ingest_batches_total{outcome="overloaded",app="ingest-api"}')).toBeGreaterThanOrEqual(2);

    await empty();
    await waitFor(async () => ((await post(app, fixture, { events: validEvents() })).statusCode === 202 ? true : undefined), {
      intervalMs: 100,
      what: 'batches to be accepted again',
    });
    expect(await jobsOnThrowaway()).toBe(queued + 1);
  });

  it('uses MAX_REDIS_MEMORY_MB when Redis has no maxmemory', async () => {
    await admin.config('SET', 'maxmemory', '0');
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, MAX_REDIS_MEMORY_MB: 6 }, { redis: await producer() });
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);

    await fillTo(6.5 * 1_048_576);
    const refused = await waitFor(
      async () => {
        const response = await post(app, fixture, { events: validEvents() });
        return response.statusCode === 202 ? undefined : response;
      },
      { intervalMs: 100, what: 'a 429' },
    );
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(refused.json().message).toMatch(/past the limit of 6\.0 MiB \(MAX_REDIS_MEMORY_MB\)/);

    await empty();
    await waitFor(async () => ((await post(app, fixture, { events: validEvents() })).statusCode === 202 ? true : undefined), {
      intervalMs: 100,
      what: 'batches to be accepted again',
    });
  });

  it('never refuses for memory when both limits are off, and then does not read it', async () => {
    await admin.config('RESETSTAT');
    const app = await fixture.build(
      { QUEUE_PREFIX: fixture.prefix.prefix, MAX_REDIS_MEMORY_RATIO: 0, MAX_REDIS_MEMORY_MB: 0 },
      { redis: await producer() },
    );
    await fillTo(0.9 * MAXMEMORY);
    for (let i = 0; i < 3; i++) expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);
    expect(await metricValue(app, 'tally_ingest_refusals_total{reason="redis_memory",app="ingest-api"}')).toBe(0);
  });

  it('reads INFO memory at most once a second, however many batches arrive', async () => {
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, MAX_REDIS_MEMORY_RATIO: 0.8 }, { redis: await producer() });
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);
    const infoCalls = async () => Number(/cmdstat_info:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    const before = await infoCalls();
    const started = Date.now();
    // 40 batches at once and 40 one after the other.
    const responses = await Promise.all(Array.from({ length: 40 }, () => post(app, fixture, { events: validEvents() })));
    for (let i = 0; i < 40; i++) responses.push(await post(app, fixture, { events: validEvents() }));
    const seconds = (Date.now() - started) / 1_000;
    expect(responses.every((response) => response.statusCode === 202)).toBe(true);
    // The test's own INFO commandstats counts as one call.
    expect((await infoCalls()) - before - 1).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
  });

  it('lets batches through when INFO cannot be read, and counts the failure', async () => {
    // A user that may do everything BullMQ needs but INFO, as on some managed Redis services.
    await admin.call('ACL', 'SETUSER', 'no-info', 'on', '>secret', '~*', '&*', '+@all', '-info');
    const connection = new Redis(redis.url, {
      username: 'no-info',
      password: 'secret',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // ioredis's own ready check is an INFO too.
      enableReadyCheck: false,
    });
    connection.on('error', () => {});
    await new Promise((resolve) => connection.once('ready', resolve));
    const queues = Object.fromEntries(
      Object.values(QUEUES).map((name) => [name, new Queue(name, { connection, prefix: fixture.prefix.prefix, skipVersionCheck: true })]),
    ) as TallyQueues;
    const config: IngestApiConfig = { ...loadIngestApiConfig({}), MAX_REDIS_MEMORY_RATIO: 0.8, MAX_REDIS_MEMORY_MB: 1 };
    const app: IngestApp = await buildApp({ config, db: fixture.database.db, queues, redis: connection, logger: createLogger('ingest-test') });
    try {
      // Past both limits, but the app cannot know it.
      await fillTo(0.85 * MAXMEMORY);
      for (let i = 0; i < 3; i++) expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);
      expect(await metricValue(app, 'tally_ingest_check_failures_total{check="redis_memory",app="ingest-api"}')).toBeGreaterThanOrEqual(1);
      expect(await metricValue(app, 'tally_ingest_refusals_total{reason="redis_memory",app="ingest-api"}')).toBe(0);
    } finally {
      await app.close();
      await closeQueues(queues);
      connection.disconnect();
    }
  });
});

describe('the Redis memory limit', () => {
  it('reads used_memory and maxmemory from INFO memory', () => {
    const info = '# Memory\r\nused_memory:2332576\r\nused_memory_human:2.22M\r\nmaxmemory:16777216\r\nmaxmemory_human:16.00M\r\n';
    expect(parseMemoryInfo(info)).toEqual({ usedBytes: 2_332_576, maxBytes: 16_777_216 });
    expect(parseMemoryInfo('# Memory\r\nused_memory_rss:1\r\n')).toBeUndefined();
  });

  it('takes the lower of the limits that apply', () => {
    const memory = { usedBytes: 0, maxBytes: 100 * 1_048_576 };
    expect(memoryLimit(memory, { ratio: 0.8, bytes: 0 })?.bytes).toBe(80 * 1_048_576);
    expect(memoryLimit(memory, { ratio: 0.8, bytes: 50 * 1_048_576 })?.bytes).toBe(50 * 1_048_576);
    expect(memoryLimit({ ...memory, maxBytes: 0 }, { ratio: 0.8, bytes: 0 })).toBeUndefined();
    expect(memoryLimit({ ...memory, maxBytes: 0 }, { ratio: 0.8, bytes: 10 })?.bytes).toBe(10);
    expect(memoryLimit(memory, { ratio: 0, bytes: 0 })).toBeUndefined();
  });
});
