import type { Database } from '../client.js';

/**
 * A statement built once per database handle. The query API runs its few
 * statements on every request; building one (drizzle) and parsing and planning it
 * (Postgres) cost more than running it. Built with `.prepare(name)`, drizzle
 * renders the SQL once and node-postgres sends it as a named statement, which
 * Postgres parses once per connection (BENCHMARKS.md: "Statements prepared once").
 */
export function oncePerDatabase<S>(build: (db: Database) => S): (db: Database) => S {
  const statements = new WeakMap<Database, S>();
  return (db) => {
    let statement = statements.get(db);
    if (statement === undefined) statements.set(db, (statement = build(db)));
    return statement;
  };
}
