// Hostile HTTP against a real API server: every error it answers, Fastify's
// and Node's own included, is {code, message, field?} with a stable code whose
// status is the one in src/api/errors.ts. Raw bytes over a socket, so the
// test, not an HTTP client, decides what is sent.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { answerFor, BODY_LIMIT, STATUS } from '../../src/api/errors.js';
import { show } from '../../src/model/errors.js';
import { ADMIN_SECRET, startTestApi, type TestApi } from '../support/api.js';
import { DIALECTS } from '../support/stores.js';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `bytes` to the server and reads the first response (the server closes after it: `Connection: close`). */
export function rawHttp(port: number, bytes: string | Buffer, o: { halfClose?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {}); // a reset after the answer is the server closing; the answer is what counts
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text);
      if (!m) return reject(new Error(`no HTTP response in ${JSON.stringify(text.slice(0, 200))}`));
      const headers: Record<string, string> = {};
      for (const line of (m[2] as string).split('\r\n')) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let body = m[3] as string;
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(m[1]), headers, body });
    });
    s.write(bytes, () => {
      if (o.halfClose) s.end();
    });
  });
}

function dechunk(s: string): string {
  let out = '';
  for (let i = 0; ; ) {
    const eol = s.indexOf('\r\n', i);
    const n = Number.parseInt(s.slice(i, eol), 16);
    if (!(n > 0)) return out;
    out += s.slice(eol + 2, eol + 2 + n);
    i = eol + 2 + n + 2;
  }
}

const AUTH = `Authorization: Bearer ${ADMIN_SECRET}\r\n`;

function post(path: string, body: string, headers = 'Content-Type: application/json\r\n'): string {
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${AUTH}${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The response is the API's error shape with this code, and the status STATUS gives that code. */
function assertShape(r: RawResponse, code: string, message?: RegExp): { code: string; message: string; field?: string } {
  assert.match(r.headers['content-type'] ?? '', /^application\/json/, `content-type of ${r.status} ${r.body.slice(0, 200)}`);
  const body = JSON.parse(r.body) as { code: string; message: string; field?: string };
  assert.deepEqual(
    Object.keys(body).filter((k) => !['code', 'message', 'field'].includes(k)),
    [],
    `only code, message, field in ${r.body}`,
  );
  assert.equal(body.code, code, r.body);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0 && body.message.length <= 300, `a short message: ${body.message}`);
  assert.equal(r.status, STATUS[body.code as keyof typeof STATUS], `status ${r.status} is STATUS[${body.code}]`);
  if (message) assert.match(body.message, message);
  return body;
}

const deepArray = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const deepObject = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;

for (const dialect of DIALECTS) {
  describe(`security: API error shape under hostile input (${dialect})`, () => {
    let api: TestApi;
    let port: number;
    before(async () => {
      api = await startTestApi(dialect);
      port = Number(new URL(api.url).port);
      await api.admin.post('/v1/tenants', { name: 'acme' });
    });
    after(() => api?.close());

    test('a body nested 10,000 levels deep is a 400, not a 500 from a recursing formatter', async () => {
      assertShape(await rawHttp(port, post('/v1/tenants', deepArray(10_000))), 'E_INVALID_ARG', /invalid body .*must be object/);
      assertShape(await rawHttp(port, post('/v1/tenants', `{"name":${deepArray(10_000)}}`)), 'E_INVALID_ARG', /invalid body\.name .*must be string/);
      assertShape(await rawHttp(port, post('/v1/tenants', `{"name":${deepObject(10_000)}}`)), 'E_INVALID_ARG', /invalid body\.name .*must be string/);
      const r = assertShape(
        await rawHttp(port, post('/v1/networks', `{"tenant":"acme","name":"n","kind":"overlay","subnets":${deepArray(10_000)}}`)),
        'E_INVALID_ARG',
      );
      assert.equal(r.field, 'body.subnets[0]');
      // As deep as the body limit allows.
      const limit = Math.floor((BODY_LIMIT - 16) / 2);
      assertShape(await rawHttp(port, post('/v1/tenants', deepArray(limit))), 'E_INVALID_ARG');
      // Nothing was written, and the server still answers.
      assert.equal((await api.admin.all('/v1/tenants')).length, 1);
      assert.equal((await api.admin.all('/v1/networks')).length, 0);
    });

    test('bad JSON, an empty JSON body and prototype-poisoning keys are 400s', async () => {
      assertShape(await rawHttp(port, post('/v1/tenants', '{"name":')), 'E_INVALID_ARG', /invalid body: must be JSON/);
      assertShape(await rawHttp(port, post('/v1/tenants', '')), 'E_INVALID_ARG', /invalid body \(empty\)/);
      assertShape(await rawHttp(port, post('/v1/tenants', '{"__proto__":{"admin":true},"name":"p"}')), 'E_INVALID_ARG');
      assertShape(await rawHttp(port, post('/v1/tenants', '{"constructor":{"prototype":{"admin":true}},"name":"p"}')), 'E_INVALID_ARG');
      assertShape(await rawHttp(port, post('/v1/tenants', '\u0000\u0001\u00ff')), 'E_INVALID_ARG');
    });

    test('a body above the limit is a 413 E_TOO_LARGE, declared or chunked', async () => {
      const big = `"${'a'.repeat(BODY_LIMIT + 10)}"`;
      assertShape(await rawHttp(port, post('/v1/tenants', big)), 'E_TOO_LARGE', /at most 1048576 bytes/);
      const chunked = `POST /v1/tenants HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${AUTH}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`;
      assertShape(await rawHttp(port, chunked), 'E_TOO_LARGE');
    });

    test('a body that is not JSON is a 415 E_UNSUPPORTED_MEDIA_TYPE', async () => {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', ''])
        assertShape(await rawHttp(port, post('/v1/tenants', 'name=x', `Content-Type: ${type}\r\n`)), 'E_UNSUPPORTED_MEDIA_TYPE', /application\/json/);
      assertShape(await rawHttp(port, post('/v1/tenants', 'name=x', '')), 'E_UNSUPPORTED_MEDIA_TYPE');
    });

    test('a bad or conflicting Content-Length is a 400', async () => {
      const head = `POST /v1/tenants HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${AUTH}Content-Type: application/json\r\n`;
      assertShape(await rawHttp(port, `${head}Content-Length: abc\r\n\r\n{}`), 'E_INVALID_ARG', /invalid request: .*Content-Length/);
      assertShape(await rawHttp(port, `${head}Content-Length: -1\r\n\r\n{}`), 'E_INVALID_ARG');
      assertShape(await rawHttp(port, `${head}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}`), 'E_INVALID_ARG');
      assertShape(await rawHttp(port, `${head}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`), 'E_INVALID_ARG');
    });

    test('unknown routes and methods are E_NOT_FOUND, an unknown method token a 400', async () => {
      const get = (line: string, auth = AUTH) => `${line}\r\nHost: x\r\nConnection: close\r\n${auth}\r\n`;
      assertShape(await rawHttp(port, get('GET /nope HTTP/1.1')), 'E_NOT_FOUND', /no such route: GET \/nope/);
      assertShape(await rawHttp(port, get('GET /v1/nope HTTP/1.1', '')), 'E_NOT_FOUND');
      assertShape(await rawHttp(port, get('PATCH /healthz HTTP/1.1')), 'E_NOT_FOUND', /no such route: PATCH/);
      assertShape(await rawHttp(port, get('PUT /v1/tenants HTTP/1.1')), 'E_NOT_FOUND');
      assertShape(await rawHttp(port, get('PROPFIND /v1/tenants HTTP/1.1')), 'E_NOT_FOUND');
      assertShape(await rawHttp(port, get('BREW /v1/tenants HTTP/1.1')), 'E_INVALID_ARG', /unknown HTTP method/);
    });

    test('bad URLs, over-long path parameters and headers get the shape too', async () => {
      const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${AUTH}${extra}\r\n`;
      assertShape(await rawHttp(port, get('/v1/tenants/%E0%A4%A')), 'E_INVALID_ARG', /invalid URL/);
      assertShape(await rawHttp(port, get('/%zz')), 'E_INVALID_ARG', /invalid URL/);
      assertShape(await rawHttp(port, get(`/v1/tenants/${'x'.repeat(5000)}`)), 'E_INVALID_ARG', /path parameter/);
      assertShape(await rawHttp(port, get('/v1/tenants', `X-Junk: ${'j'.repeat(64 * 1024)}\r\n`)), 'E_HEADERS_TOO_LARGE');
      assertShape(await rawHttp(port, 'this is not HTTP\r\n\r\n'), 'E_INVALID_ARG');
      // A bad request on the socket closes that connection only: the API still answers.
      assert.equal((await api.admin.all('/v1/tenants')).length, 1);
    });

    test('authentication errors keep the shape (a bad token never echoes)', async () => {
      const get = (auth: string) => `GET /v1/tenants HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth}\r\n`;
      assertShape(await rawHttp(port, get('')), 'E_UNAUTHENTICATED');
      const r = assertShape(await rawHttp(port, get('Authorization: Bearer not-a-real-token-5ecret\r\n')), 'E_UNAUTHENTICATED');
      assert.doesNotMatch(r.message, /5ecret/);
    });
  });
}

describe('security: the error formatter cannot throw', () => {
  test('show() names any value without recursing or throwing', () => {
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.match(show(deep), /nested too deeply/);
    let obj: Record<string, unknown> = Object.create(null);
    for (let i = 0; i < 100_000; i++) obj = Object.assign(Object.create(null), { a: obj });
    assert.equal(typeof show(obj), 'string');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(typeof show(cyclic), 'string');
    assert.equal(typeof show(10n), 'string');
    assert.equal(typeof show(Symbol('s')), 'string');
    assert.equal(typeof show(() => 1), 'string');
  });

  test('answerFor() answers E_INTERNAL for errors whose properties throw', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new RangeError('Maximum call stack size exceeded');
        },
      },
    );
    const a = answerFor(hostile, 'req-1');
    assert.equal(a.status, 500);
    assert.equal(a.body.code, 'E_INTERNAL');
    assert.equal(answerFor(null).body.code, 'E_INTERNAL');
    assert.equal(answerFor({ statusCode: 418, message: 'x'.repeat(10_000) }).body.message.length <= 210, true);
  });
});
