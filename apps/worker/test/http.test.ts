import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '@tally/db';
import { createLogger } from '@tally/logger';
import { createRedis } from '@tally/queue';
import { createMetricsRegistry } from '@tally/server';
import type { Redis } from 'ioredis';
import { buildHttpServer } from '../src/http.js';
import { createFixture, type Fixture } from './fixtures.js';

describe('the worker HTTP server', () => {
  let fx: Fixture;
  let connection: Redis;
  let unreachable: DbHandle;

  beforeAll(async () => {
    fx = await createFixture();
    connection = createRedis(fx.prefix.redisUrl, 'worker');
    unreachable = createDb('postgres://postgres@127.0.0.1:1/tally', { max: 1 });
  });
  afterAll(async () => {
    connection?.disconnect();
    await unreachable?.close();
    await fx?.cleanup();
  });

  it('is alive, and ready when Redis and Postgres answer', async () => {
    const registry = createMetricsRegistry('worker');
    const app = await buildHttpServer({ logger: createLogger('worker-test'), db: fx.database.db, connection, registry });
    try {
      expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
      const ready = await app.inject('/readyz');
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({ status: 'ready', checks: { redis: 'ok', postgres: 'ok' } });
    } finally {
      await app.close();
    }
  });

  it('is not ready while Postgres is unreachable, and says which dependency failed', async () => {
    const registry = createMetricsRegistry('worker');
    const app = await buildHttpServer({ logger: createLogger('worker-test'), db: unreachable.db, connection, registry });
    try {
      const ready = await app.inject('/readyz');
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'not ready', checks: { redis: 'ok', postgres: expect.stringMatching(/ECONNREFUSED/) } });
    } finally {
      await app.close();
    }
  });

  it('serves the job and queue metrics for Prometheus', async () => {
    const registry = createMetricsRegistry('worker');
    const worker = await fx.start({ registry });
    const app = await buildHttpServer({ logger: createLogger('worker-test'), db: fx.database.db, connection, registry });
    try {
      await fx.queues.ingest.add('unknown-job', {});
      const response = await app.inject('/metrics');
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      for (const name of [
        'tally_worker_jobs_completed_total',
        'tally_worker_jobs_failed_total',
        'tally_worker_events_inserted_total',
        'tally_worker_events_duplicate_total',
        'tally_worker_insert_duration_seconds',
        'process_cpu_seconds_total',
      ]) {
        expect(response.body).toContain(`# TYPE ${name}`);
      }
      for (const state of ['waiting', 'active', 'delayed', 'failed']) {
        expect(response.body).toMatch(new RegExp(`^tally_queue_jobs\\{queue="ingest",state="${state}",app="worker"\\} \\d+$`, 'm'));
        expect(response.body).toMatch(new RegExp(`^tally_queue_jobs\\{queue="maintenance",state="${state}",app="worker"\\} \\d+$`, 'm'));
      }
    } finally {
      await app.close();
      await worker.close();
    }
  });
});
