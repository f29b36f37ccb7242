import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobName, JobPayload } from '@tally/contracts';
import { JOBS, QUEUES, type QueueName } from './definitions.js';

export { JOBS, QUEUES, type QueueName } from './definitions.js';
export { createRedis } from './connection.js';

export type TallyQueues = Record<QueueName, Queue>;

export function createQueues(connection: Redis, prefix: string): TallyQueues {
  const entries = Object.values(QUEUES).map((name) => [name, new Queue(name, { connection, prefix })] as const);
  return Object.fromEntries(entries) as TallyQueues;
}

/** Adds a job with its declared options; the payload type follows from the job name. */
export function addJob<N extends JobName>(
  queues: TallyQueues,
  name: N,
  payload: JobPayload<N>,
  options: { jobId?: string } = {},
): Promise<Job> {
  const definition = JOBS[name];
  return queues[definition.queue].add(name, payload, { ...definition.options, ...options });
}

export async function closeQueues(queues: TallyQueues): Promise<void> {
  await Promise.all(Object.values(queues).map((queue) => queue.close()));
}
