import type { FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics, Histogram } from 'prom-client';

export type ReadinessCheck = () => Promise<unknown>;

/**
 * `/healthz` says the process is alive; `/readyz` says it can do its work now
 * (every check answered within a second); `/metrics` is for Prometheus.
 * `advisory` checks are reported in `/readyz`'s body but do not make it 503: a
 * dependency the app can work without for a while (a load balancer that routes on
 * `/readyz` must not take the app out of rotation for it).
 */
export function installHealth(
  app: FastifyInstance,
  checks: Record<string, ReadinessCheck>,
  registry: Registry,
  advisory: Record<string, ReadinessCheck> = {},
): void {
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  const hidden = { schema: { hide: true } };
  app.get('/healthz', hidden, async () => ({ status: 'ok' }));
  app.get('/readyz', hidden, async (_request, reply) => {
    const run = (all: Record<string, ReadinessCheck>) =>
      Promise.all(
        Object.entries(all).map(async ([name, check]) => {
          try {
            await withTimeout(check(), 1_000);
            return [name, 'ok'] as const;
          } catch (error) {
            return [name, error instanceof Error ? error.message : 'failed'] as const;
          }
        }),
      );
    const [required, optional] = await Promise.all([run(checks), run(advisory)]);
    const ready = required.every(([, state]) => state === 'ok');
    return reply
      .status(ready ? 200 : 503)
      .send({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries([...required, ...optional]) });
  });
  app.get('/metrics', hidden, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}

/** A registry per app instance: tests build several apps in one process. */
export function createMetricsRegistry(app: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry });
  return registry;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
