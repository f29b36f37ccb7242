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

/**
 * The results page and its files: nothing but this origin's own script, style
 * sheet and API, no inline script or style, no plugins, no framing (the page
 * holds a read key in sessionStorage), and no form may submit anywhere (the key
 * form is handled by the script; without it, nothing is sent).
 */
export const PAGE_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function setPageHeaders(reply: FastifyReply): void {
  void reply.header('content-security-policy', PAGE_CONTENT_SECURITY_POLICY);
  void reply.header('x-frame-options', 'DENY');
}
