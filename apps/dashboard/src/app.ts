import type { Redis } from 'ioredis';
import type { Logger } from '@tally/logger';
import { closeQueues, createQueues } from '@tally/queue';
import { createMetricsRegistry, createServer, installHealth } from '@tally/server';
import { requireBasicAuth } from './auth.js';
import { installQueueBoard } from './board.js';
import { dashboardCredentials, type DashboardConfig } from './config.js';

type Registry = ReturnType<typeof createMetricsRegistry>;

export interface BuildAppOptions {
  config: Pick<DashboardConfig, 'QUEUE_PREFIX' | 'TALLY_ENV' | 'DASHBOARD_USER' | 'DASHBOARD_PASSWORD' | 'DASHBOARD_READ_ONLY'>;
  /** A connection made with `createRedis(url, 'producer')`: a Redis outage fails requests at once instead of queueing them. The caller closes it. */
  connection: Redis;
  logger: Logger;
  /** The registry `/metrics` serves; a fresh one when omitted. */
  registry?: Registry;
}

/**
 * The operator's dashboard: Bull Board over every queue at `/`, behind basic auth;
 * `/healthz`, `/readyz` and `/metrics` stay open for probes and Prometheus.
 */
export async function buildApp({ config, connection, logger, registry }: BuildAppOptions) {
  // Checked here too, so no caller can build an open board in production by skipping the config loader.
  const credentials = dashboardCredentials(config);
  const app = await createServer({
    logger,
    title: 'Tally dashboard',
    description: 'Bull Board over every Tally queue, behind basic auth. Health and metrics are open.',
  });
  installHealth(app, { redis: () => connection.ping() }, registry ?? createMetricsRegistry('dashboard'));

  const queues = createQueues(connection, config.QUEUE_PREFIX);
  // A Queue re-emits its connection's errors; unheard, an 'error' event would crash the process.
  // The outage itself is reported once by whoever owns the connection.
  for (const queue of Object.values(queues)) {
    queue.on('error', (err) => logger.debug({ err, queue: queue.name }, 'queue connection error'));
  }
  app.addHook('onClose', () => closeQueues(queues));

  await app.register(async (board) => {
    if (credentials) {
      await requireBasicAuth(board, credentials);
    } else {
      logger.warn(
        'DASHBOARD IS OPEN: no DASHBOARD_USER/DASHBOARD_PASSWORD and TALLY_ENV=development, so anyone who can reach this port can see and change every job',
      );
    }
    await installQueueBoard(board, { queues, connection, readOnly: config.DASHBOARD_READ_ONLY, logger });
  });
  return app;
}
