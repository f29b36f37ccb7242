import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@tally/logger';
import { createFixture, type Fixture, type QueuesResponse } from './fixture.js';

describe('the dashboard on a development machine without credentials', () => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await createFixture();
  });
  afterAll(() => fixture?.cleanup());

  it('serves the board without a login, after a loud warning', async () => {
    const logger = createLogger('dashboard-test');
    const warn = vi.spyOn(logger, 'warn');
    const app = await fixture.build(
      { TALLY_ENV: 'development', DASHBOARD_USER: undefined, DASHBOARD_PASSWORD: undefined },
      { logger },
    );
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/DASHBOARD IS OPEN/));

    const response = await app.inject({ url: '/api/queues' });
    expect(response.statusCode).toBe(200);
    expect(response.json<QueuesResponse>().queues.map((queue) => queue.name)).toContain('ingest');
  });
});
