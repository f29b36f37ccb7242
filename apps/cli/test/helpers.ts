import { UnrecoverableError, Worker } from 'bullmq';
import type { StoredEvent } from '@tally/contracts';
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

const MINUTE = 60_000;

/**
 * One experiment's worth of events, with what makes its numbers hard: events before
 * first exposure (not counted), a session that saw two variants (excluded), several
 * goals, sessions first exposed in different hours, and another experiment beside it.
 */
export function experimentHistory(experimentId: string, start = Date.UTC(2026, 0, 15, 10, 0)): StoredEvent[] {
  let n = 0;
  const event = (
    eventType: StoredEvent['eventType'],
    sessionId: string,
    minute: number,
    extra: Partial<Pick<StoredEvent, 'experimentId' | 'variantKey' | 'goal'>> = {},
  ): StoredEvent => {
    const timestamp = start + minute * MINUTE;
    return {
      eventId: `${experimentId}-${++n}`,
      eventType,
      sessionId,
      viewId: null,
      experimentId: extra.experimentId ?? null,
      variantKey: extra.variantKey ?? null,
      goal: extra.goal ?? null,
      properties: null,
      timestamp,
      clientTimestamp: timestamp,
    };
  };
  const exposure = (sessionId: string, minute: number, variantKey: string, experiment = experimentId) =>
    event('EXPOSURE', sessionId, minute, { experimentId: experiment, variantKey });
  return [
    event('PAGEVIEW', 's1', -5),
    exposure('s1', 0, 'control'),
    event('PAGEVIEW', 's1', 1),
    event('CONVERSION', 's1', 2, { goal: 'purchase' }),
    exposure('s2', 0, 'treatment'),
    event('CONVERSION', 's2', 3, { goal: 'signup' }),
    event('CONVERSION', 's2', 4, { goal: 'purchase' }),
    exposure('s3', 10, 'control'),
    exposure('s3', 11, 'treatment'),
    event('PAGEVIEW', 's3', 12),
    exposure('s4', 60, 'treatment'),
    event('PAGEVIEW', 's4', 61),
    event('PAGEVIEW', 's4', 62),
    event('CONVERSION', 's5', 0, { goal: 'purchase' }),
    exposure('s5', 30, 'control'),
    exposure('s1', 5, 'b', `${experimentId}-other`),
  ];
}
