import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '@tally/server';

type Done = (error: Error | null, body?: unknown) => void;

/**
 * Parses JSON bodies in `scope` as Fastify does, refusing a body with a `__proto__`
 * or `constructor.prototype` key anywhere (so that nothing built from an event can
 * change an object's prototype), but saying so: Fastify calls such a body "not
 * valid JSON", which sends a client looking for a syntax error that is not there.
 */
export function explainRefusedJsonKeys(scope: FastifyInstance): void {
  const parse = scope.getDefaultJsonParser('error', 'error') as (request: FastifyRequest, body: string, done: Done) => void;
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parse(request, body as string, (error, value) => {
      // Only a failure is parsed again, to tell bad syntax from a refused key.
      if (error === null || !isJson(body as string)) {
        done(error, value);
        return;
      }
      done(
        new HttpError(
          400,
          'The body has a "__proto__" key (or a "constructor" key holding "prototype"); such keys can change the JavaScript ' +
            'objects that read the data, so a batch with one anywhere is refused: rename the key.',
        ),
      );
    });
  });
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
