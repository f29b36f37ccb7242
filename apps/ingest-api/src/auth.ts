import type { FastifyReply, FastifyRequest } from 'fastify';
import { keyKind } from '@tally/db';
import { HttpError } from '@tally/server';
import { KeyLookupUnavailable, type WriteKeyResolver } from './keys.js';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
/** Generated keys are ~50 URL-safe characters: anything else is refused without a query. */
const KEY_SHAPE = /^[A-Za-z0-9_-]{1,200}$/;
const CHALLENGE = { 'www-authenticate': 'Bearer realm="tally-ingest"' };

const projectIds = new WeakMap<FastifyRequest, string>();

/** The project whose write key authenticated the request. */
export function projectIdOf(request: FastifyRequest): string {
  const projectId = projectIds.get(request);
  if (projectId === undefined) throw new Error('route is not behind the write-key check');
  return projectId;
}

/** An onRequest hook: runs before the body is read, so an unauthenticated client costs no decompression or parsing. */
export function requireWriteKey(keys: WriteKeyResolver) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    const key = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (key === undefined) {
      throw new HttpError(
        401,
        header === undefined
          ? "Send the project's write key in the header `Authorization: Bearer <write key>`."
          : 'The Authorization header must read `Bearer <write key>`.',
        CHALLENGE,
      );
    }
    const kind = KEY_SHAPE.test(key) ? keyKind(key) : undefined;
    if (kind === 'read') {
      throw new HttpError(
        401,
        "This is a read key, which can only read results. Sending events needs the project's write key (it starts with tly_w_).",
        CHALLENGE,
      );
    }
    let projectId: string | undefined;
    if (kind === 'write') {
      try {
        projectId = await keys.projectOf(key);
      } catch (error) {
        if (!(error instanceof KeyLookupUnavailable)) throw error;
        throw new HttpError(503, 'The write key cannot be checked right now (the project database is unreachable); retry shortly.', {
          'retry-after': '5',
        });
      }
    }
    if (projectId === undefined) {
      throw new HttpError(
        401,
        'Unknown write key. Use the write key printed when the project was made or its key was last rotated.',
        CHALLENGE,
      );
    }
    projectIds.set(request, projectId);
  };
}
