import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from '@tally/logger';
import type { TallyQueues } from '@tally/queue';

export interface BoardOptions {
  queues: TallyQueues;
  /** The connection the queues use. */
  connection: Redis;
  readOnly: boolean;
  logger: Logger;
}

/** Bull Board over every Tally queue, served at the root of `scope`. */
export async function installQueueBoard(scope: FastifyInstance, { queues, connection, readOnly, logger }: BoardOptions): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  createBullBoard({
    queues: Object.values(queues).map((queue) => new BullMQAdapter(queue, { readOnlyMode: readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Tally queues' } },
  });
  // Bull Board's own handler answers with the raw error message; here a Redis outage says
  // so, and anything else unexpected stays in the log, as in every other Tally app.
  serverAdapter.setErrorHandler((error) => {
    const status = (error as { statusCode?: number }).statusCode;
    if (status !== undefined && CLIENT_ERRORS.has(status)) {
      return { status: status as ClientError, body: { error: { key: 'ERRORS.INVALID_REQUEST_BODY' }, message: error.message } };
    }
    logger.error({ err: error }, 'queue board request failed');
    return {
      status: 500,
      body: {
        error: { key: 'ERRORS.INTERNAL_SERVER_ERROR' },
        message: isConnectionError(error) ? 'Redis is unavailable; retry shortly.' : 'Internal error.',
      },
    };
  });
  // BullMQ waits for a connection that is not ready yet instead of failing, so during an
  // outage every board request would hang; wait briefly (the connection may be just
  // starting or reconnecting), then say Redis is unavailable.
  scope.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/api/') || (await isReady(connection, READY_WAIT_MS))) return;
    return reply.status(503).send({
      error: { key: 'ERRORS.INTERNAL_SERVER_ERROR' },
      message: 'Redis is unavailable; retry shortly.',
    });
  });
  serverAdapter.setBasePath('/');
  await scope.register(serverAdapter.registerPlugin());
}

const READY_WAIT_MS = 2_000;

function isReady(connection: Redis, waitMs: number): Promise<boolean> {
  if (connection.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const ready = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      connection.off('ready', ready);
      resolve(false);
    }, waitMs);
    connection.once('ready', ready);
  });
}

type ClientError = 400 | 403 | 404 | 405 | 409;
const CLIENT_ERRORS = new Set<number>([400, 403, 404, 405, 409]);

function isConnectionError(error: Error): boolean {
  const code = (error as { code?: string }).code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    /connection is closed|enableOfflineQueue|max retries per request|command timed out/i.test(error.message)
  );
}
