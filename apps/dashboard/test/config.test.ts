import { describe, expect, it } from 'vitest';
import { ConfigError } from '@tally/config';
import { createLogger } from '@tally/logger';
import { createRedis } from '@tally/queue';
import { TEST_REDIS_URL } from '@tally/testing';
import { buildApp } from '../src/app.js';
import { dashboardCredentials, loadDashboardConfig } from '../src/config.js';

const withLogin = { DASHBOARD_USER: 'ops', DASHBOARD_PASSWORD: 'secret' };

describe('dashboard configuration', () => {
  it('has defaults that serve on port 3300 in production mode', () => {
    expect(loadDashboardConfig(withLogin)).toMatchObject({
      PORT: 3300,
      TALLY_ENV: 'production',
      DASHBOARD_READ_ONLY: false,
      QUEUE_PREFIX: 'tally',
      ...withLogin,
    });
  });

  it('refuses to start without credentials in production, saying what to set', () => {
    for (const env of [{}, { TALLY_ENV: 'production' }, { DASHBOARD_USER: '', DASHBOARD_PASSWORD: '' }]) {
      expect(() => loadDashboardConfig(env)).toThrow(ConfigError);
      expect(() => loadDashboardConfig(env)).toThrow(/DASHBOARD_USER and DASHBOARD_PASSWORD.*TALLY_ENV=development/);
    }
  });

  it('allows an open board on a development machine', () => {
    const config = loadDashboardConfig({ TALLY_ENV: 'development' });
    expect(dashboardCredentials(config)).toBeUndefined();
  });

  it('uses the credentials in development too when they are set', () => {
    expect(dashboardCredentials(loadDashboardConfig({ TALLY_ENV: 'development', ...withLogin }))).toEqual({
      user: 'ops',
      password: 'secret',
    });
  });

  it('refuses a user without a password, or a password without a user, in any mode', () => {
    expect(() => loadDashboardConfig({ DASHBOARD_USER: 'ops' })).toThrow(/only DASHBOARD_USER is set/);
    expect(() => loadDashboardConfig({ TALLY_ENV: 'development', DASHBOARD_PASSWORD: 'x' })).toThrow(/only DASHBOARD_PASSWORD is set/);
  });

  it('refuses an unknown TALLY_ENV', () => {
    expect(() => loadDashboardConfig({ TALLY_ENV: 'staging', ...withLogin })).toThrow(/TALLY_ENV/);
  });

  it('will not build an open board in production even when the config loader is bypassed', async () => {
    const connection = createRedis(TEST_REDIS_URL, 'producer');
    try {
      await expect(
        buildApp({
          config: { QUEUE_PREFIX: 'unused', TALLY_ENV: 'production', DASHBOARD_READ_ONLY: false },
          connection,
          logger: createLogger('dashboard-test'),
        }),
      ).rejects.toThrow(ConfigError);
    } finally {
      connection.disconnect();
    }
  });
});
