import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Option, type Command } from 'commander';
import type { Logger } from '@tally/logger';
import { keepBatchRows, QUEUES } from '@tally/queue';
import type { CommandContext } from '../context.js';
import { wholeNumber } from '../options.js';

export function registerJobsRetryFailed(jobs: Command, context: CommandContext): void {
  jobs
    .command('retry-failed')
    .description('move failed jobs back to waiting, with their attempts reset, and print how many')
    .addOption(new Option('--queue <name>', 'the queue').choices(Object.values(QUEUES)).default(QUEUES.ingest))
    .option('--limit <n>', 'retry at most this many, oldest failure first (default: all)', wholeNumber(1, 1_000_000))
    .option('--json', 'print one line {"queue","retried","skipped"}')
    .action(async (options: { queue: keyof typeof QUEUES; limit?: number; json?: boolean }) => {
      const queue = (await context.queues())[options.queue];
      const { retried, skipped } = await retryFailed(queue, options.limit, context.logger());
      if (options.json) {
        context.print(JSON.stringify({ queue: options.queue, retried, skipped }));
        return;
      }
      const skippedNote = skipped > 0 ? ` (${skipped} had left the failed set meanwhile)` : '';
      context.print(
        retried === 0 && skipped === 0
          ? `No failed jobs in queue ${options.queue}.`
          : `Retried ${retried} failed job${retried === 1 ? '' : 's'} in queue ${options.queue}${skippedNote}.`,
      );
    });
}

/**
 * Retries the jobs that were failed when the command started. Taking the ids first
 * bounds the work: a retried job that fails again while this runs is not retried twice.
 */
export async function retryFailed(queue: Queue, limit: number | undefined, logger: Logger): Promise<{ retried: number; skipped: number }> {
  const ids = await queue.getRanges(['failed'], 0, limit === undefined ? -1 : limit - 1, true);
  let retried = 0;
  let skipped = 0;
  for (const id of ids) {
    const job = await Job.fromId(queue, id);
    try {
      if (!job) throw new Error('job no longer exists');
      // Fresh attempts: the job gets its whole backoff again, as after a first failure.
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      retried++;
      // The batch's rows were set to expire when the job failed for good (@tally/queue's batch-rows).
      const { rowsId } = job.data as { rowsId?: unknown };
      if (queue.name === QUEUES.ingest && typeof rowsId === 'string') {
        // The queues run on an ioredis connection (createQueues), which BullMQ's type does not say.
        const redis = (await queue.client) as unknown as Redis;
        await keepBatchRows(redis, queue.opts.prefix!, rowsId).catch((err: unknown) =>
          logger.warn({ err, jobId: id }, "retried, but its batch's rows still expire as set when it failed"),
        );
      }
    } catch (err) {
      // Removed, or retried by someone else, between listing and retrying.
      skipped++;
      logger.debug({ err, jobId: id, queue: queue.name }, 'failed job not retried');
    }
  }
  logger.debug({ queue: queue.name, retried, skipped }, 'failed jobs retried');
  return { retried, skipped };
}
