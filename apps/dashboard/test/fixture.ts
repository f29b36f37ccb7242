import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { createLogger } from '@tally/logger';
import { closeQueues, createQueues, createRedis, type QueueName, type TallyQueues } from '@tally/queue';
import { createTestQueuePrefix, waitFor, type TestQueuePrefix } from '@tally/testing';
import { buildApp, type BuildAppOptions } from '../src/app.js';

export const USER = 'ops';
export const PASSWORD = 'correct horse battery staple';

export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export type DashboardApp = Awaited<ReturnType<typeof buildApp>>;

/** A queue prefix of this test file's own, producer-side queues to put jobs in, and the dashboards it built. */
export interface Fixture {
  prefix: TestQueuePrefix;
  queues: TallyQueues;
  build: (config?: Partial<BuildAppOptions['config']>, options?: Partial<Omit<BuildAppOptions, 'config'>>) => Promise<DashboardApp>;
  cleanup: () => Promise<void>;
}

export async function createFixture(): Promise<Fixture> {
  const prefix = createTestQueuePrefix();
  const producer = createRedis(prefix.redisUrl, 'producer');
  const queues = createQueues(producer, prefix.prefix);
  const built: { app: DashboardApp; connection: Redis }[] = [];
  return {
    prefix,
    queues,
    build: async (config = {}, options = {}) => {
      const connection = options.connection ?? createRedis(prefix.redisUrl, 'producer');
      // main.ts reports connection errors; here they are expected and only must not go unheard.
      connection.on('error', () => {});
      const app = await buildApp({
        config: {
          QUEUE_PREFIX: prefix.prefix,
          TALLY_ENV: 'production',
          DASHBOARD_USER: USER,
          DASHBOARD_PASSWORD: PASSWORD,
          DASHBOARD_READ_ONLY: false,
          ...config,
        },
        logger: createLogger('dashboard-test'),
        ...options,
        connection,
      });
      built.push({ app, connection });
      return app;
    },
    cleanup: async () => {
      for (const { app, connection } of built) {
        await app.close();
        connection.disconnect();
      }
      await closeQueues(queues);
      producer.disconnect();
      await prefix.remove();
    },
  };
}

export interface QueuesResponse {
  queues: { name: string; readOnlyMode: boolean; counts: Record<string, number>; jobs: { id: string; name: string; data: unknown }[] }[];
}

/** Adds a job and lets a real worker fail it for good, as a broken batch would. */
export async function failJob(fixture: Fixture, queue: QueueName, jobId: string): Promise<Job> {
  const job = await fixture.queues[queue].add('test-job', { jobId }, { jobId, attempts: 1 });
  const connection = createRedis(fixture.prefix.redisUrl, 'worker');
  const worker = new Worker(
    queue,
    async () => {
      throw new UnrecoverableError('failed on purpose');
    },
    { connection, prefix: fixture.prefix.prefix },
  );
  try {
    await waitFor(async () => ((await fixture.queues[queue].getJobState(jobId)) === 'failed' ? true : undefined), {
      what: `job ${jobId} to fail`,
    });
  } finally {
    await worker.close();
    connection.disconnect();
  }
  return job;
}
