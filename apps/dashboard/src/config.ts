import { Type, type Static } from '@sinclair/typebox';
import { commonEnv, ConfigError, httpEnv, loadConfig } from '@tally/config';

export const DashboardEnv = Type.Object({
  ...commonEnv,
  ...httpEnv(3300),
  TALLY_ENV: Type.Union([Type.Literal('production'), Type.Literal('development')], {
    default: 'production',
    description: '`development` lets the dashboard run without credentials on a local machine',
  }),
  DASHBOARD_USER: Type.Optional(Type.String({ minLength: 1, description: 'Basic-auth user name' })),
  DASHBOARD_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: 'Basic-auth password' })),
  DASHBOARD_READ_ONLY: Type.Boolean({
    default: false,
    description: 'Show queues and jobs without the buttons that retry, promote, clean or remove them',
  }),
});

export type DashboardConfig = Static<typeof DashboardEnv>;

export interface Credentials {
  user: string;
  password: string;
}

/**
 * The login the dashboard asks for, or undefined for an open board. An open board
 * is only allowed on a development machine: the board shows every job's data and
 * can retry, clean or remove jobs, so production without a login is refused.
 */
export function dashboardCredentials(
  config: Pick<DashboardConfig, 'TALLY_ENV' | 'DASHBOARD_USER' | 'DASHBOARD_PASSWORD'>,
): Credentials | undefined {
  const { DASHBOARD_USER: user, DASHBOARD_PASSWORD: password } = config;
  if (user && password) return { user, password };
  if (user || password) {
    throw new ConfigError(
      `DASHBOARD_USER and DASHBOARD_PASSWORD must be set together (only ${user ? 'DASHBOARD_USER' : 'DASHBOARD_PASSWORD'} is set).`,
    );
  }
  if (config.TALLY_ENV === 'development') return undefined;
  throw new ConfigError(
    'The dashboard needs DASHBOARD_USER and DASHBOARD_PASSWORD (it shows every job and can retry or remove them); ' +
      'set both, or set TALLY_ENV=development to serve it without a login on a development machine.',
  );
}

export function loadDashboardConfig(env: Record<string, string | undefined> = process.env): DashboardConfig {
  const config = loadConfig(DashboardEnv, env);
  dashboardCredentials(config);
  return config;
}
