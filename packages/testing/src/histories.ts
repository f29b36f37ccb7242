import fc from 'fast-check';

/**
 * Random experiment traffic for property tests: two projects that reuse the same
 * session and experiment ids, sessions that see two variants, conversions of
 * several goals, all over more than a day so that hour and day cohorts differ.
 */
export const HISTORY_EXPERIMENTS = ['exp-a', 'exp-b'] as const;
export const HISTORY_GOALS = [null, 'purchase', 'signup'] as const;

export const generatedEventArb = fc.record({
  project: fc.integer({ min: 0, max: 1 }),
  session: fc.integer({ min: 0, max: 7 }),
  kind: fc.constantFrom('EXPOSURE', 'EXPOSURE', 'PAGEVIEW', 'CONVERSION'),
  experiment: fc.constantFrom(...HISTORY_EXPERIMENTS),
  variant: fc.constantFrom('control', 'control', 'treatment', 'treatment', 'other'),
  goal: fc.constantFrom(...HISTORY_GOALS),
  // Minutes after the history's start: spans several hours and days.
  minute: fc.integer({ min: 0, max: 60 * 36 }),
});

export type GeneratedEvent = typeof generatedEventArb extends fc.Arbitrary<infer T> ? T : never;
