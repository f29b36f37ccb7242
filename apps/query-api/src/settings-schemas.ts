import { Type, type Static } from '@sinclair/typebox';
import { SETTINGS_LIMITS } from '@tally/db';
import { errors, ExperimentParams } from './schemas.js';

const nameField = (description: string) =>
  Type.Union([Type.String({ minLength: 1, maxLength: SETTINGS_LIMITS.nameLength }), Type.Null()], { description });
const controlField = (description: string) =>
  Type.Union([Type.String({ minLength: 1, maxLength: SETTINGS_LIMITS.variantKeyLength }), Type.Null()], { description });

/**
 * Variant key → weight. Written as plain JSON Schema: TypeBox's Record would
 * describe its keys by a pattern only. The rules across entries (one weight above
 * 0, the control weighted) are checked by `settingsProblems`, with sentences.
 */
const Weights = Type.Unsafe<Record<string, number>>({
  type: 'object',
  minProperties: 1,
  maxProperties: SETTINGS_LIMITS.variants,
  additionalProperties: { type: 'number', minimum: 0, maximum: SETTINGS_LIMITS.weight },
  description:
    'Variant key → relative weight: the share of traffic each variant should get is its weight / the sum of the weights ' +
    '(they need not sum to 1). A weight of 0 means the variant should get no traffic: sessions in it flag a sample ratio ' +
    'mismatch, as do sessions in a variant not named here. At least one weight must be above 0',
  examples: [{ control: 0.5, treatment: 0.5 }],
});

export const SettingsBody = Type.Object(
  {
    name: Type.Optional(nameField(`Display name for people, 1 to ${SETTINGS_LIMITS.nameLength} characters; omitted or null: none`)),
    control: Type.Optional(
      controlField(
        'The variant the others are compared with when the results are asked for without `control`; it must have a weight above 0 ' +
          'when weights are given. Omitted or null: none (the results then compare nothing unless asked)',
      ),
    ),
    weights: Type.Optional(Type.Union([Weights, Type.Null()], { description: 'Omitted or null: every variant is expected to get an equal share' })),
  },
  {
    additionalProperties: false,
    title: 'ExperimentSettingsInput',
    description: 'The settings, replaced whole: a field left out is removed, as if sent as null',
  },
);
export type SettingsBody = Static<typeof SettingsBody>;

export const ExperimentSettings = Type.Object(
  {
    experimentId: Type.String(),
    name: Type.Union([Type.String(), Type.Null()], { description: 'Display name; null: none' }),
    control: Type.Union([Type.String(), Type.Null()], { description: 'The configured control; null: none' }),
    weights: Type.Union([Type.Record(Type.String(), Type.Number()), Type.Null()], {
      description: 'Variant key → weight, by variant key; null: equal shares expected',
    }),
    updatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When the settings were last changed; null: never configured (every field above is then null)',
    }),
  },
  { title: 'ExperimentSettings' },
);
export type ExperimentSettings = Static<typeof ExperimentSettings>;

export const getSettingsSchema = {
  summary: "An experiment's settings",
  description:
    'The display name, control and variant weights configured for the experiment. An experiment never configured ' +
    '(with or without exposures) answers 200 with every field null. Takes the read key or the admin key.',
  tags: ['settings'],
  params: ExperimentParams,
  response: {
    200: ExperimentSettings,
    ...errors({
      400: 'Invalid experiment id',
      401: 'No key, or not a live read or admin key of any project',
      403: "A write key was sent: reading settings needs the project's read or admin key",
    }),
  },
};

export const putSettingsSchema = {
  summary: "Replace an experiment's settings",
  description:
    'Sets the display name, the control and the variant weights of an experiment, replacing whatever was set before; ' +
    'an experiment may be configured before its first exposure. Needs the admin key (`pnpm tally project rotate-key ' +
    '--project <id> --kind admin` makes one). The weights feed the sample ratio mismatch test of the results, and the ' +
    'control is the baseline of their comparisons.',
  tags: ['settings'],
  params: ExperimentParams,
  body: SettingsBody,
  response: {
    200: ExperimentSettings,
    ...errors({
      400: 'A body that is not valid settings; the message says what to change',
      401: 'No key, or not a live admin key of any project',
      403: "A read or write key was sent: changing settings needs the project's admin key",
    }),
  },
};
