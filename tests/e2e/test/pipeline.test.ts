import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type ProjectKeys } from '@tally/db';
import {
  createTestDatabase,
  createTestQueuePrefix,
  startApps,
  waitFor,
  type RunningApp,
  type TestDatabase,
  type TestQueuePrefix,
} from '@tally/testing';

/**
 * The whole pipeline as a user runs it: every app as its own process, batches
 * posted over HTTP, results read back over HTTP, jobs seen through Bull Board.
 * Twice: from the TypeScript sources (`npm run stack`) and from the bundles
 * production runs (`npm run build`), which must find the migrations and the
 * results page's files as the sources do.
 */

const t0 = Date.now() - 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

// Hand-computed expectations in the test below follow design.md's semantics.
const batch = {
  sentAt: Date.now(),
  events: [
    // s1: control, one pageview, one purchase.
    { eventId: 'e1', eventType: 'EXPOSURE', sessionId: 's1', experimentId: 'checkout-button', variantKey: 'control', timestamp: t0 },
    { eventId: 'e2', eventType: 'PAGEVIEW', sessionId: 's1', viewId: 'v1', properties: { path: '/cart' }, timestamp: t0 + 1_000 },
    { eventId: 'e3', eventType: 'CONVERSION', sessionId: 's1', goal: 'purchase', timestamp: iso(t0 + 2_000) },
    // s2: treatment, two pageviews, a purchase and a signup.
    { eventId: 'e4', eventType: 'EXPOSURE', sessionId: 's2', experimentId: 'checkout-button', variantKey: 'treatment', timestamp: t0 },
    { eventId: 'e5', eventType: 'PAGEVIEW', sessionId: 's2', timestamp: t0 + 1_000 },
    { eventId: 'e6', eventType: 'PAGEVIEW', sessionId: 's2', timestamp: t0 + 2_000 },
    { eventId: 'e7', eventType: 'CONVERSION', sessionId: 's2', goal: 'purchase', timestamp: t0 + 3_000 },
    { eventId: 'e8', eventType: 'CONVERSION', sessionId: 's2', goal: 'signup', timestamp: t0 + 4_000 },
    // s3: treatment, nothing else (legacy clients put the variant in properties).
    { eventId: 'e9', eventType: 'EXPOSURE', sessionId: 's3', experimentId: 'checkout-button', properties: { variantKey: 'treatment' }, timestamp: t0 },
    // s4: saw both variants: excluded.
    { eventId: 'e10', eventType: 'EXPOSURE', sessionId: 's4', experimentId: 'checkout-button', variantKey: 'control', timestamp: t0 },
    { eventId: 'e11', eventType: 'EXPOSURE', sessionId: 's4', experimentId: 'checkout-button', variantKey: 'treatment', timestamp: t0 + 5_000 },
    { eventId: 'e12', eventType: 'CONVERSION', sessionId: 's4', goal: 'purchase', timestamp: t0 + 6_000 },
    // s5: converted before its exposure: the conversion does not count.
    { eventId: 'e13', eventType: 'CONVERSION', sessionId: 's5', goal: 'purchase', timestamp: t0 - 10_000 },
    { eventId: 'e14', eventType: 'EXPOSURE', sessionId: 's5', experimentId: 'checkout-button', variantKey: 'control', timestamp: t0 },
    // Invalid: an exposure without a variant.
    { eventId: 'e15', eventType: 'EXPOSURE', sessionId: 's6', experimentId: 'checkout-button', timestamp: t0 },
  ],
};

const expectedAnyGoal = {
  excludedSessions: 1,
  variants: [
    { variantKey: 'control', sessions: 2, pageviewSessions: 1, pageviews: 1, convertedSessions: 1, conversions: 1, conversionRate: 0.5 },
    { variantKey: 'treatment', sessions: 2, pageviewSessions: 1, pageviews: 2, convertedSessions: 1, conversions: 2, conversionRate: 0.5 },
  ],
};

const BUILD_SCRIPT = fileURLToPath(new URL('../../../scripts/build.mjs', import.meta.url));

describe.each([
  { runs: 'the sources under tsx', built: false },
  { runs: 'the production bundles', built: true },
])('the pipeline, end to end over HTTP, running $runs', ({ built }) => {
  let database: TestDatabase;
  let queue: TestQueuePrefix;
  let keys: ProjectKeys;
  let apps: Record<'ingest' | 'worker' | 'query' | 'dashboard', RunningApp>;

  beforeAll(async () => {
    database = await createTestDatabase();
    queue = createTestQueuePrefix();
    keys = await createProject(database.db, 'e2e');
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: queue.redisUrl,
      QUEUE_PREFIX: queue.prefix,
      DASHBOARD_USER: 'ops',
      DASHBOARD_PASSWORD: 'e2e-secret',
    };
    if (built) execFileSync(process.execPath, [BUILD_SCRIPT], { stdio: ['ignore', 'ignore', 'pipe'] });
    const [ingest, worker, query, dashboard] = await startApps(['ingest-api', 'worker', 'query-api', 'dashboard'], env, { built });
    apps = { ingest: ingest!, worker: worker!, query: query!, dashboard: dashboard! };
  }, 120_000);

  afterAll(async () => {
    await Promise.all(Object.values(apps ?? {}).map((app) => app.stop()));
    await queue?.remove();
    await database?.drop();
  });

  const post = (body: Buffer | string, headers: Record<string, string> = {}) =>
    fetch(`${apps.ingest.url}/v1/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.writeKey}`, 'content-type': 'application/json', ...headers },
      body,
    });

  const results = async (query = '') => {
    const response = await fetch(`${apps.query.url}/v1/experiments/checkout-button/results${query}`, {
      headers: { authorization: `Bearer ${keys.readKey}` },
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('accepts the valid events of a batch and explains the invalid one', async () => {
    const response = await post(JSON.stringify(batch));
    expect(response.status).toBe(202);
    const body = (await response.json()) as { accepted: number; rejected: { index: number; errors: string[] }[] };
    expect(body.accepted).toBe(14);
    expect(body.rejected).toHaveLength(1);
    expect(body.rejected[0]!.index).toBe(14);
    expect(body.rejected[0]!.errors.join(' ')).toMatch(/variantKey/);
  });

  it('counts a retried batch (sent again, gzipped, with a later sentAt) once', async () => {
    const retry = { ...batch, sentAt: batch.sentAt + 2_500 };
    const response = await post(gzipSync(JSON.stringify(retry)), { 'content-encoding': 'gzip' });
    expect(response.status).toBe(202);
  });

  it('serves exact results once the worker has inserted both batches and the rollup has run', async () => {
    const jobs = new Queue('ingest', { connection: { url: queue.redisUrl }, prefix: queue.prefix });
    let insertedBy = 0;
    try {
      await waitFor(
        async () => {
          const counts = await jobs.getJobCounts('completed', 'waiting', 'active', 'delayed');
          const pending = (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0);
          return counts.completed === 2 && pending === 0 ? true : undefined;
        },
        { timeoutMs: 30_000, what: 'both batch jobs to complete' },
      );
      insertedBy = Math.max(...(await jobs.getCompleted()).map((job) => job.finishedOn ?? 0));
    } finally {
      await jobs.close();
    }

    // The worker's rollup runs every second; asOf says when it has caught up.
    const any = await waitFor(
      async () => {
        const response = await results('?control=control');
        return response.status === 200 && Date.parse(String(response.body.asOf)) > insertedBy ? response : undefined;
      },
      { timeoutMs: 15_000, what: 'results as of after the inserts' },
    );
    expect(any.body).toMatchObject({ experimentId: 'checkout-button', ...expectedAnyGoal });

    const purchase = await results('?goal=purchase');
    expect(purchase.body).toMatchObject({
      excludedSessions: 1,
      variants: [
        { variantKey: 'control', sessions: 2, convertedSessions: 1, conversions: 1, conversionRate: 0.5 },
        { variantKey: 'treatment', sessions: 2, convertedSessions: 1, conversions: 1, conversionRate: 0.5 },
      ],
    });

    const list = await fetch(`${apps.query.url}/v1/experiments`, { headers: { authorization: `Bearer ${keys.readKey}` } });
    expect(await list.json()).toMatchObject({
      experiments: [{ experimentId: 'checkout-button', exposedSessions: 5, excludedSessions: 1 }],
    });

    // Every session was first exposed at t0: one daily cohort per variant, equal to the results.
    const series = await fetch(`${apps.query.url}/v1/experiments/checkout-button/timeseries?interval=day&goal=purchase`, {
      headers: { authorization: `Bearer ${keys.readKey}` },
    });
    expect(series.status).toBe(200);
    const day = expect.stringMatching(/T00:00:00\.000Z$/);
    expect(await series.json()).toMatchObject({
      interval: 'day',
      goal: 'purchase',
      variants: [
        { variantKey: 'control', points: [{ bucket: day, sessions: 2, convertedSessions: 1, cumulativeSessions: 2 }] },
        { variantKey: 'treatment', points: [{ bucket: day, sessions: 2, convertedSessions: 1, cumulativeSessions: 2 }] },
      ],
    });
  });

  it('serves the results page and its script', async () => {
    const page = await fetch(`${apps.query.url}/experiments/checkout-button`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/assets/results-page.js');
    const script = await fetch(`${apps.query.url}/assets/results-page.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
  });

  it('keeps results behind the read key and ingest behind the write key', async () => {
    const withWriteKey = await fetch(`${apps.query.url}/v1/experiments`, { headers: { authorization: `Bearer ${keys.writeKey}` } });
    expect([401, 403]).toContain(withWriteKey.status);
    const withReadKey = await post(JSON.stringify(batch), { authorization: `Bearer ${keys.readKey}` });
    expect([401, 403]).toContain(withReadKey.status);
  });

  it('shows the jobs in Bull Board, behind its credentials', async () => {
    expect((await fetch(`${apps.dashboard.url}/api/queues`)).status).toBe(401);
    const response = await fetch(`${apps.dashboard.url}/api/queues?activeQueue=ingest&status=completed&page=1`, {
      headers: { authorization: `Basic ${Buffer.from('ops:e2e-secret').toString('base64')}` },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { queues: { name: string; counts: Record<string, number> }[] };
    const ingest = body.queues.find((q) => q.name === 'ingest');
    expect(ingest?.counts.completed).toBe(2);
    expect(body.queues.map((q) => q.name)).toEqual(expect.arrayContaining(['maintenance', 'rollup']));
  });

  // Longer than the apps' own deadline for finishing in-flight work (SHUTDOWN_TIMEOUT_MS, 10 s).
  it('shuts every app down cleanly on SIGTERM', async () => {
    const codes = await Promise.all(Object.values(apps).map((app) => app.stop()));
    expect(codes).toEqual([0, 0, 0, 0]);
  }, 30_000);
});
