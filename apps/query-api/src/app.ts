import type { FastifyInstance } from 'fastify';
import { getExperimentSettings, type Database } from '@tally/db';
import type { Logger } from '@tally/logger';
import { createMetricsRegistry, createServer, installHealth } from '@tally/server';
import { createKeyResolver, requireKey, requireReadKey } from './auth.js';
import type { QueryApiConfig } from './config.js';
import { summaryResultsSource, type ResultsSource } from './results.js';
import { describeFrameworkErrors, describeSchemaErrors, MAX_PARAM_LENGTH } from './request-errors.js';
import { experimentRoutes } from './routes/experiments.js';
import { exportRoutes, type ExportOptions } from './routes/export.js';
import { pageRoutes } from './routes/page.js';
import { settingsRoutes } from './routes/settings.js';
import { refuseNulCharacters } from './refuse-nul.js';
import { installSecurityHeaders } from './security-headers.js';

type Registry = ReturnType<typeof createMetricsRegistry>;

export interface BuildAppOptions {
  config: Pick<QueryApiConfig, 'KEY_CACHE_TTL_MS'>;
  /** The caller owns the pool and closes it. */
  db: Database;
  logger: Logger;
  /** The registry `/metrics` serves; a fresh one when omitted. */
  registry?: Registry;
  /** Where the numbers come from; the rollup's summaries in `db` when omitted. */
  results?: ResultsSource;
  /** Batch size, concurrency and stall limit of the raw-event exports. */
  exports?: ExportOptions;
}

/**
 * The analysts' API: a project's experiments, their results and time series,
 * served from the rollup's summaries, behind the project's read key; experiment
 * settings, changed with the project's admin key. `/healthz`, `/readyz`,
 * `/metrics`, `/openapi.json`, `/docs` and the results page (`/experiments`,
 * which asks for the read key itself) are open.
 */
export async function buildApp({ config, db, logger, registry, results, exports }: BuildAppOptions) {
  const app = await createServer({
    logger,
    title: 'Tally query API',
    description:
      "Experiment results for analysts. Every `/v1` route needs `Authorization: Bearer <key>` and sees only that key's project: " +
      "the read key for results, the read or admin key to read an experiment's settings, the admin key to change them. " +
      'Results for people: the page at `/experiments`.',
    fastify: {
      schemaErrorFormatter: describeSchemaErrors,
      frameworkErrors: describeFrameworkErrors,
      routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    },
  });
  installSecurityHeaders(app as unknown as FastifyInstance);
  refuseNulCharacters(app as unknown as FastifyInstance);
  installHealth(app, { postgres: () => db.$client.query('SELECT 1') }, registry ?? createMetricsRegistry('query-api'));

  const keys = createKeyResolver(db, { ttlMs: config.KEY_CACHE_TTL_MS });
  const source = results ?? summaryResultsSource(db);
  await app.register(
    async (v1) => {
      requireReadKey(v1, keys);
      await experimentRoutes(v1, {
        results: source,
        settingsOf: (projectId, experimentId) => getExperimentSettings(db, projectId, experimentId),
      });
      await exportRoutes(v1, { db, options: exports });
    },
    { prefix: '/v1' },
  );
  // Its own scope: settings take other keys than the rest of /v1.
  await app.register(
    async (settings) => {
      requireKey(
        settings,
        keys,
        (request) => (request.method === 'PUT' ? ['admin'] : ['read', 'admin']),
        (request) => (request.method === 'PUT' ? 'Changing experiment settings' : 'Reading experiment settings'),
      );
      await settingsRoutes(settings, { db });
    },
    { prefix: '/v1' },
  );
  await app.register(pageRoutes);
  return app;
}
