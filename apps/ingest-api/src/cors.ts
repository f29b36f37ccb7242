import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Browser SDKs post from the pages they track, on origins of their own, so the
 * batch route answers CORS preflights and allows any origin. That opens nothing:
 * the write key travels in a header the page sets itself, never in a cookie, and
 * is meant to ship inside pages anyway.
 */
export function allowAnyOrigin(app: FastifyInstance, path: string) {
  app.options(path, { schema: { hide: true } }, async (_request, reply) =>
    reply
      .status(204)
      .headers({
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'authorization, content-type, content-encoding',
        'access-control-max-age': '86400',
      })
      .send(),
  );
  return async (_request: FastifyRequest, reply: FastifyReply) => {
    void reply.headers({ 'access-control-allow-origin': '*', 'access-control-expose-headers': 'retry-after' });
  };
}
