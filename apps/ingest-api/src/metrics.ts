import { Counter, Gauge, type Registry } from 'prom-client';

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

/** The checks that refuse a batch for load, each of which reads Redis and may fail to. */
export const OVERLOAD_CHECKS = ['queue_depth', 'redis_memory', 'rate_limit'] as const;
export type OverloadCheck = (typeof OVERLOAD_CHECKS)[number];
/** Why a batch was refused for the load it brings rather than for its content: a check, or its turn not coming (admission.ts). */
export const REFUSAL_REASONS = [...OVERLOAD_CHECKS, 'in_flight'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Everything the ingest API counts, on the registry `/metrics` serves. */
export function createIngestMetrics(registry: Registry, budget: { bytesInFlight: number; requestsWaiting: number }) {
  const registers = [registry];
  const batches = new Counter({
    name: 'tally_ingest_batches_total',
    help: 'Batches received, by outcome: accepted (every event), partial (some events rejected), or why the batch was refused',
    labelNames: ['outcome'],
    registers,
  });
  // Every outcome is exported from the start, so rates work before the first refusal.
  for (const outcome of BATCH_OUTCOMES) batches.inc({ outcome }, 0);
  const refusals = new Counter({
    name: 'tally_ingest_refusals_total',
    help:
      'Batches refused for load, by reason: queue_depth (MAX_QUEUE_DEPTH), redis_memory (MAX_REDIS_MEMORY_RATIO / _MB), ' +
      'rate_limit (RATE_LIMIT_EVENTS_PER_MINUTE; 429, or 413 for a batch larger than the whole limit), ' +
      'in_flight (waited MAX_INFLIGHT_WAIT_MS for MAX_INFLIGHT_BODY_BYTES)',
    labelNames: ['reason'],
    registers,
  });
  const checkFailures = new Counter({
    name: 'tally_ingest_check_failures_total',
    help: 'Overload and rate-limit checks that could not read Redis, by check; the batch was let through (fail open)',
    labelNames: ['check'],
    registers,
  });
  for (const reason of REFUSAL_REASONS) refusals.inc({ reason }, 0);
  for (const check of OVERLOAD_CHECKS) checkFailures.inc({ check }, 0);
  new Gauge({
    name: 'tally_ingest_body_bytes_in_flight',
    help: 'Bytes of batch bodies being read and processed now (bounded by MAX_INFLIGHT_BODY_BYTES)',
    registers,
    collect() {
      this.set(budget.bytesInFlight);
    },
  });
  new Gauge({
    name: 'tally_ingest_batches_waiting',
    help: 'Batch requests waiting for MAX_INFLIGHT_BODY_BYTES, their bodies not read yet',
    registers,
    collect() {
      this.set(budget.requestsWaiting);
    },
  });
  return {
    batches,
    refusals,
    checkFailures,
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
