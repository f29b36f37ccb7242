import { Type, type Static } from '@sinclair/typebox';
import { commonEnv, loadConfig } from '@tally/config';

export const CliEnv = Type.Object({
  ...commonEnv,
  // The CLI's output is its answer; diagnostics (on stderr) only when something needs attention.
  LOG_LEVEL: { ...commonEnv.LOG_LEVEL, default: 'warn' },
});

export type CliConfig = Static<typeof CliEnv>;

export function loadCliConfig(env: Record<string, string | undefined>): CliConfig {
  return loadConfig(CliEnv, env);
}
