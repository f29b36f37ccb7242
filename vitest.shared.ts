import { defineProject } from 'vitest/config';

/** Settings every workspace's tests share: they talk to the real Postgres and Redis. */
export const tallyProject = (name: string) =>
  defineProject({
    test: {
      name,
      include: ['test/**/*.test.ts'],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      env: { NODE_ENV: 'test', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' },
    },
  });
