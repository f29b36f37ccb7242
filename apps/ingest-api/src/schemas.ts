import { Type } from '@sinclair/typebox';
import { BatchBody, BatchRejection, BatchResponse } from '@tally/contracts';

/** Every refusal of a batch: the batch response's shape (nothing accepted) with a sentence saying what to change. */
export const BatchRefusal = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String({ description: 'HTTP reason phrase' }),
  message: Type.String({ description: 'What was wrong and what to change' }),
  accepted: Type.Literal(0),
  rejected: Type.Array(BatchRejection, { description: 'Each invalid event with its errors (empty when the request itself was refused)' }),
});

export const batchSchema = {
  summary: 'Send a batch of events',
  description:
    'Authenticated with the project write key (`Authorization: Bearer tly_w_…`). The body is JSON, optionally with ' +
    '`Content-Encoding: gzip` or `deflate`; limits apply to the decompressed size. Each event (schema `IncomingEvent`) ' +
    'is validated on its own: valid events are accepted even when others are not. With `sentAt`, client clock skew is ' +
    'corrected as `receivedAt - (sentAt - timestamp)`. 202 means the accepted events are durably queued. ' +
    '`eventId` is the idempotency key: sending the same event again (after a timeout, a 429 or a 503) stores it once.',
  tags: ['ingest'],
  body: BatchBody,
  response: {
    202: { ...BatchResponse, description: 'The valid events are queued; the invalid ones are listed with their errors' },
    400: { ...BatchRefusal, description: 'Malformed body, or no valid event' },
    401: { ...BatchRefusal, description: 'Missing, unknown or read-only key' },
    413: { ...BatchRefusal, description: 'Body or batch too large (also: more valid events than the project may send in a minute)' },
    415: { ...BatchRefusal, description: 'Not JSON, or an unsupported Content-Encoding' },
    429: {
      ...BatchRefusal,
      description:
        'Overloaded (too many batches waiting, or Redis memory nearly full) or over the project’s rate limit; the message says which. ' +
        'Send the same batch again after Retry-After seconds',
    },
    503: { ...BatchRefusal, description: 'The queue or the key store is unreachable; retry shortly' },
  },
};
