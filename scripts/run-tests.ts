// `npm test`: lint, typecheck, the architecture check, then every suite under node's test runner,
// with a throwaway PostgreSQL cluster so the store contract suite and the
// API suites run on both stores. The cluster is removed however it ends.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startPgCluster } from './pg-cluster.js';

const root = join(import.meta.dirname, '..');
const only = process.argv.slice(2);

function step(name: string, cmd: string, args: string[]) {
  process.stdout.write(`\n== ${name}\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stdout.write(`\n${name} failed\n`);
    process.exit(r.status ?? 1);
  }
}

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

if (only.length === 0) {
  step('lint (biome)', join(root, 'node_modules/.bin/biome'), ['check', '.']);
  step('typecheck (tsc)', join(root, 'node_modules/.bin/tsc'), ['--noEmit']);
  step('typecheck the web console (tsc -p web)', join(root, 'node_modules/.bin/tsc'), ['--noEmit', '-p', 'web']);
  step('architecture (import directions, links)', process.execPath, ['--import', 'tsx', join(root, 'scripts/check-architecture.ts')]);
}

process.stdout.write('\n== PostgreSQL for the store suites\n');
const pg = await startPgCluster({ fsync: false });
process.stdout.write(`started on port ${pg.port}\n`);
const cleanup = () => pg.stop();
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });

const files = only.length > 0 ? only : [...testFiles(join(root, 'src')), ...testFiles(join(root, 'test'))].sort();
process.stdout.write(`\n== tests (${files.length} files)\n`);
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, WEFT_TEST_PG_URL: pg.url },
});
const code: number = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
cleanup();
process.exit(code);
