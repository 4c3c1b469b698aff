// The OpenAPI document a live server serves: `redocly lint` finds no error,
// every operation has an id, a summary and the Error body on each 4xx/5xx,
// the generated types (src/cli/api-types.ts) are up to date, and a client
// typed by them type-checks (a wrong error code or field does not) and works.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { API_TYPES, apiTypes } from '../../scripts/gen-client.js';
import { createSite, describe as describeHost, getHost } from '../fixtures/openapi/typed-client.js';
import { ADMIN_SECRET, startTestApi, type TestApi } from '../support/api.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const bin = (name: string) => join(root, 'node_modules/.bin', name);
const FIXTURE = join(root, 'test/fixtures/openapi/typed-client.ts');

type Operation = {
  operationId?: string;
  summary?: string;
  requestBody?: unknown;
  responses: Record<string, { $ref?: string; content?: Record<string, { schema: { $ref?: string } }> }>;
};

/** tsc on these files alone (strict, as the project), answering its exit code and diagnostics. */
async function tsc(files: string[]): Promise<{ code: number; out: string }> {
  const args = [
    '--noEmit',
    '--strict',
    '--target',
    'es2022',
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--skipLibCheck',
    '--types',
    'node',
    ...files,
  ];
  try {
    const r = await run(bin('tsc'), args, { cwd: root, timeout: 120_000 });
    return { code: 0, out: r.stdout };
  } catch (e) {
    const err = e as { code?: number; stdout?: string };
    return { code: err.code ?? 1, out: err.stdout ?? String(e) };
  }
}

describe('OpenAPI', () => {
  let api: TestApi;
  let doc: {
    servers?: unknown[];
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, { properties?: Record<string, { enum?: string[] }> }> };
  };
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-openapi-test-'));
    api = await startTestApi('sqlite');
    doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as typeof doc;
  });
  after(async () => {
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('redocly lint finds no error in the live document', async () => {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    let out = '';
    let code = 0;
    try {
      const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
      const r = await run(bin('redocly'), ['lint', file, '--format=stylish', '--max-problems=200'], { cwd: dir, env, timeout: 120_000 });
      out = r.stdout + r.stderr;
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      code = err.code ?? 1;
      out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    }
    assert.equal(code, 0, `redocly lint:\n${out}`);
    assert.match(out, /valid/i);
    assert.doesNotMatch(out, /\berror\b/i, out);
  });

  test('every operation: an id, a summary, the Error body on every 4xx/5xx, 204 on deletes, 415 where a body is read', () => {
    assert.ok(Array.isArray(doc.servers) && doc.servers.length > 0, 'a servers entry');
    const codes = doc.components.schemas.Error?.properties?.code?.enum ?? [];
    assert.ok(codes.includes('E_INVALID_ARG') && codes.includes('E_UNSUPPORTED_MEDIA_TYPE'), `Error.code enumerates the codes: ${codes}`);
    const ids = new Set<string>();
    let n = 0;
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item)) {
        n++;
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(op.operationId, `${where}: operationId`);
        assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} is unique`);
        ids.add(op.operationId);
        assert.ok(op.summary, `${where}: summary`);
        for (const [status, r] of Object.entries(op.responses))
          if (/^[45]/.test(status))
            assert.equal(r.content?.['application/json']?.schema.$ref, '#/components/schemas/Error', `${where} ${status}: the Error body`);
        if (method === 'delete') assert.ok(op.responses['204'], `${where}: 204`);
        if (op.requestBody) assert.ok(op.responses['415'], `${where}: 415`);
      }
    assert.ok(n >= 40, `the document has the API's operations (${n})`);
  });

  test('src/cli/api-types.ts is what openapi-typescript makes of the live document', async () => {
    const want = await apiTypes(doc);
    assert.ok(readFileSync(API_TYPES, 'utf8') === want, 'src/cli/api-types.ts is stale: run npm run gen:client');
  });

  test('a client typed by the generated types type-checks, and a wrong code or field does not', async () => {
    const ok = await tsc([FIXTURE]);
    assert.equal(ok.code, 0, `tsc on the typed client:\n${ok.out}`);
    const bad = join(dir, 'misuse.ts');
    writeFileSync(
      bad,
      `import { getHost } from ${JSON.stringify(FIXTURE.replace(/\.ts$/, '.js'))};
const a = await getHost('http://x', 't', 'hv1');
if (!a.ok && a.error.code === 'E_NO_SUCH_CODE') console.log('never');
if (a.ok) console.log(a.body.noSuchField);
export {};
`,
    );
    const r = await tsc([bad]);
    assert.notEqual(r.code, 0, 'tsc refuses the misuse');
    assert.match(r.out, /E_NO_SUCH_CODE/, r.out);
    assert.match(r.out, /noSuchField/, r.out);
  });

  test('the typed client against the live server: a typed body, then a typed error', async () => {
    const site = await createSite(api.url, ADMIN_SECRET, { name: 'typed1', underlayPool: '192.0.2.0/24' });
    assert.ok(site.ok && site.status === 201 && site.body.name === 'typed1');
    const bad = await createSite(api.url, ADMIN_SECRET, { name: 'typed2', underlayPool: 'nope' });
    assert.ok(!bad.ok && bad.status === 400 && bad.error.code === 'E_INVALID_ARG' && bad.error.field === 'underlayPool', JSON.stringify(bad));
    const missing = await getHost(api.url, ADMIN_SECRET, 'nope');
    assert.equal(missing.status, 404);
    assert.match(describeHost(missing), /^no such host: /);
  });
});
