import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { HttpError } from '@tally/server';
import { projectIdOf } from '../auth.js';
import type { ExperimentSettings } from '@tally/db';
import type { ResultsSource } from '../results.js';
import { experimentStatisticsOf } from '../statistics.js';
import {
  listSchema,
  resultsSchema,
  timeseriesSchema,
  type ExperimentList,
  type ExperimentResults,
  type ExperimentTimeseries,
} from '../schemas.js';

type Variant = Omit<ExperimentResults['variants'][number], 'comparison' | 'comparisonReason'>;

export interface ExperimentRoutesOptions {
  results: ResultsSource;
  /** The experiment's configured control and weights, for the statistics. */
  settingsOf: (projectId: string, experimentId: string) => Promise<ExperimentSettings>;
}

/** `/v1/experiments` and an experiment's `/results` and `/timeseries`, for the key's project only. */
export async function experimentRoutes(scope: FastifyInstance, { results, settingsOf }: ExperimentRoutesOptions): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/experiments', { schema: listSchema }, async (request): Promise<ExperimentList> => {
    const { experiments, asOf } = await results.listExperiments(projectIdOf(request));
    return { experiments, asOf: asOf.toISOString() };
  });

  app.get('/experiments/:experimentId/results', { schema: resultsSchema }, async (request): Promise<ExperimentResults> => {
    const { experimentId } = request.params;
    const { goal = null, control = null, alpha = 0.05 } = request.query;
    // Ajv turns "Infinity" and "1e999" into Infinity and then skips its range checks on non-finite numbers.
    if (!Number.isFinite(alpha)) throw new HttpError(400, 'querystring: alpha must be greater than 0 and less than 0.5.');
    const projectId = projectIdOf(request);
    // Side by side: the settings do not depend on the results (only the statistics need both).
    const [found, settings] = await Promise.all([
      results.experimentResults(projectId, experimentId, goal),
      settingsOf(projectId, experimentId),
    ]);
    if (!found) throw noSuchExperiment(experimentId);
    const variants = orderVariants(experimentId, found.variants, control);
    const statistics = experimentStatisticsOf({
      experimentId,
      variants,
      excludedSessions: found.excludedSessions,
      askedControl: control,
      settings,
      alpha,
    });
    return {
      experimentId,
      goal,
      control,
      asOf: found.asOf.toISOString(),
      excludedSessions: found.excludedSessions,
      variants: variants.map((v) => ({ ...v, ...statistics.variants.get(v.variantKey)! })),
      ...statistics.experiment,
    };
  });

  app.get(
    '/experiments/:experimentId/timeseries',
    { schema: timeseriesSchema },
    async (request): Promise<ExperimentTimeseries> => {
      const { experimentId } = request.params;
      const { interval = 'day', goal = null } = request.query;
      const found = await results.experimentTimeseries(projectIdOf(request), experimentId, interval, goal);
      if (!found) throw noSuchExperiment(experimentId);
      return { experimentId, interval, goal, asOf: found.asOf.toISOString(), variants: found.variants };
    },
  );
}

function noSuchExperiment(experimentId: string): HttpError {
  return new HttpError(
    404,
    `No experiment ${JSON.stringify(experimentId)} in this project: no exposure to it has been stored. ` +
      'GET /v1/experiments lists the experiments that have exposures.',
  );
}

/** The control first, then by variant key (code-point order, whatever the database's collation). */
function orderVariants(experimentId: string, variants: readonly Variant[], control: string | null): Variant[] {
  const ordered = [...variants].sort((a, b) => (a.variantKey < b.variantKey ? -1 : a.variantKey > b.variantKey ? 1 : 0));
  if (control === null) return ordered;
  const index = ordered.findIndex((v) => v.variantKey === control);
  if (index < 0) {
    const known = ordered.length === 0
      ? 'it has no assigned session yet (every exposed session saw several variants)'
      : `its variants are ${ordered.map((v) => JSON.stringify(v.variantKey)).join(', ')}`;
    throw new HttpError(
      400,
      `control: ${JSON.stringify(control)} is not a variant of experiment ${JSON.stringify(experimentId)}; ${known}.`,
    );
  }
  return [ordered[index]!, ...ordered.slice(0, index), ...ordered.slice(index + 1)];
}
