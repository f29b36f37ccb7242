/**
 * Deterministic experiment traffic for fault tests: batches of events with
 * distinct ids, sessions that come back batch after batch (so the rollup keeps
 * changing sessions it has already folded), exposures to several experiments,
 * sessions that see two variants, conversions of several goals, all within the
 * last few hours (so in partitions the worker has made).
 */

import { seededRandom } from '@tally/testing';

export const TRAFFIC_EXPERIMENTS = ['checkout-button', 'pricing-page', 'onboarding'] as const;
export const TRAFFIC_GOALS = ['purchase', 'signup'] as const;

export interface WireEvent {
  eventId: string;
  eventType: 'PAGEVIEW' | 'EXPOSURE' | 'CONVERSION';
  sessionId: string;
  timestamp: number;
  experimentId?: string;
  variantKey?: string;
  goal?: string;
  viewId?: string;
  properties?: Record<string, unknown>;
}

export interface Batch {
  events: WireEvent[];
}

export interface TrafficOptions {
  batches: number;
  eventsPerBatch: number;
  /** Event ids are `<idPrefix>-<batch>-<index>`: distinct across calls with distinct prefixes. */
  idPrefix: string;
  sessions?: number;
  seed?: number;
  /** Events fall in the `spanMs` before this instant. */
  now?: number;
  spanMs?: number;
}


export function makeTraffic({
  batches,
  eventsPerBatch,
  idPrefix,
  sessions = 300,
  seed = 1,
  now = Date.now(),
  spanMs = 6 * 3_600_000,
}: TrafficOptions): Batch[] {
  const next = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  return Array.from({ length: batches }, (_, b) => ({
    events: Array.from({ length: eventsPerBatch }, (_, i): WireEvent => {
      const session = Math.floor(next() * sessions);
      const base = {
        eventId: `${idPrefix}-${b}-${i}`,
        sessionId: `s-${session}`,
        timestamp: Math.floor(now - 60_000 - next() * spanMs),
      };
      const kind = next();
      if (kind < 0.35) {
        const experimentId = pick(TRAFFIC_EXPERIMENTS);
        // Mostly the session's own variant; now and then another one, which excludes the session.
        const own = (session + experimentId.length) % 2 === 0 ? 'control' : 'treatment';
        const variantKey = next() < 0.97 ? own : 'treatment-b';
        return { ...base, eventType: 'EXPOSURE', experimentId, variantKey };
      }
      if (kind < 0.75) {
        return { ...base, eventType: 'PAGEVIEW', viewId: `v-${b}-${i}`, properties: { path: `/p/${i % 5}` } };
      }
      const goal = pick([...TRAFFIC_GOALS, undefined]);
      return { ...base, eventType: 'CONVERSION', ...(goal ? { goal } : {}) };
    }),
  }));
}

export const countEvents = (batches: readonly Batch[]) => batches.reduce((n, batch) => n + batch.events.length, 0);
