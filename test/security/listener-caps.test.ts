// Starving the listeners of a real `weft server` (its composition root):
// connections up to each listener's cap, in total and per source address, are
// refused past it while the other listeners, /healthz and /metrics still
// answer; idle SVP connections, stream connections without a hello and stream
// frames trickled a byte at a time are closed. SQLite only: the store is not involved.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeFrame } from '../../src/mapping/codec.js';
import { Framer } from '../../src/mapping/framer.js';
import { OP } from '../../src/mapping/wire.js';
import { type RunningServer, type ServerOptions, startServer } from '../../src/server/server.js';
import { MessageReader } from '../../src/stream/protocol.js';

const ADMIN = 'listener-caps-admin-secret-0123';
const dirs: string[] = [];
const servers: RunningServer[] = [];
const sockets: Socket[] = [];

after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) await s.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function server(o: Partial<ServerOptions>): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-caps-'));
  dirs.push(dir);
  const s = await startServer({
    db: `sqlite:${join(dir, 'weft.db')}`,
    api: '127.0.0.1:0',
    svp: '127.0.0.1:0',
    stream: '127.0.0.1:0',
    placement: 'spread',
    cpuOvercommit: 1,
    adminToken: ADMIN,
    logLevel: 'silent',
    ...o,
  });
  servers.push(s);
  return s;
}

function portOf(address: string | null): number {
  return Number((address as string).split(':').pop());
}

interface Conn {
  sock: Socket;
  /** Everything received so far. */
  data: Buffer[];
  /** Resolves with ms from connect to the server's close. */
  closed: Promise<number>;
}

/** A connection from `localAddress` (127.0.0.0/8 is all loopback on Linux: a second source). */
function open(port: number, localAddress = '127.0.0.1'): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress });
    sockets.push(sock);
    const data: Buffer[] = [];
    let start = 0;
    const closed = new Promise<number>((r) => sock.on('close', () => r(Date.now() - start)));
    sock.on('data', (d) => data.push(d));
    sock.on('error', () => undefined);
    sock.once('connect', () => {
      start = Date.now();
      resolve({ sock, data, closed });
    });
    sock.once('error', reject);
  });
}

/** True when the SVP connection answers a PING within `ms`. */
async function pings(c: Conn, ms = 5000): Promise<boolean> {
  if (c.sock.destroyed) return false;
  const before = c.data.length;
  c.sock.write(encodeFrame(OP.PING, 1));
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (c.data.length > before) return true;
    if (c.sock.destroyed) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** Resolves with ms until the server closed `c`, or rejects after `ms`. */
function closedWithin(c: Conn, ms: number): Promise<number> {
  return Promise.race([c.closed, new Promise<number>((_, rej) => setTimeout(() => rej(new Error(`still open after ${ms} ms`)), ms).unref())]);
}

/** One HTTP request on its own connection (no pooling): status, headers and body. */
function get(base: string, path: string, token?: string): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { agent: false, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end();
  });
}

function metric(text: string, name: string, labels: string): number | null {
  const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

test('SVP at its total cap: the next connection is closed at once; the stream, the API, /healthz and /metrics still answer', async () => {
  const s = await server({ limits: { svp: { max: 4, perSource: 4 } } });
  const port = portOf(s.svpAddress);
  const held = await Promise.all(Array.from({ length: 4 }, () => open(port)));
  for (const c of held) assert.ok(await pings(c), 'a connection under the cap is served');
  const next = await open(port, '127.0.0.3');
  const ms = await closedWithin(next, 5000);
  assert.equal(Buffer.concat(next.data).length, 0, 'nothing is said on a refused SVP connection');
  assert.ok(ms < 5000);
  assert.ok(await pings(held[0] as Conn), 'the admitted connections are untouched');
  // The other listeners are not affected.
  const stream = await open(portOf(s.streamAddress));
  assert.equal(stream.sock.destroyed, false);
  assert.equal((await get(s.apiUrl, '/healthz')).status, 200);
  assert.equal((await get(s.apiUrl, '/v1/sites', ADMIN)).status, 200);
  const m = await get(s.apiUrl, '/metrics');
  assert.equal(m.status, 200);
  assert.equal(metric(m.body, 'weft_listener_connections', '{listener="svp"}'), 4);
  assert.equal(metric(m.body, 'weft_listener_refused_total', '{listener="svp",reason="total"}'), 1);
  // A slot freed is a slot taken again.
  (held[1] as Conn).sock.destroy();
  await (held[1] as Conn).closed;
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(await pings(await open(port)), 'a freed slot admits a new connection');
});

test('SVP per-source cap: a third connection from one address is refused, one from another address is served', async () => {
  const s = await server({ limits: { svp: { max: 100, perSource: 2 } } });
  const port = portOf(s.svpAddress);
  const a = await Promise.all([open(port), open(port)]);
  for (const c of a) assert.ok(await pings(c));
  const third = await open(port);
  await closedWithin(third, 5000);
  const other = await open(port, '127.0.0.2');
  assert.ok(await pings(other), 'another source is not limited by the first one');
  const m = await get(s.apiUrl, '/metrics');
  assert.equal(metric(m.body, 'weft_listener_refused_total', '{listener="svp",reason="per_source"}'), 1);
});

test('stream at its cap: the next connection gets an E_BUSY error frame and is closed', async () => {
  const s = await server({ limits: { stream: { max: 2, perSource: 2 } }, streamHelloMs: 60_000 });
  const port = portOf(s.streamAddress);
  const held = await Promise.all([open(port), open(port)]);
  const next = await open(port);
  await closedWithin(next, 5000);
  const msgs = new MessageReader().push(Buffer.concat(next.data)) as { t: string; code: string; message: string }[];
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]?.t, 'error');
  assert.equal(msgs[0]?.code, 'E_BUSY');
  assert.match(msgs[0]?.message ?? '', /cap \(2 connections\)/);
  for (const c of held) assert.equal(c.sock.destroyed, false);
  assert.ok(await pings(await open(portOf(s.svpAddress))), 'SVP still answers');
});

test('API at its cap: a new connection gets 503 E_BUSY and is closed, but /healthz and /metrics answer on it', async () => {
  const s = await server({ limits: { api: { max: 3, perSource: 3 } } });
  const port = Number(new URL(s.apiUrl).port);
  const held = await Promise.all(Array.from({ length: 3 }, () => open(port)));
  await new Promise((r) => setTimeout(r, 50));
  const busy = await get(s.apiUrl, '/v1/sites', ADMIN);
  assert.equal(busy.status, 503);
  const body = JSON.parse(busy.body) as { code: string; message: string };
  assert.equal(body.code, 'E_BUSY');
  assert.match(body.message, /cap of 3 connections/);
  assert.equal(busy.connection, 'close');
  const h = await get(s.apiUrl, '/healthz');
  assert.equal(h.status, 200);
  assert.equal(JSON.parse(h.body).status, 'ok');
  const m = await get(s.apiUrl, '/metrics');
  assert.equal(m.status, 200);
  assert.equal(metric(m.body, 'weft_listener_connections', '{listener="api"}'), 3);
  assert.ok((metric(m.body, 'weft_listener_refused_total', '{listener="api",reason="total"}') ?? 0) >= 3);
  for (const c of held) c.sock.destroy();
  await Promise.all(held.map((c) => c.closed));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await get(s.apiUrl, '/v1/sites', ADMIN)).status, 200, 'under the cap again: served');
});

test('an idle SVP connection is closed after the configured idle timeout; an active one is not', async () => {
  const s = await server({ svpIdleMs: 400 });
  const port = portOf(s.svpAddress);
  const idle = await open(port);
  const busy = await open(port);
  const keep = setInterval(() => busy.sock.write(encodeFrame(OP.PING, 2)), 100);
  try {
    const ms = await closedWithin(idle, 10_000);
    assert.ok(ms >= 350, `closed after ${ms} ms, before its idle timeout`);
    assert.equal(busy.sock.destroyed, false, 'a connection in use is kept');
  } finally {
    clearInterval(keep);
  }
  const m = await get(s.apiUrl, '/metrics');
  assert.equal(metric(m.body, 'weft_svp_connections_closed_total', '{reason="idle"}'), 1);
});

test('a stream connection that never says hello is closed at the hello deadline', async () => {
  const s = await server({ streamHelloMs: 400 });
  const c = await open(portOf(s.streamAddress));
  const ms = await closedWithin(c, 10_000);
  assert.ok(ms >= 350, `closed after ${ms} ms`);
});

test('a stream frame trickled a byte at a time is closed at the stall deadline', async () => {
  const s = await server({ streamHelloMs: 60_000, streamStallMs: 500 });
  const c = await open(portOf(s.streamAddress));
  // A hello frame of 1000 bytes, sent one byte every 50 ms: it would take 50 s.
  const frame = Buffer.alloc(1004, 0x20);
  frame.writeUInt32BE(1000, 0);
  let i = 0;
  const drip = setInterval(() => {
    if (!c.sock.destroyed) c.sock.write(frame.subarray(i, ++i));
  }, 50);
  try {
    const ms = await closedWithin(c, 10_000);
    assert.ok(ms >= 450 && i < 1004, `closed after ${ms} ms, ${i} bytes in`);
  } finally {
    clearInterval(drip);
  }
});

test('frames cut at random points, down to a byte at a time, parse as when whole (SVP framer, stream reader)', () => {
  const svp = Array.from({ length: 50 }, (_, k) => encodeFrame(k % 3 ? OP.PING : OP.VL2_REQ, k, k % 3 ? Buffer.alloc(0) : Buffer.alloc(10, k)));
  const svpBytes = Buffer.concat(svp);
  const msgs = Array.from({ length: 50 }, (_, k) => ({ t: 'ping', k, pad: 'x'.repeat(k * 7) }));
  const streamBytes = Buffer.concat(
    msgs.map((m) => {
      const b = Buffer.from(JSON.stringify(m));
      const h = Buffer.alloc(4);
      h.writeUInt32BE(b.length);
      return Buffer.concat([h, b]);
    }),
  );
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 200; round++) {
    const maxCut = round < 10 ? 1 : 1 + rand(40);
    const f = new Framer();
    const got: string[] = [];
    for (let at = 0; at < svpBytes.length; ) {
      const n = 1 + rand(maxCut);
      for (const fr of f.push(svpBytes.subarray(at, at + n))) got.push(`${fr.header.op}:${fr.header.id}:${fr.payload.toString('hex')}`);
      at += n;
    }
    assert.deepEqual(
      got,
      svp.map((b, k) => `${b.readUInt16BE(2)}:${k}:${b.subarray(16).toString('hex')}`),
    );
    assert.equal(f.pending, 0);
    const r = new MessageReader();
    const out: unknown[] = [];
    for (let at = 0; at < streamBytes.length; ) {
      const n = 1 + rand(maxCut);
      out.push(...r.push(streamBytes.subarray(at, at + n)));
      at += n;
    }
    assert.deepEqual(out, msgs);
    assert.equal(r.pending, 0);
  }
});

test('absurd declared sizes are refused before anything is allocated for them', () => {
  const header = encodeFrame(OP.PING, 1).subarray(0, 16);
  Buffer.from(header).writeUInt32BE(0xffffffff, 4);
  const big = Buffer.from(header);
  big.writeUInt32BE(0xffffffff, 4);
  const f = new Framer();
  f.push(big.subarray(0, 10));
  assert.throws(() => f.push(big.subarray(10)), /payload of 4294967295 bytes exceeds/);
  const r = new MessageReader(64 * 1024);
  r.push(Buffer.from([0xff, 0xff]));
  assert.throws(() => r.push(Buffer.from([0xff, 0xff])), /frame of 4294967295 bytes exceeds 65536/);
});

test('bad caps are refused naming the flag, before the store is created', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-caps-'));
  dirs.push(dir);
  const opts = {
    db: `sqlite:${join(dir, 'weft.db')}`,
    api: '127.0.0.1:0',
    svp: 'off',
    stream: 'off',
    placement: 'spread' as const,
    cpuOvercommit: 1,
    logLevel: 'silent',
  };
  await assert.rejects(startServer({ ...opts, limits: { svp: { max: 0 } } }), /invalid svp-max-connections 0: must be an integer 1\.\.1000000/);
  await assert.rejects(
    startServer({ ...opts, limits: { api: { max: 10, perSource: 20 } } }),
    /api-max-connections-per-source 20: must be at most api-max-connections \(10\)/,
  );
  await assert.rejects(startServer({ ...opts, svpIdleMs: -1 }), /svp-idle-timeout -1/);
  const { existsSync } = await import('node:fs');
  assert.equal(existsSync(join(dir, 'weft.db')), false, 'nothing was written');
});

test('while the server closes, a request on an open connection gets 503 E_UNAVAILABLE in the API error body', async () => {
  const s = await server({});
  const c = await open(Number(new URL(s.apiUrl).port));
  const body = JSON.stringify({ name: 'ams9', underlayPool: '192.0.2.0/24' });
  // A request in flight (its body half sent) keeps the connection busy, so closing waits for it.
  c.sock.write(
    `POST /v1/sites HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
  );
  await new Promise((r) => setTimeout(r, 100));
  const closing = s.close();
  await new Promise((r) => setTimeout(r, 100));
  c.sock.write(`${body.slice(5)}GET /v1/sites HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN}\r\n\r\n`);
  await closedWithin(c, 10_000);
  await closing;
  const text = Buffer.concat(c.data).toString('utf8');
  const answers = [...text.matchAll(/HTTP\/1\.1 (\d{3})[\s\S]*?\r\n\r\n(\{[^\n]*?\})(?=HTTP|$)/g)].map((m) => [m[1], m[2]]);
  assert.equal(answers.length, 2, text);
  assert.equal(answers[0]?.[0], '201', 'the request in flight is answered');
  assert.equal(answers[1]?.[0], '503');
  const err = JSON.parse(answers[1]?.[1] as string) as { code: string; message: string };
  assert.equal(err.code, 'E_UNAVAILABLE');
  assert.match(err.message, /shutting down/);
});

test('a real SVP server answers frames fed to it a byte at a time, each once', async () => {
  const s = await server({});
  const c = await open(portOf(s.svpAddress));
  const bytes = Buffer.concat([encodeFrame(OP.PING, 41), encodeFrame(OP.PING, 42), encodeFrame(OP.PING, 43)]);
  for (let i = 0; i < bytes.length; i++) {
    c.sock.write(bytes.subarray(i, i + 1));
    await new Promise((r) => setImmediate(r));
  }
  const until = Date.now() + 5000;
  while (Buffer.concat(c.data).length < 48 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const got = new Framer(1024).push(Buffer.concat(c.data)).map((f) => [f.header.op, f.header.id]);
  assert.deepEqual(got, [
    [OP.PONG, 41],
    [OP.PONG, 42],
    [OP.PONG, 43],
  ]);
});
