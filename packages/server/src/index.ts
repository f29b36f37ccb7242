import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import closeWithGrace from 'close-with-grace';
import type { Logger } from '@tally/logger';
import { installErrorHandler } from './errors.js';

export { HttpError, httpReason } from './errors.js';
export { createMetricsRegistry, installHealth, type ReadinessCheck } from './health.js';

export interface ServerOptions {
  logger: Logger;
  title: string;
  description: string;
  bodyLimit?: number;
  /** Extra Fastify options (e.g. `trustProxy`). */
  fastify?: Omit<FastifyServerOptions, 'logger' | 'loggerInstance'>;
}

/**
 * A Fastify instance with the house defaults: TypeBox route schemas (validation,
 * types and the OpenAPI document at `/openapi.json`, browsable at `/docs`), the
 * shared error handler, and the pino logger.
 */
export async function createServer(options: ServerOptions) {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? 1_048_576,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    ...options.fastify,
  }).withTypeProvider<TypeBoxTypeProvider>();

  installErrorHandler(app as unknown as FastifyInstance);
  await app.register(swagger, {
    openapi: {
      info: { title: options.title, description: options.description, version: '1.0.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

export type TallyServer = Awaited<ReturnType<typeof createServer>>;

/**
 * Listens, and on SIGTERM/SIGINT closes the server (which runs every onClose hook:
 * queues, pools) within the deadline; past it the process exits anyway so an
 * orchestrator is never left waiting.
 */
export async function serveUntilSignal(
  app: TallyServer,
  options: { host: string; port: number; shutdownTimeoutMs: number; onClose?: () => Promise<void> },
): Promise<void> {
  closeWithGrace({ delay: options.shutdownTimeoutMs }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an uncaught error');
    else app.log.info({ signal }, 'shutting down');
    await app.close();
    await options.onClose?.();
  });
  await app.listen({ host: options.host, port: options.port });
}
