import { Type, type Static } from '@sinclair/typebox';

const name = (description: string) => Type.String({ minLength: 1, maxLength: 128, description });
const count = (description: string) => Type.Integer({ minimum: 0, description });

const asOf = Type.String({
  format: 'date-time',
  description:
    'When these numbers were computed (the database clock at the start of the computation): every event stored before this instant is counted.',
});

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String({ description: 'HTTP reason phrase' }),
    message: Type.String({ description: 'What went wrong and what to change' }),
  },
  { title: 'Error', description: 'Every error has this shape' },
);

const errors = (statuses: Record<number, string>) =>
  Object.fromEntries(Object.entries(statuses).map(([status, description]) => [status, { ...ErrorResponse, description }]));

const authErrors = {
  401: 'No key, or not a live read key of any project',
  403: "A write key was sent: reading needs the project's read key",
};

export const ExperimentParams = Type.Object(
  { experimentId: name('The experiment id the tracking client sent with its exposures') },
  { additionalProperties: false },
);
export type ExperimentParams = Static<typeof ExperimentParams>;

export const ResultsQuery = Type.Object(
  {
    goal: Type.Optional(name('Count only conversions with this goal; omitted, conversions of any goal count')),
    control: Type.Optional(name('Variant to list first, as the baseline the others are compared with')),
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
});

export const ExperimentResults = Type.Object(
  {
    experimentId: Type.String(),
    goal: Type.Union([Type.String(), Type.Null()], { description: 'The goal counted; null for any goal' }),
    control: Type.Union([Type.String(), Type.Null()], { description: 'The variant listed first, if one was asked for' }),
    asOf,
    excludedSessions: count('Exposed sessions that saw more than one variant: counted in no variant'),
    variants: Type.Array(VariantResults, {
      description: 'Variants with at least one assigned session: the control first, then by variant key',
    }),
  },
  { title: 'ExperimentResults' },
);
export type ExperimentResults = Static<typeof ExperimentResults>;

export const ExperimentList = Type.Object(
  {
    experiments: Type.Array(
      Type.Object({
        experimentId: Type.String(),
        exposedSessions: count('Sessions with at least one exposure to the experiment, whatever the variant'),
        firstExposureAt: Type.String({ format: 'date-time' }),
        lastExposureAt: Type.String({ format: 'date-time' }),
        variants: Type.Array(
          Type.Object({
            variantKey: Type.String(),
            exposedSessions: count(
              'Sessions exposed to this variant; a session that saw several variants is counted in each',
            ),
          }),
        ),
      }),
      { description: 'Every experiment with at least one exposure, by experiment id' },
    ),
    asOf,
  },
  { title: 'ExperimentList' },
);
export type ExperimentList = Static<typeof ExperimentList>;

export const NoQuery = Type.Object({}, { additionalProperties: false });

export const listSchema = {
  querystring: NoQuery,
  summary: "The project's experiments",
  description: 'Every experiment of the key\'s project that has exposures, with its variants and exposed sessions.',
  tags: ['experiments'],
  response: { 200: ExperimentList, ...errors(authErrors) },
};

export const resultsSchema = {
  summary: 'Results of one experiment, per variant',
  description:
    'A session is assigned to a variant when all its exposures to the experiment name that variant; ' +
    'only its events at or after its first exposure count. Sessions that saw several variants are counted ' +
    'only in `excludedSessions`. A conversion counts for every experiment its session is assigned in.',
  tags: ['experiments'],
  params: ExperimentParams,
  querystring: ResultsQuery,
  response: {
    200: ExperimentResults,
    ...errors({
      400: 'Invalid parameter, or a `control` that is not a variant of the experiment',
      ...authErrors,
      404: 'The project has no exposure to this experiment',
    }),
  },
};
