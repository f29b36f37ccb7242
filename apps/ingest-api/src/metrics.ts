import { Counter, type Registry } from 'prom-client';

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;

export const BATCH_OUTCOMES = [
  'accepted',
  'partial',
  'invalid',
  'unauthorized',
  'too_large',
  'unsupported',
  'overloaded',
  'unavailable',
  'error',
] as const;
export type BatchOutcome = (typeof BATCH_OUTCOMES)[number];

/** Everything the ingest API counts, on the registry `/metrics` serves. */
export function createIngestMetrics(registry: Registry) {
  const registers = [registry];
  const batches = new Counter({
    name: 'tally_ingest_batches_total',
    help: 'Batches received, by outcome: accepted (every event), partial (some events rejected), or why the batch was refused',
    labelNames: ['outcome'],
    registers,
  });
  // Every outcome is exported from the start, so rates work before the first refusal.
  for (const outcome of BATCH_OUTCOMES) batches.inc({ outcome }, 0);
  return {
    batches,
    eventsAccepted: new Counter({
      name: 'tally_ingest_events_accepted_total',
      help: 'Events queued for storage',
      registers,
    }),
    eventsRejected: new Counter({
      name: 'tally_ingest_events_rejected_total',
      help: 'Events refused on their own for failing validation',
      registers,
    }),
  };
}

export function outcomeOf(statusCode: number, partial: boolean): BatchOutcome {
  switch (statusCode) {
    case 202:
      return partial ? 'partial' : 'accepted';
    case 400:
      return 'invalid';
    case 401:
    case 403:
      return 'unauthorized';
    case 413:
      return 'too_large';
    case 415:
      return 'unsupported';
    case 429:
      return 'overloaded';
    case 503:
      return 'unavailable';
    default:
      return 'error';
  }
}
