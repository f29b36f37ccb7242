import { describe, expect, it } from 'vitest';
import { ConfigError } from '@tally/config';
import { loadQueryApiConfig } from '../src/config.js';

describe('the query API configuration', () => {
  it('listens on port 3200 and remembers keys for ten seconds by default', () => {
    const config = loadQueryApiConfig({});
    expect(config.PORT).toBe(3200);
    expect(config.KEY_CACHE_TTL_MS).toBe(10_000);
    expect(config.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/tally');
  });

  it('reads numbers from the environment', () => {
    expect(loadQueryApiConfig({ PORT: '4000', KEY_CACHE_TTL_MS: '0' })).toMatchObject({ PORT: 4000, KEY_CACHE_TTL_MS: 0 });
  });

  it('refuses a key memory longer than five minutes, naming the variable', () => {
    expect(() => loadQueryApiConfig({ KEY_CACHE_TTL_MS: '3600000' })).toThrow(ConfigError);
    expect(() => loadQueryApiConfig({ KEY_CACHE_TTL_MS: '3600000' })).toThrow(/KEY_CACHE_TTL_MS/);
  });
});
