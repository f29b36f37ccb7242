/**
 * `npm run build`: bundles each app into `apps/<app>/dist/main.js`, to run with
 * plain `node` in production. Running the TypeScript sources through tsx costs
 * every app a loader (its process starts about 50 MB larger) and a second, parent
 * process of about 50 MB, as measured in BENCHMARKS.md.
 *
 * Tally's own packages are bundled (they are TypeScript sources); every other
 * package stays an import from node_modules, as installed.
 *
 * Two files are read at run time relative to the module that reads them, and the
 * layout keeps both right in a bundle: `apps/<app>/dist/main.js` is as deep as
 * `packages/db/src/migrate.ts` (three levels up is the repository, where
 * `drizzle/` is), and `apps/query-api/src/page-files.ts` is as deep as
 * `apps/query-api/dist/main.js` (one level up is the app, where `page/` is).
 */
import { build } from 'esbuild';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const APPS = ['ingest-api', 'worker', 'query-api', 'dashboard', 'cli'];

const SKIP = Symbol('resolving');

/**
 * Other packages stay imports of their files as installed, written relative to
 * the bundle: pnpm gives each package only its own declared dependencies, so a
 * package a bundled `@tally/*` package imports must be found from where that
 * package is, not from the app's folder. The bundles therefore belong to this
 * installation: build again after `pnpm install`.
 */
const keepPackagesExternal = (outdir) => ({
  name: 'keep-packages-external',
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.path.startsWith('@tally/') || args.pluginData === SKIP) return undefined;
      const found = await builder.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: SKIP });
      if (found.errors.length > 0) return { errors: found.errors };
      if (found.external) return { path: args.path, external: true };
      return { path: `./${relative(outdir, found.path).split(sep).join('/')}`, external: true };
    });
  },
});

const started = Date.now();
await Promise.all(
  APPS.map((app) =>
    build({
      entryPoints: [join(root, 'apps', app, 'src', 'main.ts')],
      outfile: join(root, 'apps', app, 'dist', 'main.js'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: true,
      logLevel: 'warning',
      plugins: [keepPackagesExternal(join(root, 'apps', app, 'dist'))],
    }),
  ),
);
process.stderr.write(`built ${APPS.map((app) => `apps/${app}/dist/main.js`).join(', ')} in ${Date.now() - started} ms\n`);
