// Heartbeats: an agent that goes silent is closed and drops out of the
// agents list; one that answers pings stays. Short timings, real sockets.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import prom from 'prom-client';
import { type Ctx, createCtx } from '../../src/core/context.js';
import * as infra from '../../src/core/infra.js';
import { ensureAdminToken } from '../../src/core/tokens.js';
import { type MappingService, startMapping } from '../../src/mapping/service.js';
import { streamContext } from '../../src/server/server.js';
import type { Store } from '../../src/store/store.js';
import { encode, MessageReader } from '../../src/stream/protocol.js';
import { StreamServer } from '../../src/stream/server.js';
import { type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'liveness-test-admin-token-0123456789';

describe('push stream liveness', () => {
  let db: TestDb;
  let store: Store;
  let ctx: Ctx;
  let mapping: MappingService;
  let stream: StreamServer;
  let port: number;
  before(async () => {
    db = await testDb('sqlite');
    store = await db.open();
    ctx = createCtx(store);
    await ensureAdminToken(ctx, TOKEN);
    await infra.createSite(ctx, { name: 's', underlayPool: '192.0.2.0/24' });
    await infra.createHost(ctx, { name: 'h1', site: 's', capacity: { cpus: 1, memoryMb: 1024, diskGb: 1 } });
    await infra.createHost(ctx, { name: 'h2', site: 's', capacity: { cpus: 1, memoryMb: 1024, diskGb: 1 } });
    mapping = await startMapping(store, { svp: null, registry: new prom.Registry(), onApplied: (c) => stream.deliver(c) });
    stream = new StreamServer(streamContext(ctx), mapping.follower.index, { heartbeatMs: 50, deadMs: 300 });
    port = (await stream.listen('127.0.0.1', 0)).port;
  });
  after(async () => {
    await stream?.close();
    await mapping?.close();
    await store?.close();
    await db?.drop();
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
    while (stream.status().length < 2 && !silent.closed() && Date.now() < up) await new Promise((r) => setTimeout(r, 10));
    assert.equal(stream.status().length, 2);
    const end = Date.now() + 3000;
    while (!silent.closed() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.ok(silent.closed(), 'the silent agent was closed');
    assert.equal(alive.closed(), false, 'the live agent stays');
    const hosts = stream.status().map((s) => s.hostId);
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
