import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type ProjectKeys } from '@tally/db';
import { createLogger } from '@tally/logger';
import { createRedis } from '@tally/queue';
import { createRateLimiter, type RateLimiter } from '../src/rate-limit.js';
import { createFixture, metricValue, post, validEvents, type Fixture, type IngestApp } from './fixture.js';

/** `validEvents()` gives 3 events per batch. */
const LIMIT = 30;

describe('POST /v1/batch over the project’s rate limit', () => {
  let fixture: Fixture;
  let first: IngestApp;
  let second: IngestApp;
  let other: ProjectKeys;
  let admin: Redis;

  beforeAll(async () => {
    fixture = await createFixture();
    other = await createProject(fixture.database.db, 'another project');
    // Two ingest processes, each with its own Redis connection, sharing the counters.
    first = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, RATE_LIMIT_EVENTS_PER_MINUTE: LIMIT });
    second = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, RATE_LIMIT_EVENTS_PER_MINUTE: LIMIT });
    admin = new Redis(fixture.prefix.redisUrl);
  });
  afterAll(async () => {
    admin?.disconnect();
    await fixture?.cleanup();
  });

  it('holds across two ingest processes, answering 429 with Retry-After and a message naming the limit', async () => {
    for (let i = 0; i < LIMIT / 3; i++) {
      const response = await post(i % 2 === 0 ? first : second, fixture, { events: validEvents() });
      expect(response.statusCode).toBe(202);
    }
    for (const app of [first, second]) {
      const response = await post(app, fixture, { events: validEvents() });
      expect(response.statusCode).toBe(429);
      expect(response.json()).toMatchObject({
        statusCode: 429,
        accepted: 0,
        rejected: [],
        message: expect.stringMatching(
          /^Rate limit: this project may send 30 events per minute \(RATE_LIMIT_EVENTS_PER_MINUTE\) and has sent about \d+ in the last minute; these 3 events fit in \d+ s, send this batch again then\.$/,
        ),
      });
      // 30 events counted in a window with nothing before it: 3 more fit once the next
      // window has let 10% of this one slide out, 6 to 66 s from now (1 to 66 s should
      // the test straddle a minute; the counter's own tests check the exact figure).
      const retryAfter = Number(response.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(66);
      expect(response.json().message).toContain(`fit in ${retryAfter} s`);
    }
    expect((await fixture.jobs()).filter((job) => job.data.projectId === fixture.keys.projectId)).toHaveLength(LIMIT / 3);
    expect(await metricValue(first, 'tally_ingest_refusals_total{reason="rate_limit",app="ingest-api"}')).toBe(1);
    expect(await metricValue(second, 'tally_ingest_refusals_total{reason="rate_limit",app="ingest-api"}')).toBe(1);
  });

  it('does not hold back another project', async () => {
    for (const app of [first, second]) {
      expect((await post(app, fixture, { events: validEvents() }, { key: other.writeKey })).statusCode).toBe(202);
    }
  });

  it('counts only valid events', async () => {
    const limited = await createProject(fixture.database.db, 'valid only');
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, RATE_LIMIT_EVENTS_PER_MINUTE: 3 });
    const invalid = Array.from({ length: 5 }, () => ({ eventType: 'PAGEVIEW' }));
    const response = await post(app, fixture, { events: [...invalid, ...validEvents()] }, { key: limited.writeKey });
    expect(response.statusCode).toBe(202);
    expect(response.json().accepted).toBe(3);
  });

  it('answers 413 for a batch with more valid events than the whole limit, which waiting would never let through', async () => {
    const limited = await createProject(fixture.database.db, 'small limit');
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, RATE_LIMIT_EVENTS_PER_MINUTE: 5 });
    const response = await post(app, fixture, { events: [...validEvents(), ...validEvents()] }, { key: limited.writeKey });
    expect(response.statusCode).toBe(413);
    expect(response.json().message).toMatch(/^The batch has 6 valid events, more than the 5 this project may send in a minute .*split it/);
  });

  it('keeps its counters under the queue prefix, with a TTL', async () => {
    const key = `${fixture.prefix.prefix}:ratelimit:${fixture.keys.projectId}`;
    const ttl = await admin.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120_000);
  });

  it('lets batches through, logs and counts the failure when Redis cannot count', async () => {
    const project = await createProject(fixture.database.db, 'broken counter');
    const key = `${fixture.prefix.prefix}:ratelimit:${project.projectId}`;
    // A key of the wrong type makes the script fail in Redis, as a real Redis error would.
    await admin.set(key, 'not a hash');
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, RATE_LIMIT_EVENTS_PER_MINUTE: 3 });
    for (let i = 0; i < 3; i++) {
      expect((await post(app, fixture, { events: validEvents() }, { key: project.writeKey })).statusCode).toBe(202);
    }
    expect(await metricValue(app, 'tally_ingest_check_failures_total{check="rate_limit",app="ingest-api"}')).toBe(3);

    await admin.del(key);
    expect((await post(app, fixture, { events: validEvents() }, { key: project.writeKey })).statusCode).toBe(202);
    expect((await post(app, fixture, { events: validEvents() }, { key: project.writeKey })).statusCode).toBe(429);
  });

  it('counts nothing with RATE_LIMIT_EVENTS_PER_MINUTE=0', async () => {
    const project = await createProject(fixture.database.db, 'unlimited');
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, RATE_LIMIT_EVENTS_PER_MINUTE: 0 });
    expect((await post(app, fixture, { events: validEvents() }, { key: project.writeKey })).statusCode).toBe(202);
    expect(await admin.exists(`${fixture.prefix.prefix}:ratelimit:${project.projectId}`)).toBe(0);
  });
});

describe('the sliding-window counter', () => {
  let fixture: Fixture;
  let redis: Redis;
  let limiter: RateLimiter;
  const logger = createLogger('rate-limit-test', 'silent');

  beforeAll(async () => {
    fixture = await createFixture();
    redis = createRedis(fixture.prefix.redisUrl, 'producer');
    await new Promise((resolve) => redis.once('ready', resolve));
    // 10 events a second; the tests give the clock themselves, so they are exact.
    limiter = createRateLimiter({ redis, prefix: fixture.prefix.prefix, limit: 10, windowMs: 1_000, logger });
  });
  afterAll(async () => {
    redis?.disconnect();
    await fixture?.cleanup();
  });

  const T = 1_700_000_000_000;

  it('says when a batch fits again once the current window must slide out', async () => {
    const project = randomUUID();
    expect(await limiter.take(project, 10, T)).toEqual({ allowed: true, counted: 10 });
    // Nothing in the previous window: 1 more fits when the next window has let 10% of this one go.
    expect(await limiter.take(project, 1, T)).toEqual({ allowed: false, counted: 10, retryAfterMs: 1_100 });
    expect(await limiter.take(project, 1, T + 1_099)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    expect(await limiter.take(project, 1, T + 1_100)).toEqual({ allowed: true, counted: 10 });
  });

  it('says when a batch fits again once the previous window has slid out enough', async () => {
    const project = randomUUID();
    expect(await limiter.take(project, 8, T)).toEqual({ allowed: true, counted: 8 });
    // Half-way through the next window, half of those 8 still count.
    expect(await limiter.take(project, 5, T + 1_500)).toEqual({ allowed: true, counted: 9 });
    // 4 + 5 + 3 > 10; 4 of the previous window must drop to 2: 3/4 through the window, 250 ms from now.
    expect(await limiter.take(project, 3, T + 1_500)).toEqual({ allowed: false, counted: 9, retryAfterMs: 250 });
    expect(await limiter.take(project, 3, T + 1_749)).toMatchObject({ allowed: false });
    expect(await limiter.take(project, 3, T + 1_750)).toEqual({ allowed: true, counted: 10 });
  });

  it('never lets twice the limit through across a window boundary', async () => {
    const project = randomUUID();
    expect(await limiter.take(project, 10, T + 999)).toMatchObject({ allowed: true });
    expect(await limiter.take(project, 1, T + 1_000)).toMatchObject({ allowed: false });
  });

  it('is accepted again after the Retry-After it gave, on Redis’s clock', async () => {
    const project = randomUUID();
    const fast = createRateLimiter({ redis, prefix: fixture.prefix.prefix, limit: 4, windowMs: 500, logger });
    expect(await fast.take(project, 4)).toMatchObject({ allowed: true });
    const refused = await fast.take(project, 2);
    if (refused?.allowed !== false || !('retryAfterMs' in refused)) throw new Error(`expected a refusal, got ${JSON.stringify(refused)}`);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(750);
    await new Promise((resolve) => setTimeout(resolve, refused.retryAfterMs + 20));
    expect(await fast.take(project, 2)).toMatchObject({ allowed: true });
  });
});
