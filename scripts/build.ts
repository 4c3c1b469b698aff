// `npm run build`: src/ as plain JavaScript in dist/, so that bin/weft runs
// `weft agent` without a TypeScript loader beside it (tsx's loader thread is
// some 30 MB of the agent's RSS; docs/dataplane.md, "Memory"), and the web
// console's bundle (web/, scripts/build-web.ts) beside it in web/. Each build
// goes to a directory of its own and dist/current is switched to it at the
// end, so a running process never reads a half-written build.
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as esbuild from 'esbuild';
import { buildWeb } from './build-web.js';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (e.endsWith('.ts') && !e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const id = `build-${Date.now().toString(36)}-${process.pid}`;
const out = join(dist, id);
mkdirSync(out, { recursive: true });
// Written first: a source saved while the build runs is newer than it, and bin/weft then takes the build as stale.
writeFileSync(join(out, 'BUILT'), `${new Date().toISOString()}\n`);
const entryPoints = sources(join(root, 'src'));
await esbuild.build({
  entryPoints,
  outdir: out,
  outbase: join(root, 'src'),
  format: 'esm',
  platform: 'node',
  target: 'node20',
  tsconfig: join(root, 'tsconfig.json'),
  // As tsx runs the sources: function and class names stay.
  keepNames: true,
  logLevel: 'warning',
});
const web = await buildWeb(join(out, 'web'));
const link = join(dist, `.current-${process.pid}`);
symlinkSync(id, link);
renameSync(link, join(dist, 'current'));
// Builds before the previous one go; that one stays for processes that may still load from it.
const builds = readdirSync(dist)
  .filter((e) => e.startsWith('build-') && e !== id)
  .sort((a, b) => statSync(join(dist, b)).mtimeMs - statSync(join(dist, a)).mtimeMs);
for (const old of builds.slice(1)) rmSync(join(dist, old), { recursive: true, force: true });
process.stdout.write(`built ${entryPoints.length} files and the web console (${web.length} files) into ${relative(root, out)} (dist/current)\n`);
