import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  getExperimentSettings,
  InvalidSettingsError,
  putExperimentSettings,
  type Database,
  type ExperimentSettings as StoredSettings,
} from '@tally/db';
import { HttpError } from '@tally/server';
import { projectIdOf } from '../auth.js';
import { getSettingsSchema, putSettingsSchema, type ExperimentSettings } from '../settings-schemas.js';

/**
 * The server's validator coerces types (`coerceTypes: 'array'`), which query
 * strings need; a settings body must not be coerced: `"name": 5` or
 * `"weights": {"a": "0.5"}` is a client's mistake to be told about, not to be
 * stored as "5" and 0.5. Same options otherwise (see @tally/server).
 */
const coercing = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false });
const exact = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false });

/** `GET` and `PUT /v1/experiments/:experimentId/settings`; which key each takes is decided where they are registered. */
export async function settingsRoutes(scope: FastifyInstance, { db }: { db: Database }): Promise<void> {
  scope.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? exact : coercing).compile(schema));
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/experiments/:experimentId/settings', { schema: getSettingsSchema }, async (request): Promise<ExperimentSettings> =>
    serialize(await getExperimentSettings(db, projectIdOf(request), request.params.experimentId)),
  );

  app.put('/experiments/:experimentId/settings', { schema: putSettingsSchema }, async (request): Promise<ExperimentSettings> => {
    const { name = null, control = null, weights = null } = request.body;
    try {
      const stored = await putExperimentSettings(db, projectIdOf(request), request.params.experimentId, { name, control, weights });
      request.log.info({ experimentId: request.params.experimentId }, 'experiment settings replaced');
      return serialize(stored);
    } catch (error) {
      if (error instanceof InvalidSettingsError) throw new HttpError(400, `body: ${error.problems.join(' ')}`);
      throw error;
    }
  });
}

const serialize = (settings: StoredSettings): ExperimentSettings => ({
  ...settings,
  updatedAt: settings.updatedAt?.toISOString() ?? null,
});
