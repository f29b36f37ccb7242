import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IncomingEvent, normalizeEach, type BatchBody, type BatchResponse, type IngestLimits } from '@tally/contracts';
import { eventRowBytes } from '@tally/db';
import type { BatchToQueue } from '@tally/queue';
import { HttpError, httpReason } from '@tally/server';
import { admitWithin, type BodyBudget } from './admission.js';
import { projectIdOf, requireWriteKey } from './auth.js';
import { allowAnyOrigin } from './cors.js';
import { decompressBody } from './decompress.js';
import { batchErrorHandler } from './errors.js';
import { explainRefusedJsonKeys } from './json-body.js';
import type { WriteKeyResolver } from './keys.js';
import { outcomeOf, type IngestMetrics } from './metrics.js';
import { batchSchema } from './schemas.js';
import { typeboxValidator } from './validation.js';

export interface BatchRouteOptions {
  keys: WriteKeyResolver;
  /** Resolves with the job id once Redis holds the job. */
  enqueue: (batch: BatchToQueue) => Promise<string | undefined>;
  metrics: IngestMetrics;
  /** Bodies in flight at once; a request waits for its turn before its body is read. */
  budget: BodyBudget;
  limits: IngestLimits & { maxBodyBytes: number; maxEventsPerBatch: number };
}

/** `POST /v1/batch`: authenticate, inflate, parse, validate each event, queue the valid ones, answer 202. */
export async function batchRoutes(scope: FastifyInstance, { keys, enqueue, metrics, budget, limits }: BatchRouteOptions): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  // Only JSON: Fastify would otherwise parse text/plain into a string and answer 400 instead of 415.
  app.removeContentTypeParser('text/plain');
  explainRefusedJsonKeys(app);
  app.setValidatorCompiler(typeboxValidator);
  app.addSchema({ ...IncomingEvent, $id: 'IncomingEvent', title: 'IncomingEvent' });

  const partial = new WeakSet<FastifyRequest>();
  const crossOrigin = allowAnyOrigin(app, '/v1/batch');

  app.post('/v1/batch', {
    schema: batchSchema,
    bodyLimit: limits.maxBodyBytes,
    errorHandler: batchErrorHandler(limits),
    // CORS before the key check, so that a refusal reaches the page's script too; the wait for
    // a turn after it, so that a request with a bad key takes no one's turn.
    onRequest: [
      crossOrigin,
      requireWriteKey(keys),
      admitWithin(budget, limits.maxBodyBytes, () => metrics.refusals.inc({ reason: 'in_flight' })),
    ],
    preParsing: decompressBody(limits.maxBodyBytes),
    onResponse: async (request, reply) => {
      metrics.batches.inc({ outcome: outcomeOf(reply.statusCode, partial.has(request)) });
    },
    handler: async (request, reply) => {
      const projectId = projectIdOf(request);
      const { sent, toQueue, rejected } = encodeBody(request, projectId, limits);
      metrics.eventsRejected.inc(rejected.length);
      if (toQueue === undefined) {
        return reply.status(400).send({
          statusCode: 400,
          error: httpReason(400),
          message: `${sent === 1 ? 'The event is not valid' : `None of the ${sent} events is valid`}, so nothing was accepted; "rejected" says what to fix.`,
          accepted: 0 as const,
          rejected,
        });
      }
      const jobId = await enqueue(toQueue);
      const accepted = toQueue.count;
      metrics.eventsAccepted.inc(accepted);
      request.log.debug({ projectId, jobId, accepted, rejected: rejected.length }, 'batch queued');
      if (rejected.length > 0) partial.add(request);
      const response: BatchResponse = { accepted, rejected };
      return reply.status(202).send(response);
    },
  });
}

/**
 * The parsed body, checked and encoded: the valid events as rows, ready to queue
 * (none when no event is valid), and what was wrong with the others.
 *
 * A function of its own, run to its end before the handler waits for Redis: no
 * variable of the waiting handler holds an object of the batch, and the body is let
 * go from the request too, so that nothing but the rows' bytes outlives this tick.
 * Under load, objects alive across that wait were what filled the old generation
 * (BENCHMARKS.md).
 */
function encodeBody(
  request: FastifyRequest,
  projectId: string,
  limits: BatchRouteOptions['limits'],
): { sent: number; toQueue?: BatchToQueue; rejected: BatchResponse['rejected'] } {
  const { events, sentAt } = request.body as BatchBody;
  if (events.length > limits.maxEventsPerBatch) {
    throw new HttpError(
      413,
      `The batch has ${events.length} events; at most ${limits.maxEventsPerBatch} are accepted in one batch. Split it into smaller batches.`,
    );
  }
  const receivedAt = Date.now();
  (request as { body: unknown }).body = undefined;
  // Each event encoded as soon as it is checked, and let go of with its parsed form: a
  // collection in the middle of a batch then finds only the events still to come alive.
  const rows = eventRowBytes(projectId, receivedAt, events.length);
  const rejected: BatchResponse['rejected'] = [];
  let accepted = 0;
  normalizeEach(events, sentAt, receivedAt, limits, {
    accept: (event, index) => {
      rows.add(event);
      accepted++;
      events[index] = undefined;
    },
    reject: (rejection) => {
      rejected.push(rejection);
      events[rejection.index] = undefined;
    },
  });
  if (accepted === 0) return { sent: events.length, rejected };
  return { sent: events.length, toQueue: { projectId, receivedAt, count: accepted, rows: rows.bytes() }, rejected };
}
