// Installs the workspace's dependencies with the pnpm version the repo pins, using
// a global pnpm when there is one and `npx pnpm@10` otherwise, so that a machine
// with only Node and npm can run `npm run stack` and `npm test`.
import { execFileSync, spawnSync } from 'node:child_process';

const hasPnpm = spawnSync('pnpm', ['--version'], { stdio: 'ignore', shell: process.platform === 'win32' }).status === 0;
const [command, prefix] = hasPnpm ? ['pnpm', []] : ['npx', ['--yes', 'pnpm@10']];
const frozen = process.env.CI ? ['--frozen-lockfile'] : [];
try {
  execFileSync(command, [...prefix, 'install', '--prefer-offline', ...frozen], {
    stdio: ['ignore', 'inherit', 'inherit'],
    shell: process.platform === 'win32',
  });
} catch {
  process.stderr.write('\nInstalling dependencies failed (see above). Tally needs Node 20.19+ and access to the npm registry.\n');
  process.exit(1);
}
