import { describe, expect, it } from 'vitest';
import { ConfigError } from '@tally/config';
import { loadWorkerConfig } from '../src/config.js';

describe('worker configuration', () => {
  it('has defaults that run a worker against local servers', () => {
    expect(loadWorkerConfig({})).toMatchObject({
      PORT: 3400,
      WORKER_CONCURRENCY: 4,
      DB_POOL_SIZE: 7,
      ROLLUP_INTERVAL_MS: 1_000,
      ROLLUP_WINDOW_EVENTS: 250_000,
      ROLLUP_YIELD_MAX_MS: 10_000,
      PARTITION_PREMAKE_DAYS: 7,
      PARTITION_INTERVAL: 'day',
      RETENTION_DAYS: 0,
      MIGRATE_ON_START: true,
      QUEUE_PREFIX: 'tally',
    });
  });

  it('sizes the Postgres pool from the concurrency unless told otherwise', () => {
    expect(loadWorkerConfig({ WORKER_CONCURRENCY: '10' }).DB_POOL_SIZE).toBe(13);
    expect(loadWorkerConfig({ WORKER_CONCURRENCY: '10', DB_POOL_SIZE: '5' }).DB_POOL_SIZE).toBe(5);
  });

  it('reads booleans and numbers from their usual spellings', () => {
    const config = loadWorkerConfig({ MIGRATE_ON_START: 'false', PARTITION_PREMAKE_DAYS: '30', SHUTDOWN_TIMEOUT_MS: '2500' });
    expect(config).toMatchObject({ MIGRATE_ON_START: false, PARTITION_PREMAKE_DAYS: 30, SHUTDOWN_TIMEOUT_MS: 2500 });
  });

  it('reads the partition interval and the retention, refusing what it could not apply exactly', () => {
    expect(loadWorkerConfig({ PARTITION_INTERVAL: 'month', RETENTION_DAYS: '400' })).toMatchObject({ PARTITION_INTERVAL: 'month', RETENTION_DAYS: 400 });
    for (const env of [{ PARTITION_INTERVAL: 'fortnight' }, { RETENTION_DAYS: '-30' }, { RETENTION_DAYS: '7.5' }, { RETENTION_DAYS: '30d' }]) {
      expect(() => loadWorkerConfig(env)).toThrow(new RegExp(Object.keys(env)[0]!));
    }
  });

  it('refuses nonsense with one message naming every bad variable', () => {
    let error: unknown;
    try {
      loadWorkerConfig({ WORKER_CONCURRENCY: '0', PARTITION_PREMAKE_DAYS: 'soon', MIGRATE_ON_START: 'maybe' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/WORKER_CONCURRENCY/);
    expect(message).toMatch(/PARTITION_PREMAKE_DAYS/);
    expect(message).toMatch(/MIGRATE_ON_START/);
  });
});
