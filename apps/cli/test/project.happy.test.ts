import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findProjectIdByKey } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { lines, tally } from './helpers.js';

describe('tally project', () => {
  let database: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
  });
  afterAll(() => database?.drop());

  it('create --json prints exactly one JSON line with working keys, and nothing else', async () => {
    const result = await tally(['project', 'create', '--name', 'Checkout team', '--json'], env);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(lines(result.stdout)).toHaveLength(1);
    const keys = JSON.parse(result.stdout) as Record<string, string>;
    expect(Object.keys(keys)).toEqual(['projectId', 'writeKey', 'readKey']);
    expect(await findProjectIdByKey(database.db, 'write', keys.writeKey!)).toBe(keys.projectId);
    expect(await findProjectIdByKey(database.db, 'read', keys.readKey!)).toBe(keys.projectId);
    expect(await findProjectIdByKey(database.db, 'read', keys.writeKey!)).toBeUndefined();
  });

  it('create prints the keys once for a person, with a word on keeping them', async () => {
    const result = await tally(['project', 'create', '--name', '  Pricing  '], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Created project "Pricing" \([0-9a-f-]{36}\)/);
    const writeKey = /tly_w_[\w-]+/.exec(result.stdout)?.[0];
    const readKey = /tly_r_[\w-]+/.exec(result.stdout)?.[0];
    expect(writeKey && (await findProjectIdByKey(database.db, 'write', writeKey))).toBeTruthy();
    expect(readKey && (await findProjectIdByKey(database.db, 'read', readKey))).toBeTruthy();
    expect(result.stdout).toMatch(/cannot be shown again/);
  });

  it('list shows every project, oldest first, as a table or as JSON, without keys', async () => {
    const json = await tally(['project', 'list', '--json'], env);
    expect(json.code).toBe(0);
    expect(lines(json.stdout)).toHaveLength(1);
    const projects = JSON.parse(json.stdout) as { projectId: string; name: string; createdAt: string }[];
    expect(projects.map((p) => p.name)).toEqual(['Checkout team', 'Pricing']);
    expect(Date.parse(projects[0]!.createdAt)).not.toBeNaN();

    const table = await tally(['project', 'list'], env);
    expect(table.code).toBe(0);
    expect(lines(table.stdout)).toHaveLength(3);
    expect(lines(table.stdout)[1]).toContain(projects[0]!.projectId);
    expect(table.stdout).toContain('Pricing');
    expect(table.stdout).not.toMatch(/tly_[wr]_/);
  });

  it('rotate-key replaces one key: the new one works, the old one stops, the other kind is untouched', async () => {
    const created = JSON.parse((await tally(['project', 'create', '--name', 'Rotation', '--json'], env)).stdout) as Record<string, string>;
    const result = await tally(['project', 'rotate-key', '--project', created.projectId!, '--kind', 'write', '--json'], env);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(lines(result.stdout)).toHaveLength(1);
    const rotated = JSON.parse(result.stdout) as { projectId: string; kind: string; key: string };
    expect(rotated).toMatchObject({ projectId: created.projectId, kind: 'write' });
    expect(rotated.key).toMatch(/^tly_w_/);
    expect(await findProjectIdByKey(database.db, 'write', rotated.key)).toBe(created.projectId);
    expect(await findProjectIdByKey(database.db, 'write', created.writeKey!)).toBeUndefined();
    expect(await findProjectIdByKey(database.db, 'read', created.readKey!)).toBe(created.projectId);

    const read = await tally(['project', 'rotate-key', '--project', created.projectId!, '--kind', 'read'], env);
    expect(read.code).toBe(0);
    const readKey = /tly_r_[\w-]+/.exec(read.stdout)?.[0];
    expect(await findProjectIdByKey(database.db, 'read', readKey!)).toBe(created.projectId);
    expect(await findProjectIdByKey(database.db, 'read', created.readKey!)).toBeUndefined();
    expect(read.stdout).toMatch(/old read key stopped working/);
  });
});

describe('tally project list on an empty database', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database?.drop());

  it('says how to create the first project', async () => {
    const result = await tally(['project', 'list'], { DATABASE_URL: database.url });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/No projects yet.*project create --name/);
    expect((await tally(['project', 'list', '--json'], { DATABASE_URL: database.url })).stdout).toBe('[]\n');
  });
});
