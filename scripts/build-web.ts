// The web console's bundle (web/ -> one script, one stylesheet, index.html),
// written by `npm run build` beside the compiled server (dist/current/web),
// so the Debian package carries it. No CDN: Preact and uPlot are bundled in.
// Asset names carry their content hash; index.html, which names them, is
// revalidated by the browser on every load (src/api/ui.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as esbuild from 'esbuild';

const root = join(import.meta.dirname, '..');

/** Builds the console into `outDir` (created); returns the files written. */
export async function buildWeb(outDir: string): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const r = await esbuild.build({
    entryPoints: { app: join(root, 'web', 'main.tsx') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    entryNames: '[name]-[hash]',
    minify: true,
    sourcemap: false,
    metafile: true,
    tsconfig: join(root, 'web', 'tsconfig.json'),
    logLevel: 'warning',
    legalComments: 'none',
  });
  const outputs = Object.keys(r.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`the web build wrote no script or stylesheet: ${outputs.join(', ')}`);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Weft console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${css}">
<script type="module" src="${js}"></script>
</head>
<body>
<noscript>The Weft console needs JavaScript; the weft CLI does everything it does.</noscript>
<div id="app"></div>
</body>
</html>
`;
  writeFileSync(join(outDir, 'index.html'), html);
  return [...outputs, 'index.html'];
}

if (process.argv[1] === import.meta.filename) {
  const out = process.argv[2] ?? join(root, 'dist', 'web');
  const files = await buildWeb(out);
  process.stdout.write(`built the web console into ${out}: ${files.join(', ')}\n`);
}
