import { UnrecoverableError, Worker } from 'bullmq';
import { createRedis, type QueueName, type TallyQueues } from '@tally/queue';
import { waitFor, type TestQueuePrefix } from '@tally/testing';
import { run } from '../src/run.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a `tally` command line in-process, with only the given environment, and captures its output. */
export async function tally(argv: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env,
  });
  return { code, stdout, stderr };
}

export const lines = (text: string) => text.split('\n').filter((line) => line !== '');

/** The shape every failure must have: one line on stderr, no stack trace, nothing on stdout. */
export function expectOneSentenceError(result: CliResult, pattern: RegExp, code = 1): void {
  if (result.code !== code || lines(result.stderr).length !== 1 || result.stdout !== '' || !pattern.test(result.stderr)) {
    throw new Error(`expected exit ${code} with one line matching ${pattern} on stderr, got ${JSON.stringify(result)}`);
  }
  if (/\n\s+at /.test(result.stderr)) throw new Error(`stack trace on stderr: ${result.stderr}`);
}

/** Adds a job and lets a real worker fail it for good, as a broken batch would. */
export async function failJobs(queues: TallyQueues, prefix: TestQueuePrefix, queue: QueueName, ids: string[]): Promise<void> {
  for (const jobId of ids) await queues[queue].add('test-job', { jobId }, { jobId, attempts: 1 });
  const connection = createRedis(prefix.redisUrl, 'worker');
  const worker = new Worker(
    queue,
    async () => {
      throw new UnrecoverableError('failed on purpose');
    },
    { connection, prefix: prefix.prefix },
  );
  try {
    await waitFor(
      async () => {
        const states = await Promise.all(ids.map((id) => queues[queue].getJobState(id)));
        return states.every((state) => state === 'failed') ? true : undefined;
      },
      { what: `jobs ${ids.join(', ')} to fail` },
    );
  } finally {
    await worker.close();
    connection.disconnect();
  }
}
