import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { testApp } from './fixture.js';

let database: TestDatabase;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

describe('the results page and its files', () => {
  it.each([
    ['/experiments', /^text\/html/],
    ['/experiments/checkout', /^text\/html/],
    [`/experiments/${encodeURIComponent('ümlaut/ünïcode')}`, /^text\/html/],
    ['/assets/results-page.js', /^text\/javascript/],
    ['/assets/results-page.css', /^text\/css/],
    ['/assets/favicon.svg', /^image\/svg\+xml/],
  ])('serves %s without a key, under a strict Content-Security-Policy', async (url, type) => {
    const response = await app.inject({ url });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(type);
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('has no inline script, style or event handler, which the policy would block', async () => {
    const html = (await app.inject({ url: '/experiments/checkout' })).body;
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/<style/i);
    expect(html).not.toMatch(/\sstyle=/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    // The key field has no name, so a form submitted without the script carries no key.
    expect(html).toMatch(/<input id="read-key" type="password"/);
    expect(html).not.toMatch(/<input[^>]*id="read-key"[^>]*\sname=/);
  });

  it('builds the page with text nodes only: the script never writes HTML', async () => {
    const script = (await app.inject({ url: '/assets/results-page.js' })).body;
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    // The key goes in a header and nowhere else.
    expect(script).toMatch(/authorization: `Bearer \$\{key\}`/);
  });

  it('leaves the JSON API and the docs without the page policy', async () => {
    expect((await app.inject({ url: '/v1/experiments' })).headers['content-security-policy']).toBeUndefined();
    expect((await app.inject({ url: '/docs' })).statusCode).toBe(200);
  });

  it('is not in the OpenAPI document', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths).filter((path) => !path.startsWith('/v1/'))).toEqual([]);
  });
});
