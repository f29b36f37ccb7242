import { Type, type Static } from '@sinclair/typebox';
import { experimentStatistics, variantStatistics } from './statistics-schemas.js';

const name = (description: string) => Type.String({ minLength: 1, maxLength: 128, description });
const count = (description: string) => Type.Integer({ minimum: 0, description });

const asOf = Type.String({
  format: 'date-time',
  description:
    'Every event stored before this instant is counted; the rollup refreshes summaries every second or so. ' +
    'Before the rollup has first run it is 1970-01-01T00:00:00.000Z and nothing is counted.',
});

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String({ description: 'HTTP reason phrase' }),
    message: Type.String({ description: 'What went wrong and what to change' }),
  },
  { title: 'Error', description: 'Every error has this shape' },
);

export const errors = (statuses: Record<number, string>) =>
  Object.fromEntries(Object.entries(statuses).map(([status, description]) => [status, { ...ErrorResponse, description }]));

const authErrors = {
  401: 'No key, or not a live read key of any project',
  403: "A write or admin key was sent: reading results needs the project's read key",
};

export const ExperimentParams = Type.Object(
  { experimentId: name('The experiment id the tracking client sent with its exposures') },
  { additionalProperties: false },
);
export type ExperimentParams = Static<typeof ExperimentParams>;

export const ResultsQuery = Type.Object(
  {
    goal: Type.Optional(name('Count only conversions with this goal; omitted, conversions of any goal count')),
    control: Type.Optional(
      name(
        'Variant to list first, as the baseline the others are compared with; omitted, the configured control (if any) is the baseline',
      ),
    ),
    alpha: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        exclusiveMaximum: 0.5,
        default: 0.05,
        description: 'Significance level of the tests; every interval is at level 1 - alpha (0.05: 95% intervals)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ResultsQuery = Static<typeof ResultsQuery>;

export const VariantResults = Type.Object({
  variantKey: Type.String(),
  sessions: count('Sessions assigned to this variant (exposed to it, and to no other variant of the experiment)'),
  pageviewSessions: count('Assigned sessions with at least one pageview at or after their first exposure'),
  pageviews: count('Pageviews of assigned sessions at or after their first exposure'),
  convertedSessions: count('Assigned sessions with at least one counted conversion'),
  conversions: count('Conversions (of `goal`, or of any goal) of assigned sessions at or after their first exposure'),
  conversionRate: Type.Number({ minimum: 0, maximum: 1, description: 'convertedSessions / sessions' }),
  ...variantStatistics,
});

export const ExperimentResults = Type.Object(
  {
    experimentId: Type.String(),
    goal: Type.Union([Type.String(), Type.Null()], { description: 'The goal counted; null for any goal' }),
    control: Type.Union([Type.String(), Type.Null()], { description: 'The variant listed first, if one was asked for' }),
    asOf,
    excludedSessions: count('Exposed sessions that saw more than one variant: counted in no variant'),
    variants: Type.Array(VariantResults, {
      description: 'Variants with at least one assigned session: the control asked for first, then by variant key',
    }),
    ...experimentStatistics,
  },
  { title: 'ExperimentResults' },
);
export type ExperimentResults = Static<typeof ExperimentResults>;

export const ExperimentSummary = Type.Object(
  {
    experimentId: Type.String(),
    exposedSessions: count('Sessions with at least one exposure to the experiment: the assigned ones and the excluded ones'),
    excludedSessions: count('Exposed sessions that saw more than one variant (or named none): counted in no variant'),
    firstExposureAt: Type.String({ format: 'date-time', description: 'The earliest exposure to the experiment' }),
    lastExposureAt: Type.String({ format: 'date-time', description: 'The latest exposure to the experiment' }),
    variants: Type.Array(
      Type.Object({
        variantKey: Type.String(),
        sessions: count('Sessions assigned to this variant (exposed to it, and to no other variant of the experiment)'),
      }),
      { description: 'Variants with at least one assigned session, by variant key' },
    ),
  },
  { title: 'ExperimentSummary' },
);

export const ExperimentList = Type.Object(
  {
    experiments: Type.Array(ExperimentSummary, { description: 'Every experiment with at least one exposure, by experiment id' }),
    asOf,
  },
  { title: 'ExperimentList' },
);
export type ExperimentList = Static<typeof ExperimentList>;

export const TimeseriesQuery = Type.Object(
  {
    interval: Type.Optional(
      Type.Unsafe<'hour' | 'day'>({
        type: 'string',
        enum: ['hour', 'day'],
        default: 'day',
        description: 'Width of a bucket: a UTC hour or a UTC day',
      }),
    ),
    goal: Type.Optional(name('Count only conversions with this goal; omitted, conversions of any goal count')),
  },
  { additionalProperties: false },
);
export type TimeseriesQuery = Static<typeof TimeseriesQuery>;

export const TimeseriesPoint = Type.Object({
  bucket: Type.String({
    format: 'date-time',
    description: 'Start of the UTC hour or day in which these sessions were first exposed to the experiment',
  }),
  sessions: count('Sessions assigned to the variant whose first exposure falls in this bucket (the cohort)'),
  convertedSessions: count('Sessions of the cohort with at least one counted conversion, whenever it happened'),
  cumulativeSessions: count('sessions of this bucket and every earlier one'),
  cumulativeConvertedSessions: count('convertedSessions of this bucket and every earlier one'),
  cumulativeConversionRate: Type.Number({
    minimum: 0,
    maximum: 1,
    description: 'cumulativeConvertedSessions / cumulativeSessions',
  }),
});

export const ExperimentTimeseries = Type.Object(
  {
    experimentId: Type.String(),
    interval: Type.Union([Type.Literal('hour'), Type.Literal('day')], { description: 'Width of a bucket' }),
    goal: Type.Union([Type.String(), Type.Null()], { description: 'The goal counted; null for any goal' }),
    asOf,
    variants: Type.Array(
      Type.Object({
        variantKey: Type.String(),
        points: Type.Array(TimeseriesPoint, {
          description:
            'Buckets in time order; a bucket in which no session was first exposed to the variant is left out. ' +
            "The last point's running totals are the variant's `sessions` and `convertedSessions` in the results",
        }),
      }),
      { description: 'Variants with at least one assigned session, by variant key' },
    ),
  },
  { title: 'ExperimentTimeseries' },
);
export type ExperimentTimeseries = Static<typeof ExperimentTimeseries>;

export const NoQuery = Type.Object({}, { additionalProperties: false });

export const listSchema = {
  querystring: NoQuery,
  summary: "The project's experiments",
  description:
    "Every experiment of the key's project that has exposures, with its exposed and excluded sessions and the sessions " +
    'assigned to each variant. Served from the summaries the rollup keeps.',
  tags: ['experiments'],
  response: { 200: ExperimentList, ...errors(authErrors) },
};

export const resultsSchema = {
  summary: 'Results of one experiment, per variant, with their statistics',
  description:
    'A session is assigned to a variant when all its exposures to the experiment name that variant; ' +
    'only its events at or after its first exposure count. Sessions that saw several variants are counted ' +
    'only in `excludedSessions`. A conversion counts for every experiment its session is assigned in.\n\n' +
    'Each variant is compared with the control (the `control` parameter, else the configured one) on its conversion rate ' +
    "(converted sessions / sessions): absolute and relative lift with confidence intervals and Welch's t test, a Bayesian " +
    'chance to win, and a decision, as GrowthBook computes them for proportions. There is no correction for comparing ' +
    'several variants with one control. `srm` tests the split of sessions against the configured weights, and ' +
    '`multipleExposure` the share of sessions excluded for seeing several variants: when either is flagged, the ' +
    'comparisons are not to be trusted.',
  tags: ['experiments'],
  params: ExperimentParams,
  querystring: ResultsQuery,
  response: {
    200: ExperimentResults,
    ...errors({
      400: 'Invalid parameter (such as an alpha outside (0, 0.5)), or a `control` that is not a variant of the experiment',
      ...authErrors,
      404: 'The project has no exposure to this experiment',
    }),
  },
};

export const timeseriesSchema = {
  summary: 'Cohorts of one experiment over time, per variant',
  description:
    'Assigned sessions grouped by the UTC hour or day of their first exposure to the experiment, per variant: ' +
    'how many sessions each bucket brought, how many of them converted (at any later time), and running totals. ' +
    'Excluded sessions (several variants) are in no bucket. Sessions and conversions follow the same rules as `/results`.',
  tags: ['experiments'],
  params: ExperimentParams,
  querystring: TimeseriesQuery,
  response: {
    200: ExperimentTimeseries,
    ...errors({
      400: 'Invalid parameter, such as an `interval` other than hour or day',
      ...authErrors,
      404: 'The project has no exposure to this experiment',
    }),
  },
};
