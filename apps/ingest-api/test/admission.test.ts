import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpError } from '@tally/server';
import { BodyBudget } from '../src/admission.js';
import { createFixture, metricValue, validEvents, type Fixture, type IngestApp } from './fixture.js';

describe('BodyBudget', () => {
  it('lets requests in while their bytes fit, and the next one as bytes are given back', async () => {
    const budget = new BodyBudget(100, 60_000);
    const first = await budget.acquire(60);
    const second = await budget.acquire(40);
    expect(budget.bytesInFlight).toBe(100);
    let thirdIn = false;
    const third = budget.acquire(30).then((release) => ((thirdIn = true), release));
    await Promise.resolve();
    expect(thirdIn).toBe(false);
    expect(budget.requestsWaiting).toBe(1);
    second();
    second(); // twice is once
    (await third)();
    expect(thirdIn).toBe(true);
    first();
    expect(budget.bytesInFlight).toBe(0);
  });

  it('lets requests in first come, first served: a small one does not overtake a large one', async () => {
    const budget = new BodyBudget(100, 60_000);
    const held = await budget.acquire(50);
    const order: string[] = [];
    const large = budget.acquire(80).then((release) => (order.push('large'), release));
    const small = budget.acquire(10).then((release) => (order.push('small'), release));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(order).toEqual([]); // the small one would fit, but the large one came first
    held();
    (await large)();
    (await small)();
    expect(order).toEqual(['large', 'small']);
  });

  it('lets a request larger than the whole budget in alone', async () => {
    const budget = new BodyBudget(100, 60_000);
    const huge = await budget.acquire(500);
    expect(budget.bytesInFlight).toBe(500);
    const next = budget.acquire(1);
    huge();
    (await next)();
    expect(budget.bytesInFlight).toBe(0);
  });

  it('refuses with 429 and Retry-After after the longest wait, and lets in whoever its place held back', async () => {
    const budget = new BodyBudget(100, 50);
    const held = await budget.acquire(60);
    const refused = budget.acquire(90).catch((error: unknown) => error);
    const behind = budget.acquire(30);
    const error = await refused;
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ statusCode: 429, headers: { 'retry-after': '1' } });
    expect((error as Error).message).toContain('MAX_INFLIGHT_BODY_BYTES');
    (await behind)();
    held();
    expect(budget.bytesInFlight).toBe(0);
    expect(budget.requestsWaiting).toBe(0);
  });
});

/** A batch request over a real socket, its body sent in two parts so that a test can hold it half read. */
function startPost(url: string, key: string, body: string, agent: Agent | false = false): { request: ClientRequest; sendRest: () => void; answer: Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> } {
  const half = Math.floor(body.length / 2);
  const request = httpRequest(`${url}/v1/batch`, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'content-length': Buffer.byteLength(body) },
  });
  const answer = new Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>((resolve, reject) => {
    request.on('error', reject);
    request.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
    });
  });
  request.write(body.slice(0, half));
  return { request, sendRest: () => request.end(body.slice(half)), answer };
}

const bodyOf = () => JSON.stringify({ events: validEvents() });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('POST /v1/batch with more bodies in flight than MAX_INFLIGHT_BODY_BYTES', () => {
  let fixture: Fixture;
  let app: IngestApp;
  let url: string;
  /** Two bodies do not fit at once; each fits alone. */
  const bodies = [bodyOf(), bodyOf(), bodyOf()];
  const capacity = Math.max(...bodies.map((b) => b.length)) + 10;

  const start = async (waitMs: number) => {
    app = await fixture.build({ MAX_INFLIGHT_BODY_BYTES: capacity, MAX_INFLIGHT_WAIT_MS: waitMs });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  };

  beforeAll(async () => {
    fixture = await createFixture();
  });
  afterEach(async () => {
    await app?.close();
    await fixture.clearJobs();
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });

  it('holds a batch unread until the one before it is answered, then accepts both', async () => {
    await start(10_000);
    const first = startPost(url, fixture.keys.writeKey, bodies[0]!);
    await sleep(100);
    const second = startPost(url, fixture.keys.writeKey, bodies[1]!);
    second.sendRest();
    let secondAnswered = false;
    void second.answer.then(() => (secondAnswered = true));
    await sleep(300);
    expect(secondAnswered).toBe(false);
    expect(await metricValue(app, 'tally_ingest_batches_waiting{app="ingest-api"}')).toBe(1);

    first.sendRest();
    expect((await first.answer).status).toBe(202);
    expect((await second.answer).status).toBe(202);
    const queued = (await fixture.jobs()).map((job) => job.data.count as number);
    expect(queued).toEqual([3, 3]);
    expect(await metricValue(app, 'tally_ingest_body_bytes_in_flight{app="ingest-api"}')).toBe(0);
  });

  it('gives the turn back once each answer is sent on a kept-alive connection', async () => {
    await start(300);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const body of [...bodies, ...bodies]) {
        const posted = startPost(url, fixture.keys.writeKey, body, agent);
        posted.sendRest();
        expect((await posted.answer).status).toBe(202);
      }
    } finally {
      agent.destroy();
    }
    expect(await fixture.jobs()).toHaveLength(6);
    expect(await metricValue(app, 'tally_ingest_body_bytes_in_flight{app="ingest-api"}')).toBe(0);
  });

  it('refuses a batch that waited too long with 429 and Retry-After, and queues nothing for it', async () => {
    await start(300);
    const first = startPost(url, fixture.keys.writeKey, bodies[0]!);
    await sleep(100);
    const second = startPost(url, fixture.keys.writeKey, bodies[1]!);
    second.sendRest();
    const refused = await second.answer;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused.body)).toMatchObject({ accepted: 0, rejected: [], message: expect.stringContaining('send the same batch again') });
    expect(await fixture.jobs()).toHaveLength(0);
    expect(await metricValue(app, 'tally_ingest_refusals_total{reason="in_flight",app="ingest-api"}')).toBe(1);

    first.sendRest();
    expect((await first.answer).status).toBe(202);
    expect(await fixture.jobs()).toHaveLength(1);
  });

  it('gives back the turn of a client that goes away mid-body', async () => {
    await start(2_000);
    const gone = startPost(url, fixture.keys.writeKey, bodies[0]!);
    gone.answer.catch(() => {});
    await sleep(100);
    const next = startPost(url, fixture.keys.writeKey, bodies[1]!);
    next.sendRest();
    await sleep(100);
    gone.request.destroy();
    expect((await next.answer).status).toBe(202);
    const after = startPost(url, fixture.keys.writeKey, bodies[2]!);
    after.sendRest();
    expect((await after.answer).status).toBe(202);
    expect((await fixture.jobs()).map((job) => job.data.count as number)).toEqual([3, 3]);
    expect(await metricValue(app, 'tally_ingest_body_bytes_in_flight{app="ingest-api"}')).toBe(0);
  });
});
