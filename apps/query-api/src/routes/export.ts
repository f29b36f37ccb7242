import { pipeline } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  ExportConsumerTimeoutError,
  openEventExport,
  type Database,
  type EventExportSelection,
  type EventExportStream,
} from '@tally/db';
import { HttpError } from '@tally/server';
import { projectIdOf } from '../auth.js';
import { contentDisposition, ENCODINGS, encoder, type ExportFormat } from '../export-format.js';
import { experimentExportSchema, exportRange, projectExportSchema } from '../export-schemas.js';

export interface ExportOptions {
  /** Rows fetched from Postgres per round trip. */
  batchSize?: number;
  /**
   * Exports running at once. Each holds a pooled connection for as long as its
   * client reads, so the default leaves half the pool to everything else.
   */
  maxConcurrent?: number;
  /** How long an export may wait for a client that stopped reading before it is cut off. */
  consumerTimeoutMs?: number;
  /** Told the size of every batch an export fetches from Postgres (instrumentation, tests). */
  onBatch?: (rows: number) => void;
}

/** Seconds a client told 429 is asked to wait: exports take a while, so not less. */
const RETRY_AFTER_SECONDS = 5;
/**
 * How long a request waits for a slot before the 429. A slot is freed only once
 * the previous export's connection is back in the pool, a moment after its client
 * has read the last byte: a client that exports one range after another must not
 * be refused for that moment.
 */
const SLOT_WAIT_MS = 2_000;

/** `/v1/experiments/:experimentId/export` and `/v1/export`: raw events, streamed. */
export async function exportRoutes(
  scope: FastifyInstance,
  { db, options = {} }: { db: Database; options?: ExportOptions },
): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const maxConcurrent = options.maxConcurrent ?? Math.max(1, Math.floor((db.$client.options.max ?? 10) / 2));
  let running = 0;
  const waiting = new Set<() => void>();
  /** Resolves true once a slot is free (and takes it), false after SLOT_WAIT_MS. */
  const takeSlot = async (): Promise<boolean> => {
    const deadline = Date.now() + SLOT_WAIT_MS;
    while (running >= maxConcurrent) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          waiting.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        waiting.add(wake);
      });
    }
    running += 1;
    return true;
  };

  async function stream(
    request: FastifyRequest,
    reply: FastifyReply,
    format: ExportFormat,
    selection: EventExportSelection,
    filename: string,
  ) {
    if (!(await takeSlot())) {
      throw new HttpError(429, `${maxConcurrent} exports are running, as many as this server allows; retry shortly.`, {
        'retry-after': String(RETRY_AFTER_SECONDS),
      });
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      running -= 1;
      // One waiter at a time: the first to run takes the slot, the others wait on.
      waiting.values().next().value?.();
    };

    let rows = 0;
    const started = Date.now();
    let source: EventExportStream | undefined;
    try {
      source = await openEventExport(db, selection, {
        batchSize: options.batchSize,
        consumerTimeoutMs: options.consumerTimeoutMs,
        onBatch: (n) => {
          rows += n;
          options.onBatch?.(n);
        },
      });
    } catch (error) {
      release();
      throw error;
    }
    if (!source) {
      release();
      throw noSuchExperiment(selection.experimentId ?? '');
    }
    // 'close' comes after the connection is back in the pool.
    source.once('close', release);

    const encoding = ENCODINGS[format];
    // pipeline destroys every stream as soon as one fails or closes early: when the
    // client goes away, Fastify destroys the encoder, and the source with it closes
    // its cursor and gives its connection back.
    const body = pipeline(source, encoder(format), (error) => {
      const outcome = outcomeOf(error);
      const log = { rows, format, ms: Date.now() - started, outcome };
      if (outcome === 'failed') request.log.error({ ...log, err: error }, 'export failed');
      else if (outcome === 'stalled') request.log.warn(log, 'export cut off: the client stopped reading');
      else request.log.info(log, 'export ended');
    });
    return reply
      .header('content-type', encoding.contentType)
      .header('content-disposition', contentDisposition(`${filename}.${encoding.extension}`))
      .send(body);
  }

  // No automatic HEAD: Fastify would run the export and drain it into the void,
  // reading every row from Postgres for a response without a body.
  const route = { exposeHeadRoute: false };

  app.get('/experiments/:experimentId/export', { ...route, schema: experimentExportSchema }, async (request, reply) => {
    const { experimentId } = request.params;
    const { format } = request.query;
    const range = exportRange(request.query);
    return stream(request, reply, format, { projectId: projectIdOf(request), experimentId, ...range }, `${experimentId}-events`);
  });

  app.get('/export', { ...route, schema: projectExportSchema }, async (request, reply) => {
    const { format } = request.query;
    const range = exportRange(request.query);
    const stamp = (d: Date | undefined) => d!.toISOString().replace(/[-:]|\.\d+/g, '');
    return stream(request, reply, format, { projectId: projectIdOf(request), ...range }, `events-${stamp(range.from)}-${stamp(range.to)}`);
  });
}

function outcomeOf(error: Error | null | undefined): 'complete' | 'aborted' | 'stalled' | 'failed' {
  if (!error) return 'complete';
  if (error instanceof ExportConsumerTimeoutError) return 'stalled';
  // Fastify destroys the body when the client goes away; pipeline reports that as a premature close.
  if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return 'aborted';
  return 'failed';
}

/** The same answer as the results route gives for an experiment without exposures. */
function noSuchExperiment(experimentId: string): HttpError {
  return new HttpError(
    404,
    `No experiment ${JSON.stringify(experimentId)} in this project: no exposure to it has been stored. ` +
      'GET /v1/experiments lists the experiments that have exposures.',
  );
}
