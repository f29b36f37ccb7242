import type { FastifyError, FastifyInstance } from 'fastify';

/**
 * One error mapping for every app: client mistakes become a 4xx with a sentence
 * that says what to fix; anything else is a 500 whose body says nothing about the
 * internals (no stack, no SQL), while the log keeps the detail.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (error.validation) {
      return reply.status(400).send({
        statusCode: 400,
        error: 'Bad Request',
        message: `${error.validationContext ?? 'request'}${error.message.replace(/^(body|querystring|params|headers)/, '')}`,
      });
    }
    if (status >= 400 && status < 500) {
      // Retry-After on a 429, WWW-Authenticate on a 401: the client needs them.
      if (error instanceof HttpError) reply.headers(error.headers);
      return reply.status(status).send({ statusCode: status, error: httpReason(status), message: error.message });
    }
    request.log.error({ err: error }, 'request failed');
    const code = status === 503 ? 503 : 500;
    return reply.status(code).send({
      statusCode: code,
      error: httpReason(code),
      message: code === 503 ? 'A backing service is unavailable; retry shortly' : 'Internal error',
    });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `No route ${request.method} ${request.url.split('?')[0]}` }),
  );
}

export function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    406: 'Not Acceptable',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
  };
  return reasons[status] ?? 'Error';
}

/** An error carrying an HTTP status, for handlers and hooks to throw. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
