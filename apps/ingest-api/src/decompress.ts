import { Transform, type Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { FastifyRequest } from 'fastify';
import { HttpError } from '@tally/server';

type Encoding = 'gzip' | 'deflate';

/** The body stream Fastify reads; it compares `receivedEncodedLength` with Content-Length. */
type DecodedBody = Transform & { receivedEncodedLength: number };

/**
 * A preParsing hook that inflates `Content-Encoding: gzip` / `deflate` bodies.
 * (@fastify/compress does this too, but brings response compression this API does
 * not need.) The limit applies to the inflated bytes: a few kilobytes of gzip can
 * inflate to gigabytes, so inflating stops as soon as the limit is passed.
 */
export function decompressBody(maxBytes: number) {
  return async (request: FastifyRequest, _reply: unknown, payload: Readable): Promise<Readable> => {
    const encoding = contentEncoding(request.headers['content-encoding']);
    return encoding === undefined ? payload : inflate(payload, encoding, maxBytes);
  };
}

function contentEncoding(header: string | undefined): Encoding | undefined {
  const codings = (header ?? '')
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return undefined;
  if (codings.length === 1) {
    if (codings[0] === 'gzip' || codings[0] === 'x-gzip') return 'gzip';
    if (codings[0] === 'deflate') return 'deflate';
  }
  throw new HttpError(415, `Content-Encoding "${header}" is not supported; send the body as is, or compressed with gzip or deflate.`);
}

function inflate(payload: Readable, encoding: Encoding, maxBytes: number): Readable {
  const decoder = encoding === 'gzip' ? createGunzip() : createInflate();
  let inflatedBytes = 0;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      inflatedBytes += chunk.length;
      if (inflatedBytes > maxBytes) {
        callback(new HttpError(413, `The body inflates to more than the limit of ${maxBytes} bytes; send fewer events per batch.`));
        return;
      }
      callback(null, chunk);
    },
  }) as DecodedBody;
  body.receivedEncodedLength = 0;

  // Not stream.pipeline: it would destroy the request, and with it the socket the answer goes out on.
  const stop = (error: Error) => {
    payload.unpipe(decoder);
    decoder.destroy();
    if (!body.destroyed) body.destroy(error);
  };
  payload.on('data', (chunk: Buffer) => {
    body.receivedEncodedLength += chunk.length;
  });
  payload.on('error', stop);
  decoder.on('error', (error) =>
    stop(
      new HttpError(
        400,
        `The body is not valid ${encoding} data (${error.message}); compress it as Content-Encoding says, or send it without Content-Encoding.`,
      ),
    ),
  );
  body.on('error', () => stop(new Error('body stream failed')));
  payload.pipe(decoder).pipe(body);
  return body;
}
