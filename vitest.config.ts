import { defineConfig } from 'vitest/config';

// One run over every workspace; each project keeps its own config (and so its own
// database and queue prefix per test file), so one command runs the whole suite.
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'apps/*/vitest.config.ts', 'tests/*/vitest.config.ts'],
  },
});
