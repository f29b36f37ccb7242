import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import type { StoredEvent } from '@tally/contracts';
import { createProject, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import type { ExportOptions } from '../src/routes/export.js';
import { bearer, event, exportTestApp, exposure, insertOnly, pageview, parseNdjson } from './fixture.js';

/**
 * How an export behaves as a stream: it reads from Postgres only as fast as the
 * client takes rows, and whatever way it ends (complete, the client gone, the
 * client stalled, the database connection lost) its connection is given back.
 *
 * One experiment of ROWS events of about 1 kB each (20 MB of NDJSON): much more
 * than the socket buffers of a loopback connection hold.
 */

const ROWS = 20_000;
const BATCH = 100;
const PADDING = 'x'.repeat(800);

let database: TestDatabase;
let keys: ProjectKeys;
let fetched = 0;
let app: Awaited<ReturnType<typeof exportTestApp>>;
let base: string;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'stream');
  const events: StoredEvent[] = [];
  for (let s = 0; events.length < ROWS; s++) {
    events.push(exposure(`s-${s}`, s, 'wide', s % 2 ? 'a' : 'b'));
    for (let v = 0; v < 9; v++) events.push(event('PAGEVIEW', `s-${s}`, s + v + 1, { properties: { v, padding: PADDING } }));
  }
  await insertOnly(database.db, keys.projectId, events.slice(0, ROWS));
  ({ app, base } = await serve({ batchSize: BATCH, onBatch: (rows) => (fetched += rows) }));
});

async function serve(options: ExportOptions) {
  const server = await exportTestApp(database.db, options);
  await server.listen({ host: '127.0.0.1', port: 0 });
  return { app: server, base: `http://127.0.0.1:${(server.server.address() as AddressInfo).port}` };
}

afterEach(async () => {
  // Every test ends with nothing checked out of the pool.
  await waitForIdlePool();
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const URL = '/v1/experiments/wide/export?format=ndjson';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForIdlePool() {
  await expect.poll(() => database.pool.idleCount === database.pool.totalCount, { timeout: 10_000 }).toBe(true);
}

/** Rows fetched so far, once the count has held still for `quietMs`. */
async function fetchedWhenSettled(quietMs = 400): Promise<number> {
  let last = -1;
  while (fetched !== last) {
    last = fetched;
    await sleep(quietMs);
  }
  return last;
}

/** Backends of the test database inside a transaction, other than the one asking. */
async function openTransactions(): Promise<number> {
  const { rows } = await database.db.execute<{ n: number }>(sql`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`);
  return rows[0]!.n;
}

/** A real HTTP download, paused after its first chunk. */
async function startPausedDownload(server = base) {
  const request = http.get(`${server}${URL}`, { headers: bearer(keys.readKey) });
  const [response] = (await once(request, 'response')) as [http.IncomingMessage];
  expect(response.statusCode).toBe(200);
  const chunks: Buffer[] = [];
  const [first] = (await once(response, 'data')) as [Buffer];
  response.pause();
  chunks.push(first);
  // Listening for the end at once (these listeners do not make a paused stream flow): a
  // transfer the server breaks off while paused may close before finish() is called.
  const ended = new Promise<string>((resolve, reject) => {
    response.on('end', () => (response.complete ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error('incomplete'))));
    response.on('error', reject);
    response.on('aborted', () => reject(new Error('aborted')));
    response.on('close', () => response.complete || reject(new Error('closed before the end')));
  });
  ended.catch(() => undefined);
  /** Reads the rest; resolves with the whole body, or rejects if the transfer breaks off. */
  const finish = () => {
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.resume();
    return ended;
  };
  return { request, response, finish };
}

describe('backpressure', () => {
  it('fetches only a few batches ahead of a client that does not read, and the rest as it reads', async () => {
    fetched = 0;
    const response = await app.inject({ method: 'GET', url: URL, headers: bearer(keys.readKey), payloadAsStream: true });
    expect(response.statusCode).toBe(200);
    const body = response.stream();

    // Nothing reads the body: the cursor must stop after the buffers in between are
    // full (a batch in the source, one in the encoder, the encoded text of another).
    const paused = await fetchedWhenSettled();
    expect(paused).toBeGreaterThan(0);
    expect(paused).toBeLessThanOrEqual(6 * BATCH);

    // Reading some of it lets it fetch a few batches more, not everything.
    const chunks: Buffer[] = [];
    let taken = 0;
    while (taken < 200_000) {
      const chunk = body.read() as Buffer | null;
      if (chunk === null) await once(body, 'readable');
      else (chunks.push(chunk), (taken += chunk.length));
    }
    const afterSome = await fetchedWhenSettled();
    expect(afterSome).toBeGreaterThan(paused);
    expect(afterSome).toBeLessThan(ROWS / 4);

    for await (const chunk of body) chunks.push(chunk as Buffer);
    expect(parseNdjson(Buffer.concat(chunks).toString('utf8'))).toHaveLength(ROWS);
    expect(fetched).toBe(ROWS);
  });

  it('over a real socket, a paused download stops the cursor far from the end, and resumes to a complete body', async () => {
    fetched = 0;
    const download = await startPausedDownload();
    // The kernel's socket buffers take a few MB before the server feels the pause.
    const paused = await fetchedWhenSettled(500);
    expect(paused).toBeLessThan(ROWS / 2);
    expect(await openTransactions()).toBe(1);

    const rows = parseNdjson(await download.finish());
    expect(rows).toHaveLength(ROWS);
    expect(new Set(rows.map((r) => r.eventId)).size).toBe(ROWS);
    expect(fetched).toBe(ROWS);
  });
});

describe('the connection goes back to the pool', () => {
  it('when the export completes, and is reused', async () => {
    const before = database.pool.totalCount;
    const response = await fetch(`${base}${URL}`, { headers: bearer(keys.readKey) });
    expect(parseNdjson(await response.text())).toHaveLength(ROWS);
    await waitForIdlePool();
    expect(database.pool.totalCount).toBeLessThanOrEqual(Math.max(before, 1));
    expect(await openTransactions()).toBe(0);
  });

  it('when the client aborts mid-download: the cursor is closed, the transaction ended, the connection kept', async () => {
    fetched = 0;
    const download = await startPausedDownload();
    const during = database.pool.totalCount;
    expect(database.pool.idleCount).toBe(during - 1);
    download.request.destroy();

    await waitForIdlePool();
    expect(database.pool.totalCount).toBe(during); // given back, not thrown away
    expect(await openTransactions()).toBe(0);
    expect(fetched).toBeLessThan(ROWS);

    // The connection it used works for the next export.
    const response = await app.inject({ method: 'GET', url: URL, headers: bearer(keys.readKey) });
    expect(response.body.split('\n')).toHaveLength(ROWS + 1);
  });

  it('when the client goes away as soon as the response starts', async () => {
    const request = http.get(`${base}${URL}`, { headers: bearer(keys.readKey) });
    request.on('error', () => {});
    request.on('response', (response) => response.destroy());
    await once(request, 'close');
    await waitForIdlePool();
    expect(await openTransactions()).toBe(0);
  });

  it('when the client stops reading for longer than allowed: cut off, and the client sees a broken transfer', async () => {
    const impatient = await serve({ batchSize: BATCH, consumerTimeoutMs: 500 });
    try {
      const download = await startPausedDownload(impatient.base);
      // The socket buffers fill within moments; then no batch is taken for 500 ms.
      await waitForIdlePool();
      expect(await openTransactions()).toBe(0);
      await expect(download.finish()).rejects.toThrow();
    } finally {
      await impatient.app.close();
    }
  });

  it('when the database connection is lost mid-export: the download breaks off and the connection is discarded', async () => {
    const download = await startPausedDownload();
    const during = database.pool.totalCount;
    const { rows } = await database.db.execute<{ killed: boolean }>(sql`
      SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`);
    expect(rows).toEqual([{ killed: true }]);

    await expect(download.finish()).rejects.toThrow();
    await waitForIdlePool();
    expect(database.pool.totalCount).toBe(during - 1);
    const response = await app.inject({ method: 'GET', url: URL, headers: bearer(keys.readKey) });
    expect(response.statusCode).toBe(200);
  });
});

describe('one snapshot', () => {
  it('leaves out events stored after the export began, even in sessions it has yet to reach', async () => {
    const download = await startPausedDownload();
    await insertOnly(database.db, keys.projectId, [
      pageview('s-1999', 100_000),
      pageview('s-0', 100_000),
      exposure('late-session', 100_000, 'wide', 'a'),
    ]);
    const rows = parseNdjson(await download.finish());
    expect(rows).toHaveLength(ROWS);

    const after = await app.inject({ method: 'GET', url: URL, headers: bearer(keys.readKey) });
    expect(after.body.split('\n')).toHaveLength(ROWS + 3 + 1);
  });
});
