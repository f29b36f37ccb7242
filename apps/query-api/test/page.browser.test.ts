import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { StoredEvent } from '@tally/contracts';
import { createProject, insertEvents, rotateKey, runRollup, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { conversion, exposure, pageview, testApp } from './fixture.js';

/**
 * The results page in real headless Chromium (Debian's, driven by playwright-core)
 * against the real app on real Postgres: the page must show exactly the API's
 * numbers, keep the read key out of every URL, and run under its CSP without a
 * single console error (a blocked script or style would be one).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../tests/e2e/artifacts/', import.meta.url));
const HOUR = 3_600;

let database: TestDatabase;
let keys: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;
let base: string;
let browser: Browser;

/**
 * What the `page.evaluate` callbacks below use of the browser. They run in the
 * page, not in Node; the repository compiles without the DOM library, so these
 * few globals are typed here (types only: nothing of this exists at run time).
 */
interface InPage {
  sessionStorage: { getItem: (key: string) => string | null };
  document: { querySelectorAll: (selector: string) => Iterable<{ attributes: Iterable<{ value: string }> }> };
}
const storedKey = (page: Page) => page.evaluate(() => (globalThis as unknown as InPage).sessionStorage.getItem('tally.readKey'));

/** A small seeded generator: the same sessions convert on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 4_294_967_296;
  };
}

/** `sessions` sessions first exposed over 48 hours, converting (goal purchase) with probability `rate`. */
function variant(experimentId: string, variantKey: string, sessions: number, rate: number, seed: number): StoredEvent[] {
  const next = random(seed);
  const events: StoredEvent[] = [];
  for (let i = 0; i < sessions; i++) {
    const sessionId = `${experimentId}/${variantKey}/${i}`;
    const at = Math.floor(next() * 48 * HOUR);
    events.push(exposure(sessionId, at, experimentId, variantKey), pageview(sessionId, at + 5));
    if (next() < rate) events.push(conversion(sessionId, at + 60 + Math.floor(next() * HOUR), 'purchase'));
  }
  return events;
}

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'browser');
  const adminKey = (await rotateKey(database.db, keys.projectId, 'admin'))!;
  const mixed = Array.from({ length: 20 }, (_, i) => [
    exposure(`mixed-${i}`, i * 60, 'checkout-button', 'control'),
    exposure(`mixed-${i}`, i * 60 + 30, 'checkout-button', 'treatment'),
  ]).flat();
  await insertEvents(database.db, keys.projectId, Date.now(), [
    ...variant('checkout-button', 'control', 1_500, 0.08, 1),
    ...variant('checkout-button', 'treatment', 1_500, 0.11, 2),
    ...mixed,
    // 1000 against 1200 where equal shares are configured: a sample ratio mismatch.
    ...variant('pricing', 'a', 1_000, 0.05, 3),
    ...variant('pricing', 'b', 1_200, 0.05, 4),
  ]);
  await runRollup(database.db);

  app = await testApp(database.db);
  const put = (experimentId: string, payload: object) =>
    app.inject({ method: 'PUT', url: `/v1/experiments/${experimentId}/settings`, headers: { authorization: `Bearer ${adminKey}` }, payload });
  expect((await put('checkout-button', { name: 'Checkout button colour', control: 'control', weights: { control: 1, treatment: 1 } })).statusCode).toBe(200);
  expect((await put('pricing', { control: 'a', weights: { a: 0.5, b: 0.5 } })).statusCode).toBe(200);

  base = await app.listen({ host: '127.0.0.1', port: 0 });
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's with \`apt-get install -y chromium\`.`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking'],
  });
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await database?.drop();
});

async function api(path: string) {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${keys.readKey}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, any>;
}

/** A fresh tab that records every request and every console error. */
async function openPage(): Promise<{ page: Page; requests: { url: string; authorization: string | undefined }[]; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const requests: { url: string; authorization: string | undefined }[] = [];
  const problems: string[] = [];
  page.on('request', (request) => requests.push({ url: request.url(), authorization: request.headers().authorization }));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return { page, requests, problems };
}

async function signIn(page: Page, key: string) {
  await page.locator('#read-key').waitFor({ state: 'visible' });
  await page.fill('#read-key', key);
  await page.click('#key-form button[type=submit]');
}

/** The number a cell shows, read back from its text ("1,500" → 1500, "8.13%" → 0.0813, "+2.7 pp" → 0.027). */
function shown(text: string): number {
  const number = Number(text.replace(/[,+\s]|pp$/g, '').replace(/%$/, ''));
  return /%$|pp$/.test(text.trim()) ? number / 100 : number;
}

describe('the results page in headless Chromium', () => {
  it('asks for the read key, then shows exactly the numbers the API gives, without the key in any URL', async () => {
    const { page, requests, problems } = await openPage();
    await page.goto(`${base}/experiments/checkout-button?goal=purchase`);
    await signIn(page, keys.readKey);
    await page.locator('#variants tbody tr[data-variant]').nth(1).waitFor();
    await page.locator('#chart g.series').nth(1).waitFor();

    const results = await api('/v1/experiments/checkout-button/results?goal=purchase');
    expect(await page.locator('#title').textContent()).toBe('Checkout button colour');
    expect(await page.locator('#variants tbody tr[data-variant]').count()).toBe(results.variants.length);

    for (const v of results.variants) {
      const row = page.locator(`#variants tbody tr[data-variant="${v.variantKey}"]`);
      const cell = (field: string) => row.locator(`td[data-field="${field}"]`);
      const exact = async (field: string, value: number | null) => {
        // The cell keeps the API's number to the last digit, and shows it rounded.
        expect(await cell(field).getAttribute('data-value')).toBe(value === null ? '' : String(value));
      };
      await exact('sessions', v.sessions);
      await exact('convertedSessions', v.convertedSessions);
      await exact('conversionRate', v.conversionRate);
      expect(shown((await cell('sessions').textContent())!)).toBe(v.sessions);
      expect(shown((await cell('convertedSessions').textContent())!)).toBe(v.convertedSessions);
      expect(shown((await cell('conversionRate').textContent())!)).toBeCloseTo(v.conversionRate, 4);

      const c = v.comparison;
      if (c === null) {
        expect(v.variantKey).toBe(results.baseline.variantKey);
        await exact('relativeLift', null);
        continue;
      }
      await exact('absoluteLift', c.absoluteLift.value);
      await exact('relativeLift', c.relativeLift.value);
      await exact('pValue', c.relativeLift.pValue);
      await exact('chanceToWin', c.bayesian.chanceToWin);
      expect(await cell('relativeLift').getAttribute('data-ci-lower')).toBe(String(c.relativeLift.ci.lower));
      expect(await cell('relativeLift').getAttribute('data-ci-upper')).toBe(String(c.relativeLift.ci.upper));
      expect(shown((await cell('absoluteLift').textContent())!)).toBeCloseTo(c.absoluteLift.value, 4);
      const liftText = (await cell('relativeLift').locator('.lift-text').textContent())!;
      const [value, lower, upper] = [...liftText.matchAll(/[+-]?\d+(\.\d+)?%/g)].map((m) => shown(m[0]));
      expect(value).toBeCloseTo(c.relativeLift.value, 3);
      expect(lower).toBeCloseTo(c.relativeLift.ci.lower, 3);
      expect(upper).toBeCloseTo(c.relativeLift.ci.upper, 3);
      expect(shown((await cell('pValue').textContent())!)).toBeCloseTo(c.relativeLift.pValue, 4);
      expect(shown((await cell('chanceToWin').textContent())!)).toBeCloseTo(c.bayesian.chanceToWin, 3);
      expect(await cell('decision').getAttribute('data-value')).toBe(c.decision);
      expect(await cell('decision').locator('.reason').textContent()).toBe(c.decisionReason);
      // The interval bar is drawn for the variant.
      expect(await cell('relativeLift').locator('svg rect.interval-bar').count()).toBe(1);
    }

    // The chart ends, for each variant, at the rate the table shows: the last cohort's running total is the result.
    for (const v of results.variants) {
      const series = page.locator(`#chart g.series[data-variant="${v.variantKey}"]`);
      expect(Number(await series.getAttribute('data-last-rate'))).toBe(v.conversionRate);
      expect(await series.locator('circle').count()).toBeGreaterThan(10);
    }

    // 20 of 3,020 exposed sessions saw both variants: a note, not a warning; and no SRM warning here.
    expect(results.multipleExposure).toMatchObject({ excludedSessions: 20, flagged: false });
    expect(await page.locator('#multiple-exposure').textContent()).toContain('20 of 3,020 exposed sessions');
    expect(results.srm.flagged).toBe(false);
    expect(await page.locator('#srm-warning').count()).toBe(0);
    expect(await page.locator('a[href="/docs"]').count()).toBe(1);

    // The key: in the Authorization header of every API call, in no URL, link, form or attribute.
    expect(page.url()).toBe(`${base}/experiments/checkout-button?goal=purchase`);
    const apiCalls = requests.filter((r) => new URL(r.url).pathname.startsWith('/v1/'));
    expect(apiCalls.length).toBeGreaterThanOrEqual(3);
    for (const call of apiCalls) expect(call.authorization).toBe(`Bearer ${keys.readKey}`);
    for (const request of requests) expect(request.url).not.toContain(keys.readKey);
    const attributes = await page.evaluate(() =>
      [...(globalThis as unknown as InPage).document.querySelectorAll('*')].flatMap((node) =>
        [...node.attributes].map((attribute) => attribute.value),
      ),
    );
    expect(attributes.filter((value) => value.includes(keys.readKey))).toEqual([]);
    expect(await page.content()).not.toContain(keys.readKey);
    expect(await storedKey(page)).toBe(keys.readKey);
    expect(await page.locator('#read-key').inputValue()).toBe('');

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}results-page.png`, fullPage: true });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('asks for the key once per tab, warns of a sample ratio mismatch, and lists the experiments', async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    const { page, problems } = await openPage();
    await page.goto(`${base}/experiments`);
    await signIn(page, keys.readKey);
    await page.locator('#experiments tbody tr[data-experiment="pricing"]').waitFor();
    const list = await api('/v1/experiments');
    expect(await page.locator('#experiments tbody tr[data-experiment]').count()).toBe(list.experiments.length);

    // Following a link keeps the key in the tab: no second prompt.
    await page.click('#experiments a[href="/experiments/pricing"]');
    await page.locator('#srm-warning').waitFor();
    expect(await page.locator('#key-section').isHidden()).toBe(true);
    const { srm } = await api('/v1/experiments/pricing/results');
    expect(srm.flagged).toBe(true);
    const warning = (await page.locator('#srm-warning').textContent())!;
    expect(warning).toMatch(/^Sample ratio mismatch\. The sessions are not split as the configured weights say/);
    expect(warning).toContain('a: 45.5% of sessions, expected 50.0%');
    await page.screenshot({ path: `${ARTIFACTS}results-page-srm.png`, fullPage: true });

    // Choosing another control in the page changes the comparison, and the page's URL says so (never the key).
    await page.selectOption('#opt-control', 'b');
    await page.locator('#variants tbody tr[data-variant="a"] td[data-field="decision"] .badge').waitFor();
    expect(page.url()).toBe(`${base}/experiments/pricing?control=b`);
    const againstB = await api('/v1/experiments/pricing/results?control=b');
    const a = againstB.variants.find((v: { variantKey: string }) => v.variantKey === 'a');
    expect(await page.locator('tr[data-variant="a"] td[data-field="relativeLift"]').getAttribute('data-value')).toBe(
      String(a.comparison.relativeLift.value),
    );

    // Forgetting the key asks for it again.
    await page.click('#forget-key');
    await page.locator('#key-section').waitFor();
    expect(await storedKey(page)).toBeNull();
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('refuses a wrong key in the page, and says why', async () => {
    const { page } = await openPage();
    await page.goto(`${base}/experiments/checkout-button`);
    await signIn(page, keys.writeKey);
    await page.locator('#key-error').waitFor();
    expect(await page.locator('#key-error').textContent()).toMatch(/write key.*needs the project's read key/);
    expect(await storedKey(page)).toBeNull();
    await page.context().close();
  });
});
