// The repository's layout rules, checked by `npm test`: imports flow one way
// between layers (docs/architecture.md draws them), production code never
// imports test/ and throws only WeftErrors, and no import or Markdown link
// points outside the repository.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * What each layer may import besides itself. A file's layer is the longest
 * prefix below that names one (`src/agent/dataplane/linux/x.ts` is
 * `agent/dataplane/linux`); a layer not listed here is an error, so a new
 * folder gets a rule when it is made.
 */
export const LAYERS: Record<string, readonly string[]> = {
  model: [],
  sys: ['model'],
  store: ['model', 'sys'],
  core: ['store', 'model', 'sys'],
  // Below core's use cases: the index and the wire protocols read the store, never core, api or server.
  mapping: ['store', 'model', 'sys'],
  stream: ['mapping', 'store', 'model', 'sys'],
  api: ['core', 'model', 'sys'],
  // The composition root: wires api, core, the store, the index and the stream together.
  server: ['api', 'core', 'store', 'mapping', 'stream', 'model', 'sys'],
  // The agent: agent -> reconcile -> dataplane <- linux | fake; agent -> vm.
  'agent/names': ['model'],
  'agent/state': ['stream', 'model'],
  'agent/dataplane': ['agent/names', 'model'],
  'agent/dataplane/linux': ['agent/dataplane', 'agent/names', 'model', 'sys'],
  'agent/dataplane/fake': ['agent/dataplane', 'agent/names', 'model'],
  'agent/reconcile': ['agent/dataplane', 'agent/state', 'agent/names', 'model'],
  'agent/routing': ['agent/dataplane', 'agent/state', 'agent/names', 'stream', 'model', 'sys'],
  // The hypervisor's side of an instance: its libvirt domain (virsh, or a fake) and its files.
  'agent/vm': ['model', 'sys'],
  agent: [
    'agent/names',
    'agent/state',
    'agent/reconcile',
    'agent/dataplane',
    'agent/dataplane/linux',
    'agent/dataplane/fake',
    'agent/routing',
    'agent/vm',
    'stream',
    'mapping',
    'model',
    'sys',
  ],
  // Fabric routers' side of `weft fabric`: check, diff and apply a rendered config with the platform's tools.
  fabric: ['agent/routing', 'model', 'sys'],
  // The lab drives a cloud through the API client and the binaries, like an operator.
  lab: ['cli/client', 'agent/names', 'model', 'sys'],
  'cli/client': ['model'],
  // The weft binary: every command's entry point (stream: `changes --follow` retries on the agents' backoff).
  cli: ['cli/client', 'lab', 'server', 'agent', 'fabric', 'stream', 'store', 'core', 'model', 'sys'],
};

/** Files that are a layer of their own (a small vocabulary others share). */
const FILE_LAYERS: Record<string, string> = {
  'src/agent/names.ts': 'agent/names',
  'src/cli/client.ts': 'cli/client',
};

export interface Violation {
  file: string;
  line: number;
  what: string;
}

const isTest = (rel: string) => rel.endsWith('.test.ts') || rel.startsWith('test/');

/** The layer of a repository path under src/, or undefined for a path outside src/. */
export function layerOf(rel: string): string | undefined {
  if (FILE_LAYERS[rel]) return FILE_LAYERS[rel];
  if (!rel.startsWith('src/')) return undefined;
  const parts = dirname(rel).split('/').slice(1);
  for (let n = parts.length; n > 0; n--) {
    const name = parts.slice(0, n).join('/');
    if (LAYERS[name]) return name;
  }
  return parts.join('/') || '.';
}

function walk(root: string, dir: string, ext: string, out: string[] = []): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return out;
  for (const e of readdirSync(abs)) {
    if (e === 'node_modules' || e.startsWith('.')) continue;
    const p = join(dir, e);
    if (statSync(join(root, p)).isDirectory()) walk(root, p, ext, out);
    else if (e.endsWith(ext)) out.push(p.split(sep).join('/'));
  }
  return out;
}

/** Every relative import of a source file (static, re-export, dynamic), with its line. */
function importsOf(text: string): { spec: string; line: number }[] {
  const info = ts.preProcessFile(text, true, true);
  const lineOf = (pos: number) => text.slice(0, pos).split('\n').length;
  return info.importedFiles.filter((f) => f.fileName.startsWith('.')).map((f) => ({ spec: f.fileName, line: lineOf(f.pos) }));
}

/** Import rules over the TypeScript under src/, test/, bench/ and scripts/ of `root`. */
export function checkImports(root: string): Violation[] {
  const out: Violation[] = [];
  const files = ['src', 'test', 'bench', 'scripts'].flatMap((d) => walk(root, d, '.ts'));
  for (const file of files) {
    const from = layerOf(file);
    if (from !== undefined && !LAYERS[from] && !isTest(file)) {
      out.push({ file, line: 1, what: `folder src/${from} has no rule in scripts/check-architecture.ts LAYERS: add one` });
    }
    for (const { spec, line } of importsOf(readFileSync(join(root, file), 'utf8'))) {
      const target = relative(root, resolve(root, dirname(file), spec.replace(/\.js$/, '.ts')))
        .split(sep)
        .join('/');
      if (target.startsWith('..')) {
        out.push({ file, line, what: `imports ${spec}, outside the repository` });
        continue;
      }
      if (isTest(file)) continue;
      if (target.startsWith('test/')) {
        out.push({ file, line, what: `imports ${spec}: production code, benchmarks and scripts never import test/` });
        continue;
      }
      const to = layerOf(target);
      if (from === undefined || to === undefined || to === from || !LAYERS[from]) continue;
      if (!LAYERS[from].includes(to)) {
        out.push({ file, line, what: `${from} imports ${to} (${spec}); ${from} may import only ${LAYERS[from].join(', ') || 'nothing else'}` });
      }
    }
  }
  return out;
}

/** Relative links in the repository's Markdown must name a file of the repository that exists. */
export function checkLinks(root: string): Violation[] {
  const out: Violation[] = [];
  const docs = ['.', 'docs'].flatMap((d) => (d === '.' ? readdirSync(root).filter((f) => f.endsWith('.md')) : walk(root, d, '.md')));
  for (const file of docs) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n');
    lines.forEach((text, i) => {
      for (const m of text.matchAll(/\]\(([^)\s#]+)(#[^)\s]*)?\)/g)) {
        const link = m[1] as string;
        if (/^[a-z]+:/.test(link)) continue;
        const target = relative(root, resolve(root, dirname(file), link));
        if (target.startsWith('..')) out.push({ file, line: i + 1, what: `links ${link}, outside the repository` });
        else if (!existsSync(join(root, target))) out.push({ file, line: i + 1, what: `links ${link}, which does not exist` });
      }
    });
  }
  return out;
}

// The steering folder beside a checkout; spelled in pieces so this file does not name it itself.
const SIBLING = ['..', 'shared', ''].join('/');

/** Mentions of the folder beside the checkout that steers the project, in any source or document. */
export function checkOutsideRefs(root: string): Violation[] {
  const out: Violation[] = [];
  const files = ['src', 'test', 'bench', 'scripts', 'docs'].flatMap((d) => [...walk(root, d, '.ts'), ...walk(root, d, '.md')]);
  files.push(...readdirSync(root).filter((f) => f.endsWith('.md')));
  for (const file of files) {
    readFileSync(join(root, file), 'utf8')
      .split('\n')
      .forEach((text, i) => {
        if (text.includes(SIBLING)) out.push({ file, line: i + 1, what: `points at ${SIBLING}, which is not part of the repository` });
      });
  }
  return out;
}

/**
 * Every error production code throws is a WeftError (a stable code, and the
 * error it wraps as its cause): no bare Error, SyntaxError, TypeError or
 * RangeError, and no error class of its own outside src/model/errors.ts.
 */
export function checkErrors(root: string): Violation[] {
  const out: Violation[] = [];
  for (const file of walk(root, 'src', '.ts')) {
    if (isTest(file) || file === 'src/model/errors.ts') continue;
    readFileSync(join(root, file), 'utf8')
      .split('\n')
      .forEach((text, i) => {
        const code = text.replace(/\/\/.*$/, '');
        const m = /\bnew (Error|SyntaxError|TypeError|RangeError)\(|\bextends (Error)\b/.exec(code);
        if (m) out.push({ file, line: i + 1, what: `${m[0].trim()}: production code throws WeftError (src/model/errors.ts), with { cause } when it wraps` });
      });
  }
  return out;
}

if (import.meta.filename === process.argv[1]) {
  const root = process.argv[2] ?? join(import.meta.dirname, '..');
  const all = [...checkImports(root), ...checkLinks(root), ...checkOutsideRefs(root), ...checkErrors(root)];
  for (const v of all) process.stdout.write(`${v.file}:${v.line}: ${v.what}\n`);
  process.stdout.write(
    all.length === 0 ? 'architecture: imports flow one way, every link resolves, every error is a WeftError\n' : `architecture: ${all.length} violations\n`,
  );
  process.exit(all.length === 0 ? 0 : 1);
}
