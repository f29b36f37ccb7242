import { describe, expect, it } from 'vitest';
import { ConfigError } from '@tally/config';
import { loadIngestApiConfig } from '../src/config.js';

describe('ingest API configuration', () => {
  it('has the documented defaults', () => {
    expect(loadIngestApiConfig({})).toMatchObject({
      PORT: 3100,
      KEY_CACHE_TTL_SECONDS: 60,
      MAX_BODY_BYTES: 5_242_880,
      MAX_EVENTS_PER_BATCH: 2_500,
      MAX_EVENT_BYTES: 65_536,
      MAX_FUTURE_HOURS: 24,
      RETENTION_DAYS: 0,
      MAX_INFLIGHT_BODY_BYTES: 4_194_304,
      MAX_INFLIGHT_WAIT_MS: 10_000,
      MAX_QUEUE_DEPTH: 100_000,
      MAX_REDIS_MEMORY_RATIO: 0.8,
      MAX_REDIS_MEMORY_MB: 0,
      RATE_LIMIT_EVENTS_PER_MINUTE: 600_000,
      REDIS_URL: 'redis://127.0.0.1:6379',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/tally',
    });
  });

  it('reads numbers from the environment', () => {
    const config = loadIngestApiConfig({ MAX_BODY_BYTES: '1048576', KEY_CACHE_TTL_SECONDS: '0', MAX_FUTURE_HOURS: '1.5' });
    expect(config).toMatchObject({ MAX_BODY_BYTES: 1_048_576, KEY_CACHE_TTL_SECONDS: 0, MAX_FUTURE_HOURS: 1.5 });
  });

  it('reads RETENTION_DAYS, the variable the worker drops partitions by, as whole days', () => {
    expect(loadIngestApiConfig({ RETENTION_DAYS: '90' }).RETENTION_DAYS).toBe(90);
    for (const bad of ['-1', '1.5', 'forever']) {
      expect(() => loadIngestApiConfig({ RETENTION_DAYS: bad })).toThrow(/RETENTION_DAYS/);
    }
  });

  it('reads the overload and rate limits, and refuses impossible ones', () => {
    expect(loadIngestApiConfig({ MAX_REDIS_MEMORY_RATIO: '0.9', MAX_REDIS_MEMORY_MB: '512', RATE_LIMIT_EVENTS_PER_MINUTE: '0' })).toMatchObject({
      MAX_REDIS_MEMORY_RATIO: 0.9,
      MAX_REDIS_MEMORY_MB: 512,
      RATE_LIMIT_EVENTS_PER_MINUTE: 0,
    });
    expect(() => loadIngestApiConfig({ MAX_REDIS_MEMORY_RATIO: '1.5' })).toThrow(/MAX_REDIS_MEMORY_RATIO/);
    expect(() => loadIngestApiConfig({ MAX_REDIS_MEMORY_MB: '-1' })).toThrow(/MAX_REDIS_MEMORY_MB/);
    expect(() => loadIngestApiConfig({ RATE_LIMIT_EVENTS_PER_MINUTE: '100.5' })).toThrow(/RATE_LIMIT_EVENTS_PER_MINUTE/);
  });

  it('refuses nonsense with one message naming every bad variable', () => {
    let error: unknown;
    try {
      loadIngestApiConfig({ MAX_BODY_BYTES: 'lots', MAX_EVENTS_PER_BATCH: '0', PORT: '99999' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    for (const name of ['MAX_BODY_BYTES', 'MAX_EVENTS_PER_BATCH', 'PORT']) expect((error as Error).message).toContain(name);
  });
});
