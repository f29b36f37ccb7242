import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, httpReason } from '@tally/server';

interface Explained {
  statusCode: number;
  message: string;
}

/**
 * The batch route's error handler. Whatever goes wrong before the handler (key,
 * encoding, content type, size, JSON, envelope) is answered in the shape of a
 * batch response, with `accepted: 0` and a message saying what to change, so a
 * client reads every refusal the same way.
 */
export function batchErrorHandler(limits: { maxBodyBytes: number }) {
  return (error: FastifyError & { headers?: Record<string, string> }, request: FastifyRequest, reply: FastifyReply) => {
    const { statusCode, message } = explain(error, request, limits);
    if (statusCode >= 500 && statusCode !== 503) request.log.error({ err: error }, 'batch request failed');
    if (error.headers) void reply.headers(error.headers);
    return reply.status(statusCode).send({ statusCode, error: httpReason(statusCode), message, accepted: 0, rejected: [] });
  };
}

function explain(error: FastifyError, request: FastifyRequest, limits: { maxBodyBytes: number }): Explained {
  if (error.validation) {
    const problems = error.validation.map((problem) => problem.message ?? 'is not valid');
    return {
      statusCode: 400,
      message: `The body is not a valid batch: ${problems.join('; ')}. Send {"sentAt"?: ..., "events": [...]}.`,
    };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = request.headers['content-type'];
      return {
        statusCode: 415,
        message: `Send the batch as JSON with the header Content-Type: application/json${type ? ` (got ${JSON.stringify(type)})` : ''}.`,
      };
    }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        statusCode: 413,
        message: `The body is larger than the limit of ${limits.maxBodyBytes} bytes; send fewer events per batch.`,
      };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { statusCode: 400, message: 'The body is not valid JSON; send a JSON object {"events": [...]}.' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { statusCode: 400, message: 'The body is empty; send a JSON object {"events": [...]}.' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { statusCode: 400, message: 'The body is not as long as the Content-Length header says.' };
  }
  const statusCode = error.statusCode ?? 500;
  if (statusCode >= 400 && statusCode < 500) return { statusCode, message: error.message };
  // Only our own 503s carry a message meant for clients.
  if (statusCode === 503) {
    return { statusCode, message: error instanceof HttpError ? error.message : 'A backing service is unavailable; retry shortly.' };
  }
  return { statusCode: 500, message: 'Internal error; the batch was not accepted. Retry, and report it if it persists.' };
}

/** Errors the router raises before any route runs (a URL that is not valid percent-encoding) get the usual body, not Fastify's own. */
export function describeRouterErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const message = error.code === 'FST_ERR_BAD_URL' ? 'The URL is not valid percent-encoding; events go to POST /v1/batch.' : error.message;
  void reply.status(400).send({ statusCode: 400, error: httpReason(400), message });
}
