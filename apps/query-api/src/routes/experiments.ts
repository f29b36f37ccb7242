import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { HttpError } from '@tally/server';
import { projectIdOf } from '../auth.js';
import type { ResultsSource } from '../results.js';
import {
  listSchema,
  resultsSchema,
  timeseriesSchema,
  type ExperimentList,
  type ExperimentResults,
  type ExperimentTimeseries,
} from '../schemas.js';

type Variant = ExperimentResults['variants'][number];

/** `/v1/experiments` and an experiment's `/results` and `/timeseries`, for the key's project only. */
export async function experimentRoutes(scope: FastifyInstance, { results }: { results: ResultsSource }): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/experiments', { schema: listSchema }, async (request): Promise<ExperimentList> => {
    const { experiments, asOf } = await results.listExperiments(projectIdOf(request));
    return { experiments, asOf: asOf.toISOString() };
  });

  app.get('/experiments/:experimentId/results', { schema: resultsSchema }, async (request): Promise<ExperimentResults> => {
    const { experimentId } = request.params;
    const { goal = null, control = null } = request.query;
    const found = await results.experimentResults(projectIdOf(request), experimentId, goal);
    if (!found) throw noSuchExperiment(experimentId);
    return {
      experimentId,
      goal,
      control,
      asOf: found.asOf.toISOString(),
      excludedSessions: found.excludedSessions,
      variants: orderVariants(experimentId, found.variants, control),
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
