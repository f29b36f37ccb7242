import { ConfigError } from '@tally/config';
import { createLogger } from '@tally/logger';
import { createRedis } from '@tally/queue';
import { serveUntilSignal } from '@tally/server';
import { buildApp } from './app.js';
import { loadDashboardConfig, type DashboardConfig } from './config.js';

let config: DashboardConfig;
try {
  config = loadDashboardConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

const logger = createLogger('dashboard', config.LOG_LEVEL);

async function main(config: DashboardConfig): Promise<void> {
  const connection = createRedis(config.REDIS_URL, 'producer');
  // ioredis reconnects on its own; report the outage once, not at every reconnection attempt.
  let redisDown = false;
  connection.on('error', (err) => {
    if (!redisDown) logger.warn({ err }, 'Redis unreachable; the board shows errors until it is back');
    redisDown = true;
  });
  connection.on('ready', () => {
    if (redisDown) logger.info('Redis reachable again');
    redisDown = false;
  });

  const app = await buildApp({ config, connection, logger });
  await serveUntilSignal(app, {
    host: config.HOST,
    port: config.PORT,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    onClose: async () => {
      await connection.quit().catch(() => connection.disconnect());
    },
  });
}

main(config).catch((err: unknown) => {
  logger.fatal({ err }, 'dashboard failed to start');
  process.exit(1);
});
