import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFixture, post, validEvents, type Fixture, type IngestApp } from './fixture.js';

const DAY = 86_400_000;
const RETENTION = /is more than 30 days in the past; events older than the retention period are not kept$/;

describe('POST /v1/batch with RETENTION_DAYS set refuses each event older than the retention', () => {
  let fixture: Fixture;
  let app: IngestApp;
  let keepForever: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, RETENTION_DAYS: 30 });
    keepForever = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix });
  });
  afterAll(() => fixture?.cleanup());
  beforeEach(() => fixture.clearJobs());

  const queuedEventIds = async () =>
    (await Promise.all((await fixture.jobs()).map(fixture.batchOf))).flatMap((batch) => batch.events.map((event) => event.eventId));

  it('accepts the rest of the batch and names the too-old event by index, in the same errors list', async () => {
    const [exposure, pageview, conversion] = validEvents();
    const old = { ...pageview!, timestamp: Date.now() - 31 * DAY };
    const response = await post(app, fixture, { events: [exposure, old, conversion, { ...conversion!, sessionId: undefined }] });

    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({
      accepted: 2,
      rejected: [
        { index: 1, errors: [expect.stringMatching(RETENTION)] },
        { index: 3, errors: ['sessionId: is required'] },
      ],
    });
    expect(response.json().rejected[0].errors[0]).toContain(new Date(old.timestamp).toISOString());
    expect(await queuedEventIds()).toEqual([exposure!.eventId, conversion!.eventId]);
  });

  it('accepts an event just inside the retention', async () => {
    const response = await post(app, fixture, { events: validEvents(Date.now() - 29 * DAY) });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ accepted: 3, rejected: [] });
  });

  it('refuses a client whose clock is behind by more than the retention, even when sentAt corrects it', async () => {
    const clientNow = Date.now() - 40 * DAY;
    const response = await post(app, fixture, { sentAt: clientNow, events: validEvents(clientNow - 1_000) });
    expect(response.statusCode).toBe(400);
    expect(response.json().rejected).toEqual(
      [0, 1, 2].map((index) => ({ index, errors: [expect.stringMatching(/as sent \(before clock-skew correction\) is more than 30 days/)] })),
    );
    expect(await queuedEventIds()).toEqual([]);
  });

  it('answers 400 when every event is too old, queueing nothing', async () => {
    const response = await post(app, fixture, { events: validEvents(Date.now() - 365 * DAY) });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ accepted: 0, message: /None of the 3 events is valid/ });
    expect(response.json().rejected.map((r: { errors: string[] }) => r.errors)).toEqual([0, 1, 2].map(() => [expect.stringMatching(RETENTION)]));
    expect(await queuedEventIds()).toEqual([]);
  });

  it('keeps accepting events of any age when RETENTION_DAYS is unset', async () => {
    const response = await post(keepForever, fixture, { events: validEvents(Date.now() - 3_650 * DAY) });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ accepted: 3, rejected: [] });
  });
});
