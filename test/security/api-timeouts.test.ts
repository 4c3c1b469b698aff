// Slow loris against a real API server: a request fed a byte at a time, a
// keep-alive connection left idle and a connection that never speaks are
// closed within the listener's timeouts, while normal requests are answered.
// The listener does not depend on the store: SQLite only.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { apiTimeouts, DEFAULT_API_TIMEOUTS } from '../../src/api/app.js';
import { STATUS } from '../../src/api/errors.js';
import { ADMIN_SECRET, startTestApi, type TestApi } from '../support/api.js';

const T = { headersMs: 600, requestMs: 1200, keepAliveMs: 500, idleMs: 2000 };
/** Node checks the limits every quarter of the smaller one; scheduling on 2 busy cores adds some. */
const SLACK = 800;

interface Drip {
  /** Milliseconds from the first byte to the server closing the connection. */
  closedAfterMs: number;
  /** What the server sent. */
  text: string;
  /** Bytes written before the close. */
  written: number;
}

/** Writes `head` at once, then `drip` one byte every `everyMs`, until the server closes the socket (or `giveUpMs`). */
function drip(port: number, head: string, dripBytes: string, everyMs: number, giveUpMs = 20_000): Promise<Drip> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let written = 0;
    let timer: NodeJS.Timeout | undefined;
    const start = Date.now();
    const giveUp = setTimeout(() => {
      clearInterval(timer);
      s.destroy();
      reject(new Error(`still open after ${giveUpMs} ms (${written} bytes written)`));
    }, giveUpMs);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ closedAfterMs: Date.now() - start, text: Buffer.concat(chunks).toString('latin1'), written });
    });
    s.on('connect', () => {
      if (head) s.write(head);
      written += head.length;
      let i = 0;
      timer = setInterval(() => {
        if (s.destroyed || !s.writable) return;
        s.write(dripBytes[i % dripBytes.length] as string);
        written++;
        i++;
      }, everyMs);
    });
  });
}

function assertTimeoutAnswer(text: string): void {
  const m = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(text);
  assert.ok(m, `an HTTP answer, got ${JSON.stringify(text.slice(0, 200))}`);
  const body = JSON.parse(m[2] as string) as { code: string; message: string };
  assert.equal(body.code, 'E_TIMEOUT');
  assert.equal(Number(m[1]), STATUS.E_TIMEOUT);
  assert.match(body.message, /not received in time/);
}

describe('security: the API listener closes slow and idle clients', () => {
  let api: TestApi;
  let port: number;
  before(async () => {
    api = await startTestApi('sqlite', {}, { timeouts: T });
    port = Number(new URL(api.url).port);
  });
  after(() => api?.close());

  test('the defaults are set on the listener, and nonsense is refused', async () => {
    const d = await startTestApi('sqlite');
    try {
      assert.equal(d.app.server.headersTimeout, DEFAULT_API_TIMEOUTS.headersMs);
      assert.equal(d.app.server.requestTimeout, DEFAULT_API_TIMEOUTS.requestMs);
      assert.equal(d.app.server.keepAliveTimeout, DEFAULT_API_TIMEOUTS.keepAliveMs);
      assert.equal(d.app.server.timeout, DEFAULT_API_TIMEOUTS.idleMs);
      assert.ok(DEFAULT_API_TIMEOUTS.requestMs <= 60_000, 'a slow-loris request is closed within a minute');
    } finally {
      await d.close();
    }
    assert.throws(() => apiTimeouts({ requestMs: 0 }), /invalid timeouts.requestMs 0/);
    assert.throws(() => apiTimeouts({ headersMs: 5000, requestMs: 1000 }), /must be at most timeouts.requestMs/);
  });

  test('headers fed one byte at a time are cut off after headersMs with E_TIMEOUT', async () => {
    const r = await drip(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaa\r\n', 100);
    assert.ok(r.closedAfterMs < T.headersMs + SLACK, `closed after ${r.closedAfterMs} ms`);
    assert.ok(r.closedAfterMs >= T.headersMs - 50, `not before headersMs: ${r.closedAfterMs} ms`);
    assertTimeoutAnswer(r.text);
  });

  test('a body fed one byte at a time is cut off after requestMs, while normal requests are answered', async () => {
    const head = `POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_SECRET}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`;
    const slow = [drip(port, head, ' ', 100), drip(port, head, ' ', 100), drip(port, 'GET /healthz HTTP/1.1\r\n', 'X: y\r\n', 50)];
    // Meanwhile, the API answers as usual.
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await api.admin.post('/v1/tenants', { name: `t${i}` });
      assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
      assert.ok(Date.now() - t0 < 1000, 'a normal request is not held up by the slow ones');
    }
    const rs = await Promise.all(slow);
    for (const r of rs.slice(0, 2)) {
      assert.ok(r.closedAfterMs < T.requestMs + SLACK, `closed after ${r.closedAfterMs} ms`);
      assert.ok(r.written < 1000, 'before the body was complete');
      assertTimeoutAnswer(r.text);
    }
    assert.ok((rs[2] as Drip).closedAfterMs < T.headersMs + SLACK);
    assert.equal((await api.admin.all('/v1/tenants')).length, 5, 'the slow bodies wrote nothing');
  });

  test('an idle keep-alive connection is closed after keepAliveMs; one that never speaks after idleMs', async () => {
    const kept = await drip(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', '', 60_000);
    assert.match(kept.text, /^HTTP\/1\.1 200/);
    // Node waits a second beyond keepAliveTimeout, so that a client reusing the connection at the limit does not race its close.
    assert.ok(kept.closedAfterMs < T.keepAliveMs + 1000 + SLACK, `closed after ${kept.closedAfterMs} ms`);
    const silent = await drip(port, '', '', 60_000);
    assert.ok(silent.closedAfterMs < T.idleMs + SLACK, `closed after ${silent.closedAfterMs} ms`);
  });
});
