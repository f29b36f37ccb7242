import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { batchRowsKey, closeQueues, createQueues, createRedis, FAILED_BATCH_ROWS_TTL_MS, type TallyQueues } from '@tally/queue';
import { createTestQueuePrefix, type TestQueuePrefix } from '@tally/testing';
import { expectOneSentenceError, failJobs, lines, tally } from './helpers.js';

describe('tally jobs retry-failed', () => {
  let prefix: TestQueuePrefix;
  let connection: Redis;
  let queues: TallyQueues;
  let env: Record<string, string>;

  beforeAll(async () => {
    prefix = createTestQueuePrefix();
    connection = createRedis(prefix.redisUrl, 'producer');
    queues = createQueues(connection, prefix.prefix);
    env = { REDIS_URL: prefix.redisUrl, QUEUE_PREFIX: prefix.prefix };
  });
  afterAll(async () => {
    await closeQueues(queues);
    connection.disconnect();
    await prefix.remove();
  });

  it('says when there is nothing to retry', async () => {
    const result = await tally(['jobs', 'retry-failed'], env);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(lines(result.stdout)).toEqual(['No failed jobs in queue ingest.']);
  });

  it('moves failed ingest jobs back to waiting, oldest first, up to the limit, with fresh attempts', async () => {
    await failJobs(queues, prefix, 'ingest', ['a', 'b', 'c']);
    await failJobs(queues, prefix, 'maintenance', ['m']);
    expect((await queues.ingest.getJob('a'))?.attemptsMade).toBe(1);

    const first = await tally(['jobs', 'retry-failed', '--limit', '2'], env);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(lines(first.stdout)).toEqual(['Retried 2 failed jobs in queue ingest.']);
    expect(await Promise.all(['a', 'b', 'c'].map((id) => queues.ingest.getJobState(id)))).toEqual(['waiting', 'waiting', 'failed']);
    expect((await queues.ingest.getJob('a'))?.attemptsMade).toBe(0);

    const rest = await tally(['jobs', 'retry-failed', '--json'], env);
    expect(rest.stdout).toBe('{"queue":"ingest","retried":1,"skipped":0}\n');
    expect(await queues.ingest.getJobState('c')).toBe('waiting');
    // Only the queue asked for.
    expect(await queues.maintenance.getJobState('m')).toBe('failed');
  });

  it('retries in the queue it is given', async () => {
    const result = await tally(['jobs', 'retry-failed', '--queue', 'maintenance'], env);
    expect(lines(result.stdout)).toEqual(['Retried 1 failed job in queue maintenance.']);
    expect(await queues.maintenance.getJobState('m')).toBe('waiting');
  });

  it("keeps a retried ingest batch's rows from expiring", async () => {
    const rowsId = randomUUID();
    const rowsKey = batchRowsKey(prefix.prefix, rowsId);
    await queues.ingest.waitUntilReady();
    // As the worker leaves the rows of a job that failed for good.
    await connection.set(rowsKey, 'rows', 'PX', FAILED_BATCH_ROWS_TTL_MS);
    await failJobs(queues, prefix, 'ingest', ['with-rows'], { rowsId });

    // The earlier tests' jobs, failed again by failJobs's worker, are retried too.
    expect(await tally(['jobs', 'retry-failed'], env)).toMatchObject({ code: 0, stderr: '' });
    expect(await queues.ingest.getJobState('with-rows')).toBe('waiting');
    expect(await connection.pttl(rowsKey)).toBe(-1);
    expect(await connection.get(rowsKey)).toBe('rows');
  });

  it.each([
    [['jobs', 'retry-failed', '--queue', 'emails'], /Allowed choices are ingest, maintenance/],
    [['jobs', 'retry-failed', '--limit', '0'], /whole number from 1/],
    [['jobs', 'retry-failed', '--limit', 'all'], /whole number from 1/],
    [['jobs', 'retry-failed', '--limit', '2.5'], /whole number from 1/],
  ])('refuses `tally %s` as a usage error', async (argv, pattern) => {
    expectOneSentenceError(await tally(argv, env), pattern, 2);
  });
});
