// Heartbeats: an agent that goes silent is closed and drops out of the
// agents list; one that answers pings stays. Short timings, real sockets.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { encode, MessageReader } from '../../src/stream/protocol.js';
import { type StreamFixture, startStreamFixture } from '../support/stream.js';

const TOKEN = 'liveness-test-admin-token-0123456789';

describe('push stream liveness', () => {
  let fx: StreamFixture;
  let port: number;
  before(async () => {
    fx = await startStreamFixture({ token: TOKEN, hosts: ['h1', 'h2'], stream: { heartbeatMs: 50, deadMs: 300 } });
    port = fx.port;
  });
  after(async () => {
    await fx?.close();
  });

  /** A raw agent: says hello, then answers pings only if `answer`. */
  function rawAgent(host: string, answer: boolean) {
    const sock = connect(port, '127.0.0.1');
    const reader = new MessageReader();
    let closed = false;
    sock.on('connect', () => sock.write(encode({ t: 'hello', v: 1, host, token: TOKEN, version: 0, vnis: [] })));
    sock.on('data', (d) => {
      for (const m of reader.push(d) as { t: string; version?: number }[]) {
        if (m.t === 'ping' && answer) sock.write(encode({ t: 'pong' }));
        if (m.t === 'snapshot.end' && m.version !== undefined) sock.write(encode({ t: 'ack', version: m.version }));
      }
    });
    sock.on('close', () => {
      closed = true;
    });
    sock.on('error', () => undefined);
    return { sock, closed: () => closed };
  }

  test('a silent agent is closed and leaves the list; one that answers pings stays', async () => {
    const silent = rawAgent('h1', false);
    const alive = rawAgent('h2', true);
    // Both say hello (a fixed wait here failed on a loaded machine); the silent one must not be dropped before.
    const up = Date.now() + 3000;
    while (fx.stream.status().length < 2 && !silent.closed() && Date.now() < up) await new Promise((r) => setTimeout(r, 10));
    assert.equal(fx.stream.status().length, 2);
    const end = Date.now() + 3000;
    while (!silent.closed() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.ok(silent.closed(), 'the silent agent was closed');
    assert.equal(alive.closed(), false, 'the live agent stays');
    const hosts = fx.stream.status().map((s) => s.hostId);
    assert.equal(hosts.length, 1);
    alive.sock.destroy();
  });

  test('a connection that never says hello is closed too', async () => {
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    const closed = await new Promise<boolean>((resolve) => {
      sock.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 3000);
    });
    assert.ok(closed);
  });
});
