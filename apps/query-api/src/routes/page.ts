import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PAGE_DIR } from '../page-files.js';
import { setPageHeaders } from '../security-headers.js';

/**
 * The analysts' results page: one HTML shell for the experiment list and every
 * experiment (its script reads the id from the path and asks the JSON API, with
 * the read key, for everything it shows), a script, a style sheet and an icon. They hold
 * no data and need no key; they are read once at start.
 */
export async function pageRoutes(app: FastifyInstance): Promise<void> {
  const read = (file: string) => readFile(new URL(file, PAGE_DIR), 'utf8');
  const [html, script, styles, icon] = await Promise.all([
    read('results.html'),
    read('results.js'),
    read('results.css'),
    read('favicon.svg'),
  ]);
  const hidden = { schema: { hide: true } };
  const send = (reply: FastifyReply, type: string, body: string) => {
    setPageHeaders(reply);
    return reply.type(type).send(body);
  };

  app.get('/experiments', hidden, (_request, reply) => send(reply, 'text/html; charset=utf-8', html));
  app.get('/experiments/:experimentId', hidden, (_request, reply) => send(reply, 'text/html; charset=utf-8', html));
  app.get('/assets/results-page.js', hidden, (_request, reply) => send(reply, 'text/javascript; charset=utf-8', script));
  app.get('/assets/results-page.css', hidden, (_request, reply) => send(reply, 'text/css; charset=utf-8', styles));
  app.get('/assets/favicon.svg', hidden, (_request, reply) => send(reply, 'image/svg+xml', icon));
}
