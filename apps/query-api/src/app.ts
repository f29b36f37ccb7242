import type { FastifyInstance } from 'fastify';
import type { Database } from '@tally/db';
import type { Logger } from '@tally/logger';
import { createMetricsRegistry, createServer, installHealth } from '@tally/server';
import { createKeyResolver, requireReadKey } from './auth.js';
import type { QueryApiConfig } from './config.js';
import { summaryResultsSource, type ResultsSource } from './results.js';
import { describeFrameworkErrors, describeSchemaErrors, MAX_PARAM_LENGTH } from './request-errors.js';
import { experimentRoutes } from './routes/experiments.js';
import { exportRoutes, type ExportOptions } from './routes/export.js';
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
 * served from the rollup's summaries, behind the project's read key. `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and
 * `/docs` are open.
 */
export async function buildApp({ config, db, logger, registry, results, exports }: BuildAppOptions) {
  const app = await createServer({
    logger,
    title: 'Tally query API',
    description:
      "Experiment results for analysts. Every `/v1` route needs `Authorization: Bearer <read key>` and sees only that key's project.",
    fastify: {
      schemaErrorFormatter: describeSchemaErrors,
      frameworkErrors: describeFrameworkErrors,
      routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    },
  });
  installSecurityHeaders(app as unknown as FastifyInstance);
  installHealth(app, { postgres: () => db.$client.query('SELECT 1') }, registry ?? createMetricsRegistry('query-api'));

  const keys = createKeyResolver(db, { ttlMs: config.KEY_CACHE_TTL_MS });
  const source = results ?? summaryResultsSource(db);
  await app.register(
    async (v1) => {
      requireReadKey(v1, keys);
      await experimentRoutes(v1, { results: source });
      await exportRoutes(v1, { db, options: exports });
    },
    { prefix: '/v1' },
  );
  return app;
}
