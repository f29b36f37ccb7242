/**
 * Freshness and ingest latency under steady load, on the whole stack as separate
 * processes (ingest API, worker, query API), as `npm run stack` runs them.
 *
 * A client posts `--size` events every `--every` ms over HTTP for `--seconds`;
 * meanwhile a reader polls the query API every 50 ms and records its `asOf`.
 * A batch is visible once `asOf` passes the moment its insert finished (every
 * event committed before `asOf` is counted: the summaries tests check exactly
 * that). Freshness = visible − accepted (the ingest API's `receivedAt`).
 *
 *   pnpm exec tsx bench/freshness.ts [--seconds 60] [--every 100] [--size 200]
 *
 * Also the peak RSS of each process (VmHWM of the node process running the app,
 * see harness.ts).
 *
 * Creates a database and a queue prefix of its own and removes them at the end,
 * also when it fails or is interrupted. Prints a markdown section on stdout.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { createProject } from '@tally/db';
import { createTestDatabase, createTestQueuePrefix, waitFor, type RunningApp } from '@tally/testing';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessWatch, acquire, mbOfKb, owned, runScenario, startMeasuredApp, RUNNER } from './harness.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
import { percentile, sleep } from './stats.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    every: { type: 'string', default: '100' },
    size: { type: 'string', default: '200' },
  },
});
const SECONDS = Number(args.seconds);
const EVERY_MS = Number(args.every);
const SIZE = Number(args.size);

/** A batch of realistic traffic: a few sessions, each exposed, browsing and sometimes converting. */
function batch(size: number) {
  const now = Date.now();
  const events = [];
  for (let i = 0; i < size; i += 1) {
    const sessionId = `s-${Math.floor(i / 8)}-${randomUUID().slice(0, 8)}`;
    const base = { eventId: randomUUID(), sessionId, timestamp: now - 1_000 + i };
    const kind = i % 8;
    if (kind === 0) events.push({ ...base, eventType: 'EXPOSURE', experimentId: 'checkout-button', variantKey: i % 16 ? 'control' : 'treatment' });
    else if (kind === 7) events.push({ ...base, eventType: 'CONVERSION', goal: 'purchase' });
    else events.push({ ...base, eventType: 'PAGEVIEW', viewId: `v-${i}`, properties: { path: `/p/${kind}` } });
  }
  return { sentAt: now, events };
}

await runScenario(async () => {
  const database = await acquire(createTestDatabase(), (d) => d.drop());
  const queuePrefix = owned(createTestQueuePrefix(), (q) => q.remove());
  const keys = await createProject(database.db, 'freshness');
  const env = { DATABASE_URL: database.url, REDIS_URL: queuePrefix.redisUrl, QUEUE_PREFIX: queuePrefix.prefix };
  const stop = (app: RunningApp) => app.stop();
  const names = ['ingest-api', 'query-api', 'worker'] as const;
  const [ingest, query, worker] = await Promise.all(names.map((name) => acquire(startMeasuredApp(root, name, env), stop)));
  const watch = new ProcessWatch();
  for (const [i, app] of [ingest!, query!, worker!].entries()) watch.add(names[i]!, app.process.pid!);
  watch.start();

  // The reader: (wall-clock time, asOf) every 50 ms.
  const polls: { at: number; asOf: number }[] = [];
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const response = await fetch(`${query!.url}/v1/experiments`, { headers: { authorization: `Bearer ${keys.readKey}` } });
      const body = (await response.json()) as { asOf: string };
      polls.push({ at: Date.now(), asOf: Date.parse(body.asOf) });
      await sleep(50);
    }
  })();
  // Stopped at cleanup too; a failure is reported where the reader is awaited, not as an unhandled rejection.
  reader.catch(() => undefined);
  owned(undefined, async () => (reading = false));

  // The writer: one batch every EVERY_MS, on schedule whatever each request takes.
  const ingestLatencies: number[] = [];
  const pending: Promise<void>[] = [];
  const started = Date.now();
  for (let n = 0; Date.now() - started < SECONDS * 1_000; n += 1) {
    await sleep(started + n * EVERY_MS - Date.now());
    const body = JSON.stringify(batch(SIZE));
    const sent = performance.now();
    pending.push(
      fetch(`${ingest!.url}/v1/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.writeKey}`, 'content-type': 'application/json' },
        body,
      }).then(async (response) => {
        if (response.status !== 202) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
        ingestLatencies.push(performance.now() - sent);
      }),
    );
  }
  await Promise.all(pending);

  const jobs = new Queue('ingest', { connection: { url: queuePrefix.redisUrl }, prefix: queuePrefix.prefix });
  jobs.on('error', () => {});
  try {
    // Active jobs too: a batch still being inserted has no finish time yet.
    await waitFor(async () => {
      const counts = await jobs.getJobCounts('waiting', 'active', 'delayed');
      return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0 ? true : undefined;
    }, {
      timeoutMs: 120_000,
      what: 'the queue to drain',
    });
    const done = await jobs.getCompleted(0, -1);
    const lastFinished = Math.max(...done.map((job) => job.finishedOn ?? 0));
    await waitFor(async () => (polls.at(-1)!.asOf > lastFinished ? true : undefined), {
      timeoutMs: 60_000,
      what: 'the rollup to catch up',
    });
    reading = false;
    await reader;
    watch.stop();
    const memory = names.map((name) => {
      const figures = watch.get(name);
      return `${name} ${mbOfKb(figures.peakKb)} MB (pid ${figures.pid}${figures.wrapperPid ? `, tsx child of ${figures.wrapperPid}` : ''})`;
    });

    const freshness = done.map((job) => {
      const visible = polls.find((poll) => poll.asOf > job.finishedOn!);
      return visible!.at - (job.data as { receivedAt: number }).receivedAt;
    });
    const events = done.length * SIZE;
    const rate = Math.round((1_000 / EVERY_MS) * SIZE);
    console.log(`### Freshness and ingest latency under steady load

\`pnpm exec tsx bench/freshness.ts --seconds ${SECONDS} --every ${EVERY_MS} --size ${SIZE}\`

${rate} events/s (${SIZE} per batch every ${EVERY_MS} ms) for ${SECONDS} s over HTTP: ${pending.length} batches posted, ${done.length} measured (BullMQ keeps the last 1,000 completed), ${events} events. Whole stack as separate processes, default settings (rollup every 1 s).

| measure | p50 | p95 | p99 | max |
|---|---|---|---|---|
| freshness: accepted → visible in results (ms) | ${percentile(freshness, 50)} | ${percentile(freshness, 95)} | ${percentile(freshness, 99)} | ${Math.max(...freshness)} |
| ingest: POST /v1/batch → 202 (ms) | ${percentile(ingestLatencies, 50)} | ${percentile(ingestLatencies, 95)} | ${percentile(ingestLatencies, 99)} | ${Math.round(Math.max(...ingestLatencies))} |

Freshness is measured at the reader's 50 ms polling resolution. Peak RSS over the run (VmHWM of the node process running each app, run as ${RUNNER}): ${memory.join(', ')}.
`);
  } finally {
    await jobs.close();
  }
});
