import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, waitFor, type RunningApp } from '@tally/testing';
import { createFixture, validEvents, type Fixture } from './fixture.js';

/** A POST over a real socket, as a client sends it (inject does not go through one). */
function send(port: number, body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/batch', headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the ingest API process', () => {
  let fixture: Fixture;
  let app: RunningApp;
  let port: number;

  beforeAll(async () => {
    fixture = await createFixture();
    app = await startApp('ingest-api', {
      DATABASE_URL: fixture.database.url,
      REDIS_URL: fixture.prefix.redisUrl,
      QUEUE_PREFIX: fixture.prefix.prefix,
      // Debug: the log test below must see everything the process would ever write.
      LOG_LEVEL: 'debug',
      MAX_BODY_BYTES: '65536',
    });
    port = Number(new URL(app.url).port);
  }, 60_000);

  afterAll(async () => {
    if (app?.process.exitCode === null) app.process.kill('SIGKILL');
    await fixture?.cleanup();
  });

  const headers = () => ({ authorization: `Bearer ${fixture.keys.writeKey}`, 'content-type': 'application/json' });

  it('accepts a gzip batch sent over HTTP and queues it', async () => {
    const body = gzipSync(JSON.stringify({ sentAt: Date.now(), events: validEvents() }));
    const response = await send(port, body, { ...headers(), 'content-encoding': 'gzip' });
    expect(response).toEqual({ status: 202, body: { accepted: 3, rejected: [] } });
    expect(await fixture.jobs()).toHaveLength(1);
  });

  it('answers a gzip bomb with 413 on the same connection, without reading it all', async () => {
    const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024, '['));
    const response = await send(port, bomb, { ...headers(), 'content-encoding': 'gzip' });
    expect(response.status).toBe(413);
    expect(response.body.message).toMatch(/inflates to more than the limit of 65536 bytes/);
  });

  it('answers 413 at once when even the compressed body is over the limit', async () => {
    const large = deflateSync(randomBytes(100 * 1024));
    const response = await send(port, large, { ...headers(), 'content-encoding': 'deflate' });
    expect(response.status).toBe(413);
  });

  it('never writes event contents or keys to its log', async () => {
    const marker = `secret-${Date.now()}`;
    const [event] = validEvents();
    const body = Buffer.from(JSON.stringify({ events: [{ ...event, properties: { marker } }, { marker }] }));
    expect((await send(port, body, headers())).status).toBe(202);
    await waitFor(async () => (app.output().includes('batch queued') ? true : undefined), { what: 'the batch to be logged' });
    expect(app.output()).not.toContain(marker);
    expect(app.output()).not.toContain(fixture.keys.writeKey);
  });

  it('exits cleanly on SIGTERM', async () => {
    expect(await app.stop()).toBe(0);
  });
});
