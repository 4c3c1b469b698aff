// The layout rules of scripts/check-architecture.ts: the repository keeps
// them, and a tree that breaks each one is caught (so the check can fail).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkErrors, checkImports, checkLinks, checkOutsideRefs, LAYERS, layerOf } from '../../scripts/check-architecture.js';

const repo = join(import.meta.dirname, '..', '..');

describe('the repository', () => {
  test('imports flow one way between layers', () => assert.deepEqual(checkImports(repo), []));
  test('every relative Markdown link names a file of the repository', () => assert.deepEqual(checkLinks(repo), []));
  test('nothing points at the folder beside the checkout', () => assert.deepEqual(checkOutsideRefs(repo), []));
  test('production code throws only WeftErrors', () => assert.deepEqual(checkErrors(repo), []));
});

describe('the checker', () => {
  const root = mkdtempSync(join(tmpdir(), 'weft-arch-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const put = (rel: string, text: string) => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  const sibling = ['..', '..', 'shared', 'x.md'].join('/');
  put('src/model/a.ts', "export const a = 1;\nimport { c } from '../core/c.js';\n");
  put('src/core/c.ts', "import { a } from '../model/a.js';\nexport const c = a;\n");
  put('src/stream/s.ts', "export async function f() {\n  return import('../core/c.js');\n}\n");
  put('src/agent/dataplane/fake/f.ts', "export { plan } from '../../reconcile/p.js';\n");
  put('src/agent/reconcile/p.ts', 'export const plan = 1;\n');
  put('src/agent/reconcile/p.test.ts', "import '../../../test/support/x.js';\nimport '../dataplane/fake/f.js';\n");
  put('src/newthing/n.ts', 'export const n = 1;\nexport class Oops extends Error {}\n// a comment may say new Error(\n');
  put('src/core/e.ts', "export const f = () => {\n  // new Error( in a comment is not a throw\n  throw new TypeError('bad');\n};\n");
  put('src/core/e.test.ts', "throw new Error('tests may');\n");
  put('bench/b.ts', "import '../test/support/x.js';\n");
  put('test/support/x.ts', "import '../../src/core/c.js';\n");
  put('docs/a.md', `[ok](../README.md) [gone](missing.md) [out](${sibling}) [web](https://example.org/)\n`);
  put('README.md', '# r\n');

  const found = (vs: { file: string; line: number; what: string }[]) => vs.map((v) => `${v.file}:${v.line} ${v.what}`);

  test('names each import against the rules, with its file and line', () => {
    const v = found(checkImports(root));
    assert.ok(
      v.some((x) => x.startsWith('src/model/a.ts:2 model imports core')),
      v.join('\n'),
    );
    assert.ok(
      v.some((x) => x.startsWith('src/stream/s.ts:2 stream imports core')),
      'a dynamic import counts',
    );
    assert.ok(
      v.some((x) => x.startsWith('src/agent/dataplane/fake/f.ts:1 agent/dataplane/fake imports agent/reconcile')),
      're-exports count',
    );
    assert.ok(v.some((x) => x.startsWith('src/newthing/n.ts:1 folder src/newthing has no rule')));
    assert.ok(v.some((x) => x.startsWith('bench/b.ts:1 imports ../test/support/x.js')));
    assert.ok(!v.some((x) => x.startsWith('src/core/c.ts')), 'core may import model');
    assert.ok(!v.some((x) => x.includes('.test.ts')), 'tests may import anything inside the repository');
    assert.ok(!v.some((x) => x.startsWith('test/')));
    assert.equal(v.length, 5, v.join('\n'));
  });

  test('errors that are not WeftErrors, in production code only', () => {
    assert.deepEqual(
      checkErrors(root).map((v) => `${v.file}:${v.line}`),
      ['src/core/e.ts:3', 'src/newthing/n.ts:2'],
    );
  });

  test('links that leave the repository or name no file', () => {
    const v = found(checkLinks(root));
    assert.deepEqual(v, [`docs/a.md:1 links missing.md, which does not exist`, `docs/a.md:1 links ${sibling}, outside the repository`]);
    assert.deepEqual(found(checkOutsideRefs(root)), [`docs/a.md:1 points at ${['..', 'shared', ''].join('/')}, which is not part of the repository`]);
  });

  test('layers are the longest folder with a rule', () => {
    assert.equal(layerOf('src/agent/dataplane/linux/guards.ts'), 'agent/dataplane/linux');
    assert.equal(layerOf('src/agent/routing/x/y.ts'), 'agent/routing');
    assert.equal(layerOf('src/agent/names.ts'), 'agent/names');
    assert.equal(layerOf('bench/x.ts'), undefined);
    for (const [layer, allowed] of Object.entries(LAYERS)) for (const a of allowed) assert.ok(LAYERS[a], `${layer} allows ${a}, which has no rule`);
  });
});
