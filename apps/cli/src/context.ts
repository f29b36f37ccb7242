import { Redis } from 'ioredis';
import { createDb, type DbHandle } from '@tally/db';
import type { Logger } from '@tally/logger';
import { closeQueues, createQueues, type TallyQueues } from '@tally/queue';
import { loadCliConfig, type CliConfig } from './config.js';
import { CliError, hostOf } from './errors.js';
import type { CliIo } from './io.js';
import { createCliLogger } from './logger.js';

/**
 * What commands share: output, configuration, and connections opened only when a
 * command first needs them (so `--help` or a usage error needs no server), all
 * closed by `close()`.
 */
export interface CommandContext {
  io: CliIo;
  /** Writes one line to stdout. */
  print: (line: string) => void;
  config: () => CliConfig;
  logger: () => Logger;
  database: () => DbHandle;
  queues: () => Promise<TallyQueues>;
  close: () => Promise<void>;
}

export function createContext(io: CliIo): CommandContext {
  let config: CliConfig | undefined;
  let logger: Logger | undefined;
  let database: DbHandle | undefined;
  let redis: Promise<{ connection: Redis; queues: TallyQueues }> | undefined;

  const context: CommandContext = {
    io,
    print: (line) => io.stdout(`${line}\n`),
    config: () => (config ??= loadCliConfig(io.env)),
    logger: () => (logger ??= createCliLogger(context.config().LOG_LEVEL, (line) => io.stderr(line))),
    database: () => (database ??= createDb(context.config().DATABASE_URL, { max: 2, applicationName: 'tally-cli' })),
    queues: async () => {
      redis ??= connectQueues(context.config());
      return (await redis).queues;
    },
    close: async () => {
      await database?.close();
      if (redis) {
        const { connection, queues } = await redis.catch(() => ({ connection: undefined, queues: undefined }));
        if (queues) await closeQueues(queues);
        await connection?.quit().catch(() => connection.disconnect());
      }
    },
  };
  return context;
}

/** Connects once, without retrying: a CLI should say Redis is down, not wait for it. */
async function connectQueues(config: CliConfig): Promise<{ connection: Redis; queues: TallyQueues }> {
  const connection = new Redis(config.REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 3_000,
    commandTimeout: 30_000,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // Kept to explain connect()'s rejection, which only says the connection closed; an unheard 'error' would crash.
  let lastError: (Error & { code?: string }) | undefined;
  connection.on('error', (error) => (lastError = error));
  try {
    await connection.connect();
  } catch (error) {
    connection.disconnect();
    const cause = lastError ?? (error as Error & { code?: string });
    const reason = cause.code ?? cause.message;
    throw new CliError(
      `Cannot reach Redis at ${hostOf(config.REDIS_URL, 6379)} (${reason}): Redis must be running there, ` +
        'or start one with `docker compose -f infra/docker-compose.yml up -d` (or point REDIS_URL at yours).',
    );
  }
  return { connection, queues: createQueues(connection, config.QUEUE_PREFIX) };
}
