import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createProject, migrateDatabase, type DbHandle, type ProjectKeys } from '@tally/db';
import { closeQueues, createQueues, createRedis, type TallyQueues } from '@tally/queue';
import {
  createTestQueuePrefix,
  startApps,
  startThrowawayPostgres,
  waitFor,
  type RunningApp,
  type TestQueuePrefix,
  type ThrowawayPostgres,
} from '@tally/testing';
import { RetryingClient } from '../src/client.js';
import { expectExactResults, queryApiResults, settle } from '../src/exactness.js';
import { countEvents, makeTraffic } from '../src/traffic.js';

/**
 * Postgres stopped (pg_ctl stop -m fast: every session terminated) in the middle
 * of a stream and started again. The ingest API needs Postgres only to check
 * write keys, which it has cached, so it keeps answering 202 and the queue
 * buffers; the worker's inserts fail, it backs off and pauses, and once Postgres
 * is back it works the backlog off. Every app runs as its own process against a
 * cluster of this test's own.
 */

/** The value of a Prometheus counter line whose labels include all of `labels`, 0 when absent. */
function counter(metrics: string, name: string, labels: Record<string, string>): number {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('Postgres restarted in the middle of a stream', () => {
  let postgres: ThrowawayPostgres;
  let database: DbHandle;
  let prefix: TestQueuePrefix;
  let keys: ProjectKeys;
  let producer: ReturnType<typeof createRedis>;
  let queues: TallyQueues;
  let apps: RunningApp[] = [];

  beforeAll(async () => {
    postgres = await startThrowawayPostgres();
    const url = postgres.url('tally_faults');
    await migrateDatabase(url);
    database = createDb(url, { max: 3, applicationName: 'faults-test' });
    keys = await createProject(database.db, 'faults-postgres-restart');
    prefix = createTestQueuePrefix();
    producer = createRedis(prefix.redisUrl, 'producer');
    queues = createQueues(producer, prefix.prefix);
    const env = { DATABASE_URL: url, REDIS_URL: prefix.redisUrl, QUEUE_PREFIX: prefix.prefix };
    apps = await startApps(['ingest-api', 'worker', 'query-api'], env);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.stop()));
    if (queues) await closeQueues(queues);
    producer?.disconnect();
    await database?.close();
    await postgres?.remove();
    await prefix?.remove();
  });

  it('keeps accepting while Postgres is down, then the worker catches up: results exact', async () => {
    const [ingest, worker, query] = apps as [RunningApp, RunningApp, RunningApp];
    const traffic = makeTraffic({ batches: 150, eventsPerBatch: 100, idPrefix: 'pg', seed: 11 });
    const client = new RetryingClient(ingest.url, keys.writeKey);
    const streaming = client.stream(traffic, { concurrency: 2, paceMs: 100 });
    streaming.catch(() => {});

    await waitFor(
      async () => (client.delivered >= 15 && (await queues.ingest.getJobCounts('completed')).completed! >= 3 ? true : undefined),
      { what: 'the stream to be flowing into Postgres' },
    );
    await postgres.stop();
    const stoppedAt = Date.now();
    const deliveredAtStop = client.delivered;

    // Down for a few seconds, and at least until batches kept being accepted and the
    // worker has failed inserts more than once (its pause doubles each time).
    await waitFor(
      async () => {
        const metrics = await (await fetch(`${worker.url}/metrics`)).text();
        const retried = counter(metrics, 'tally_worker_jobs_failed_total', { name: 'ingest-batch', final: 'false' });
        return retried >= 2 && client.delivered >= deliveredAtStop + 10 && Date.now() - stoppedAt >= 4_000 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'batches accepted and failed inserts during the outage' },
    );
    const during = await queues.ingest.getJobCounts('waiting', 'delayed');
    expect(during.waiting! + during.delayed!, 'batches buffered in the queue').toBeGreaterThan(0);
    const workerReady = await fetch(`${worker.url}/readyz`);
    expect(workerReady.status).toBe(503);
    expect(((await workerReady.json()) as { checks: Record<string, string> }).checks.postgres).not.toBe('ok');
    // The ingest API stays ready (it accepts batches with the keys it knows) and reports Postgres as down.
    const ingestReady = await fetch(`${ingest.url}/readyz`);
    expect(ingestReady.status).toBe(200);
    expect(((await ingestReady.json()) as { checks: Record<string, string> }).checks.postgres).not.toBe('ok');
    expect((await fetch(`${ingest.url}/healthz`)).status).toBe(200);

    await postgres.start();
    await streaming;
    // Not one batch was refused: the ingest API never needed Postgres.
    expect(client.attempts.filter((attempt) => attempt.status !== 202)).toEqual([]);

    await settle(queues.ingest, database.db, { timeoutMs: 90_000 });
    expect((await queues.ingest.getJobCounts('failed')).failed).toBe(0);
    await expectExactResults({
      db: database.db,
      projectId: keys.projectId,
      acceptedEvents: countEvents(traffic),
      read: queryApiResults(query.url, keys.readKey),
    });
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(counter(metrics, 'tally_worker_jobs_failed_total', { name: 'ingest-batch', final: 'true' })).toBe(0);
  }, 150_000);
});
