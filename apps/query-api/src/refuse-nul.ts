import type { FastifyInstance } from 'fastify';
import { HttpError } from '@tally/server';

const WHERE = { params: 'path parameter', query: 'query parameter', body: 'field' } as const;

/**
 * Refuses a request with a NUL character (U+0000) in any parameter or body string
 * (or key). Postgres cannot hold NUL in text and would refuse the query, which
 * would reach the client as a 500; no experiment id, goal or setting can contain
 * one, so it is a client error and is said so before any route runs.
 */
export function refuseNulCharacters(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    for (const part of ['params', 'query', 'body'] as const) {
      const found = findNul(request[part]);
      if (found !== undefined) {
        throw new HttpError(400, `${part === 'query' ? 'querystring' : part}: ${found} contains a NUL character (U+0000), which no ${WHERE[part]} may hold.`);
      }
    }
  });
}

const shown = (text: string) => text.replaceAll('\u0000', '\\0');

/**
 * Where the first string or key holding U+0000 is ("goal", "weights", "the body"),
 * undefined if none. Iterative: no input can overflow the stack.
 */
function findNul(value: unknown): string | undefined {
  const stack: { value: unknown; path: string }[] = [{ value, path: '' }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop()!;
    if (typeof current === 'string') {
      if (current.includes('\u0000')) return path || 'the body';
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    for (const [key, child] of Object.entries(current)) {
      const childPath = path === '' ? shown(key) : `${path}.${shown(key)}`;
      if (key.includes('\u0000')) return `the name "${childPath}"`;
      stack.push({ value: child, path: childPath });
    }
  }
  return undefined;
}
