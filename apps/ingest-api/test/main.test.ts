import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@tally/testing';
import { createFixture, validEvents, type Fixture } from './fixture.js';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

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
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let output = '';
  let port: number;

  beforeAll(async () => {
    fixture = await createFixture();
    port = await freePort();
    child = spawn(join(appDir, 'node_modules', '.bin', 'tsx'), ['src/main.ts'], {
      cwd: appDir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: fixture.database.url,
        REDIS_URL: fixture.prefix.redisUrl,
        QUEUE_PREFIX: fixture.prefix.prefix,
        HOST: '127.0.0.1',
        PORT: String(port),
        // Debug: the log test below must see everything the process would ever write.
        LOG_LEVEL: 'debug',
        MAX_BODY_BYTES: '65536',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${output}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `the ingest API to be ready\n${output}` },
    );
  }, 60_000);

  afterAll(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
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
    await waitFor(async () => (output.includes('batch queued') ? true : undefined), { what: 'the batch to be logged' });
    expect(output).not.toContain(marker);
    expect(output).not.toContain(fixture.keys.writeKey);
  });

  it('exits cleanly on SIGTERM', async () => {
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
