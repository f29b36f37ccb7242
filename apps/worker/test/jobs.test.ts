import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import type { JobHandlers } from '../src/handlers.js';
import { isDatabaseUnavailable } from '../src/postgres-errors.js';

describe('job handlers', () => {
  it('must cover every job name (a missing handler fails the typecheck)', () => {
    // @ts-expect-error 'maintain-partitions' has no handler
    const incomplete: JobHandlers = { 'ingest-batch': async () => ({ inserted: 0, duplicates: 0 }) };
    expect(Object.keys(incomplete)).toEqual(['ingest-batch']);
  });
});

describe('telling an unreachable Postgres from a bad batch', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database?.drop());

  const errorOf = async (run: () => Promise<unknown>) => run().then(() => undefined, (error: unknown) => error);

  it('counts a refused connection as unreachable', async () => {
    const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/tally' });
    const error = await errorOf(() => client.connect());
    expect(error).toBeInstanceOf(Error);
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it('counts a connection the server terminated as unreachable', async () => {
    const client = new pg.Client({ connectionString: database.url });
    client.on('error', () => {});
    await client.connect();
    const error = await errorOf(() => client.query('SELECT pg_terminate_backend(pg_backend_pid())'));
    await client.end().catch(() => {});
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it('does not count errors in the statement or the data as unreachable', async () => {
    const syntax = await errorOf(() => database.pool.query('SELEC 1'));
    const data = await errorOf(() => database.pool.query(`SELECT '{"a":"\\u0000"}'::jsonb`));
    expect((syntax as { code: string }).code).toBe('42601');
    expect((data as { code: string }).code).toMatch(/^22/);
    expect(isDatabaseUnavailable(syntax)).toBe(false);
    expect(isDatabaseUnavailable(data)).toBe(false);
  });
});
