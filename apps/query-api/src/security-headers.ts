import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * Headers every response carries. Results are per project and behind a key, so
 * neither a browser nor a shared proxy may keep them; only the static files of
 * the docs page may be cached.
 */
export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    setSecurityHeaders(reply, request.url);
    return payload;
  });
}

/** For replies sent where no hook runs (errors the router raises before routing). */
export function setSecurityHeaders(reply: FastifyReply, url: string): void {
  void reply.header('x-content-type-options', 'nosniff');
  void reply.header('referrer-policy', 'no-referrer');
  if (!url.startsWith('/docs/static/')) void reply.header('cache-control', 'no-store');
}
