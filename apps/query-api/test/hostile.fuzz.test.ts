import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, generateKey, rotateKey, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { event, store, testApp } from './fixture.js';

/**
 * Thousands of hostile requests against the query API (in process, real Postgres):
 * odd paths and experiment ids, hostile query strings (goal, control, alpha,
 * interval, format, from/to, unknown and repeated parameters), settings bodies,
 * and every kind of key. Two projects share experiment ids; each one's data
 * carries a secret token that the requests never contain. Whatever the request:
 *   - never a 5xx;
 *   - every 4xx is JSON with the error shape and a sentence, and no internals;
 *   - a response never holds the other project's token, and an unauthenticated
 *     one holds neither;
 *   - results, lists and exports of a project are that project's own numbers;
 *   - the process answers a valid request afterwards.
 * FUZZ_RUNS (per route family) and FUZZ_SEED replay or widen a run.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 700);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;

const TOKEN = { A: `tokA${randomBytes(6).toString('hex')}`, B: `tokB${randomBytes(6).toString('hex')}` };
/** Sessions assigned per variant of `checkout` in project A: what its results must say whatever the parameters. */
const A_CHECKOUT = { control: 2, treatment: 1 };
const A_EXPERIMENTS = ['checkout', 'pricing'];

type Who = 'A' | 'B';
interface Keys {
  A: ProjectKeys & { adminKey: string };
  B: ProjectKeys & { adminKey: string };
}

let database: TestDatabase;
let keys: Keys;
let app: Awaited<ReturnType<typeof testApp>>;

async function seed(who: Who, project: ProjectKeys) {
  const t = TOKEN[who];
  const s = (n: number) => `${who.toLowerCase()}-${t}-s${n}`;
  const id = (n: number) => `${who.toLowerCase()}-${t}-e${n}`;
  const props = { secret: t, note: `=cmd|' /C calc'!A0 ${t}` };
  const control = who === 'A' ? 'control' : `control-${t}`;
  const treatment = who === 'A' ? 'treatment' : `treatment-${t}`;
  const events = [
    event('EXPOSURE', s(1), 0, { eventId: id(1), experimentId: 'checkout', variantKey: control, properties: props }),
    event('EXPOSURE', s(2), 10, { eventId: id(2), experimentId: 'checkout', variantKey: control }),
    event('EXPOSURE', s(3), 20, { eventId: id(3), experimentId: 'checkout', variantKey: treatment }),
    event('PAGEVIEW', s(1), 30, { eventId: id(4), viewId: `view-${t}`, properties: props }),
    event('CONVERSION', s(1), 40, { eventId: id(5), goal: 'purchase' }),
    event('CONVERSION', s(3), 3_700, { eventId: id(6), goal: `goal-${t}` }),
    event('EXPOSURE', s(1), 50, { eventId: id(7), experimentId: 'pricing', variantKey: who === 'A' ? 'cheap' : `cheap-${t}` }),
  ];
  if (who === 'B') {
    events.push(
      event('EXPOSURE', s(4), 60, { eventId: id(8), experimentId: 'checkout', variantKey: treatment }),
      event('EXPOSURE', s(5), 70, { eventId: id(9), experimentId: 'b-only', variantKey: `only-${t}` }),
    );
  }
  await store(database.db, project.projectId, events);
}

beforeAll(async () => {
  database = await createTestDatabase();
  const a = await createProject(database.db, 'A');
  const b = await createProject(database.db, 'B');
  keys = {
    A: { ...a, adminKey: (await rotateKey(database.db, a.projectId, 'admin'))! },
    B: { ...b, adminKey: (await rotateKey(database.db, b.projectId, 'admin'))! },
  };
  await seed('A', a);
  await seed('B', b);
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

// ---------------------------------------------------------------- generators

const SQL = ["' OR '1'='1", "'; DROP TABLE analytics_events; --", '1) UNION SELECT * FROM projects --', '$1', '\\', '%', '_', '"'];
const hostileText = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 0, maxLength: 20 }),
  fc.string({ unit: 'binary', minLength: 0, maxLength: 20 }),
  fc.constantFrom(...SQL, '..', '../..', '/', '?', '#', ';', '&', '=', '+', ' ', '\u0000', '\uD800', '\u202E', 'ü', '🧪', '__proto__', 'constructor', 'prototype'),
  fc.constantFrom(128, 129, 1_000, 3_000).map((n) => 'x'.repeat(n)),
);

/** Part of a URL: encoded as a client should (encodeURIComponent), or sent raw and broken. */
const component = (value: fc.Arbitrary<string>) =>
  fc.oneof(
    { arbitrary: value.map(encode), weight: 4 },
    { arbitrary: fc.constantFrom('%', '%zz', '%E0%A4%A', '%ED%A0%80', '%00', '%C0%AF', '%2e%2e', '%2F', '%252F', 'a%20b', 'a+b'), weight: 1 },
  );

/** encodeURIComponent, with lone surrogates (which it refuses) as their WTF-8 bytes. */
function encode(value: string): string {
  return [...value]
    .map((ch) => {
      const code = ch.codePointAt(0)!;
      return code >= 0xd800 && code <= 0xdfff ? `%ED%${(0xa0 + ((code >> 6) & 0x1f)).toString(16).toUpperCase()}%${(0x80 + (code & 0x3f)).toString(16).toUpperCase()}` : encodeURIComponent(ch);
    })
    .join('');
}

const experimentId = component(
  fc.oneof({ arbitrary: fc.constantFrom('checkout', 'pricing', 'b-only', 'nope', 'CHECKOUT', 'checkout ', ''), weight: 3 }, { arbitrary: hostileText, weight: 2 }),
);

const dateTime = fc.oneof(
  fc.constantFrom(
    '2025-01-10T00:00:00Z',
    '2025-01-10T12:00:30.5+02:00',
    '2025-01-11T00:00:00.000Z',
    '2025-02-30T00:00:00Z',
    '2025-01-10',
    '2025-01-10T00:00:00',
    '0000-01-01T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '+275760-09-13T00:00:00Z',
    '1970-01-01T00:00:00Z',
    '1969-12-31T23:59:59Z',
    'now',
    '',
  ),
  fc.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => String(ms)),
  fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()),
);

const VALUES: Record<string, fc.Arbitrary<string>> = {
  goal: fc.oneof(fc.constantFrom('purchase', 'signup', ''), hostileText),
  control: fc.oneof(fc.constantFrom('control', 'treatment', 'cheap', ''), hostileText),
  alpha: fc.oneof(
    fc.constantFrom('0.05', '0.01', '0', '0.5', '0.4999', '1', '-1', 'NaN', 'Infinity', '-Infinity', '1e-400', '5e-324', '0x10', ' 0.1', '0.05abc', '', 'true', '[]'),
    fc.double({ noNaN: false }).map(String),
  ),
  interval: fc.oneof(fc.constantFrom('hour', 'day', 'week', 'HOUR', 'minute', '', 'hour,day'), hostileText),
  format: fc.oneof(fc.constantFrom('csv', 'ndjson', 'json', 'CSV', '', 'csv,ndjson', 'xlsx'), hostileText),
  from: dateTime,
  to: dateTime,
};
const PARAMS = Object.keys(VALUES);

const queryString = fc
  .array(
    fc.oneof(
      { arbitrary: fc.constantFrom(...PARAMS).chain((name) => component(VALUES[name]!).map((value) => `${name}=${value}`)), weight: 8 },
      {
        arbitrary: fc
          .tuple(fc.constantFrom('extra', '__proto__', 'constructor', 'constructor[prototype][x]', 'goal[]', 'goal[a]', 'alpha[]', '', '&&', 'from'), component(hostileText))
          .map(([name, value]) => `${name}=${value}`),
        weight: 1,
      },
      { arbitrary: fc.constantFrom('goal', 'alpha', 'format', '=', 'format=csv=ndjson', '%'), weight: 1 },
    ),
    { maxLength: 5 },
  )
  .map((parts) => (parts.length === 0 ? '' : `?${parts.join('&')}`));

type KeyChoice = { who: Who | undefined; header: (k: Keys) => string | undefined };
const keyChoice: fc.Arbitrary<KeyChoice> = fc.oneof(
  { arbitrary: fc.constant<KeyChoice>({ who: 'A', header: (k) => `Bearer ${k.A.readKey}` }), weight: 10 },
  { arbitrary: fc.constant<KeyChoice>({ who: 'B', header: (k) => `Bearer ${k.B.readKey}` }), weight: 2 },
  // Keys of A that may not read results (write) or may only read settings (admin): whatever they get, it is A's.
  { arbitrary: fc.constantFrom<KeyChoice>({ who: 'A', header: (k) => `Bearer ${k.A.writeKey}` }, { who: 'A', header: (k) => `bearer ${k.A.adminKey}` }), weight: 2 },
  {
    arbitrary: fc.constantFrom<KeyChoice>(
      { who: undefined, header: () => undefined },
      { who: undefined, header: () => 'Bearer' },
      { who: undefined, header: () => `Bearer ${generateKey('read')}` },
      { who: undefined, header: (k) => `Bearer ${k.A.readKey}x` },
      { who: undefined, header: (k) => `Basic ${Buffer.from(`a:${k.A.readKey}`).toString('base64')}` },
      { who: undefined, header: (k) => `Bearer ${k.A.readKey} ${k.B.readKey}` },
      { who: undefined, header: () => "Bearer tly_r_' OR '1'='1" },
      { who: undefined, header: () => `Bearer tly_r_${'a'.repeat(3_000)}` },
      { who: undefined, header: () => 'Bearer tly_r_caf\u00e9' },
    ),
    weight: 3,
  },
);

interface Request {
  method: string;
  url: string;
  key: KeyChoice;
  payload?: string;
  contentType?: string;
}

const families: Record<string, fc.Arbitrary<Omit<Request, 'key'>>> = {
  'results, time series and the experiment list': fc.oneof(
    fc.tuple(experimentId, fc.constantFrom('results', 'timeseries'), queryString).map(([id, what, q]) => ({ method: 'GET', url: `/v1/experiments/${id}/${what}${q}` })),
    queryString.map((q) => ({ method: 'GET', url: `/v1/experiments${q}` })),
  ),
  exports: fc.oneof(
    fc.tuple(experimentId, queryString).map(([id, q]) => ({ method: 'GET', url: `/v1/experiments/${id}/export${q}` })),
    queryString.map((q) => ({ method: 'GET', url: `/v1/export${q}` })),
  ),
  'experiment settings': fc.oneof(
    fc.tuple(experimentId, queryString).map(([id, q]) => ({ method: 'GET', url: `/v1/experiments/${id}/settings${q}` })),
    fc
      .tuple(
        experimentId,
        fc.oneof(
          fc.record(
            {
              name: fc.oneof(hostileText, fc.constant(null), fc.integer()),
              control: fc.oneof(fc.constantFrom('control', 'treatment'), hostileText, fc.constant(null)),
              weights: fc.oneof(
                fc.dictionary(fc.oneof(fc.constantFrom('control', 'treatment', '__proto__', 'constructor'), hostileText), fc.oneof(fc.double(), fc.integer(), fc.string())),
                fc.constant(null),
                fc.constant([]),
              ),
              extra: fc.anything(),
            },
            { requiredKeys: [] },
          ).map((body) => JSON.stringify(body)),
          fc.constantFrom('{"__proto__":{"control":"x"}}', '{"weights":{"constructor":{"prototype":{"x":1}}}}', '{', '', 'null', '[]', '"x"'),
          fc.string({ unit: 'binary', maxLength: 200 }),
        ),
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined),
      )
      .map(([id, payload, contentType]) => ({ method: 'PUT', url: `/v1/experiments/${id}/settings`, payload, contentType })),
  ),
  'other paths and methods': fc.oneof(
    fc.tuple(
      fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      fc.oneof(
        fc.constantFrom(
          '/v1', '/v1/', '/v1/experiments/', '//v1/experiments', '/v1//experiments', '/v1/experiments/checkout', '/v1/experiments/checkout/results/extra',
          '/v1/experiments/checkout/../../v1/experiments', '/V1/EXPERIMENTS', '/v1/experiments%2Fcheckout%2Fresults', '/v1/export/', '/experiments',
          '/assets/..%2f..%2fpackage.json', '/assets/results-page.js', '/docs/static/..%2f..%2f..%2fpackage.json', '/openapi.json', '/healthz', '/%',
        ),
        fc.tuple(component(hostileText), queryString).map(([segment, q]) => `/experiments/${segment}${q}`),
        fc.tuple(component(hostileText), component(hostileText)).map(([a, b]) => `/v1/${a}/${b}`),
      ),
    ).map(([method, url]) => ({ method, url })),
  ),
};

// ---------------------------------------------------------------- invariants

const INTERNALS = /\n\s+at |node_modules|\.ts:\d+|syntax error at or near|relation "|violates|pg_catalog|drizzle/i;

async function check(request: Request) {
  const headers: Record<string, string> = {};
  const authorization = request.key.header(keys);
  if (authorization !== undefined) headers.authorization = authorization;
  if (request.contentType !== undefined) headers['content-type'] = request.contentType;
  const response = await app.inject({ method: request.method as 'GET', url: request.url, headers, payload: request.payload });
  const { statusCode: status, body } = response;
  const context = `${request.method} ${request.url.slice(0, 200)} → ${status} ${body.slice(0, 300)}`;

  expect(status, context).toBeLessThan(500);
  expect(body, context).not.toMatch(INTERNALS);
  // Nothing of a project the key is not for: neither token without a key, never the other's with one
  // (a refusal may name the key's own project's variants: "control: … its variants are …").
  const who = request.key.who;
  for (const owner of ['A', 'B'] as const) {
    if (owner !== who) expect(body.includes(TOKEN[owner]), `${context}: holds ${owner}'s data`).toBe(false);
  }
  if (request.method === 'HEAD' || request.method === 'OPTIONS') return;

  if (status >= 400) {
    expect(response.headers['content-type'], context).toMatch(/^application\/json/);
    const answer = response.json();
    expect(answer, context).toMatchObject({ statusCode: status, error: expect.any(String), message: expect.any(String) });
    expect(answer.message.length, context).toBeGreaterThan(10);
    return;
  }
  if (status !== 200 || !request.url.startsWith('/v1/') || request.key.who === undefined) return;
  const path = decodeURIComponentSafe(request.url.split('?')[0]!);
  if (request.key.who === 'A' && path === '/v1/experiments') {
    expect(response.json().experiments.map((e: { experimentId: string }) => e.experimentId).sort(), context).toEqual(A_EXPERIMENTS);
  }
  if (request.key.who === 'A' && path === '/v1/experiments/checkout/results') {
    const sessions = Object.fromEntries(response.json().variants.map((v: { variantKey: string; sessions: number }) => [v.variantKey, v.sessions]));
    expect(sessions, context).toEqual(A_CHECKOUT);
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const request = (family: fc.Arbitrary<Omit<Request, 'key'>>) => fc.tuple(family, keyChoice).map(([r, key]) => ({ ...r, key }));

describe('the query API under thousands of hostile requests', () => {
  for (const [name, family] of Object.entries(families)) {
    it(`never answers 5xx, explains every 4xx, and shows no other project's data: ${name}`, async () => {
      await fc.assert(
        fc.asyncProperty(request(family), check),
        { numRuns: RUNS, seed: SEED },
      );
    }, 120_000);
  }

  it('holds only each project’s own numbers for the experiment both have', async () => {
    for (const who of ['A', 'B'] as const) {
      const response = await app.inject({ url: '/v1/experiments/checkout/results', headers: { authorization: `Bearer ${keys[who].readKey}` } });
      expect(response.statusCode).toBe(200);
      const sessions = Object.fromEntries(response.json().variants.map((v: { variantKey: string; sessions: number }) => [v.variantKey, v.sessions]));
      expect(sessions).toEqual(who === 'A' ? A_CHECKOUT : { [`control-${TOKEN.B}`]: 2, [`treatment-${TOKEN.B}`]: 2 });
    }
    const hidden = await app.inject({ url: '/v1/experiments/b-only/results', headers: { authorization: `Bearer ${keys.A.readKey}` } });
    expect(hidden.statusCode).toBe(404);
  });

  // Postgres cannot hold U+0000 in text and would refuse the query: each must be a 400 that says so.
  describe('a NUL character in a parameter', () => {
    const as = async (key: string, method: 'GET' | 'PUT', url: string, payload?: unknown) => {
      const response = await app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().message).toMatch(/contains a NUL character \(U\+0000\)/);
    };

    for (const route of ['results', 'timeseries', 'export?format=csv', 'settings']) {
      it(`in the experiment id of /${route}`, async () => {
        await as(keys.A.readKey, 'GET', `/v1/experiments/check%00out/${route}`);
      });
    }

    for (const route of ['results', 'timeseries']) {
      it(`in the goal of /${route}`, async () => {
        await as(keys.A.readKey, 'GET', `/v1/experiments/checkout/${route}?goal=pur%00chase`);
      });
    }

    it('in a settings name', async () => {
      await as(keys.A.adminKey, 'PUT', '/v1/experiments/checkout/settings', { name: 'a\u0000b' });
    });

    it('in a settings weight’s variant', async () => {
      await as(keys.A.adminKey, 'PUT', '/v1/experiments/checkout/settings', { weights: { 'con\u0000trol': 1 } });
    });
  });

  it('is still up and answers a valid request', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const response = await app.inject({ url: '/v1/experiments', headers: { authorization: `Bearer ${keys.A.readKey}` } });
    expect(response.statusCode).toBe(200);
  });
});
