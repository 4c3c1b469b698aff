import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import type { Store } from '../store/store.js';
import type { SvpBackend, SvpHost } from './backend.js';
import { SvpClient } from './client.js';
import { decodeLogRm, encodeFrame, ip16, logAck, logReq, logRm, vl2Ack, vl2Req, vl3Ack, vl3Req } from './codec.js';
import { Framer } from './framer.js';
import { MappingIndex } from './index.js';
import { SvpServer } from './server.js';
import { L3_TYPE, OP, SIZE, STATUS, VXLAN_PORT } from './wire.js';

// The SVP server's pipeline over loopback with a fake backend: each stage's
// failure closes one connection (counted by reason) or answers FATAL, and the
// server serves on. The real backend is covered by test/integration/svp.test.ts.

const HOST: SvpHost = { underlay16: ip16(4, 0xc0000207n) };
const MAC = 0x025746000001;

/** Answers one MAC and one IPv4 on VNI 7; the log fails on demand. */
class FakeBackend implements SvpBackend {
  failLog = false;
  throwOnLookup = false;
  removed: string[] = [];
  lookupVl2(req: Buffer, at: number): SvpHost | undefined {
    if (this.throwOnLookup) throw new Error('broken backend');
    return req.readUIntBE(at, 6) === MAC && req.readUInt32BE(at + 8) === 7 ? HOST : undefined;
  }
  lookupVl3(req: Buffer, at: number): { mac: number; host: SvpHost } | undefined {
    return req.readUInt32BE(at + 12) === 0x0a000001 && req.readUInt32BE(at + 20) === 7 ? { mac: MAC, host: HOST } : undefined;
  }
  async log(req: { count: number }) {
    if (this.failLog) throw new Error('store down');
    const entries = [{ type: 'vl2' as const, id: Buffer.alloc(16, 1), mac: BigInt(MAC), vnetid: 7 }];
    return { status: STATUS.OK, entries, budget: req.count };
  }
  async remove(ids: Buffer[]) {
    if (this.failLog) throw new Error('store down');
    this.removed.push(...ids.map((b) => b.toString('hex')));
  }
}

const backend = new FakeBackend();
const server = new SvpServer(new MappingIndex(), {} as Store, undefined, backend);
let port = 0;
before(async () => {
  port = (await server.listen('127.0.0.1', 0)).port;
});
after(() => server.close());

/** Writes `bytes` on a fresh connection; resolves with the reply frames and whether the server closed it. */
function exchange(bytes: Buffer, waitMs = 300): Promise<{ frames: ReturnType<Framer['push']>; closed: boolean }> {
  return new Promise((resolve) => {
    const framer = new Framer();
    const frames: ReturnType<Framer['push']> = [];
    const s = connect(port, '127.0.0.1', () => s.write(bytes));
    s.on('data', (d) => frames.push(...framer.push(d)));
    s.on('error', () => undefined);
    const t = setTimeout(() => {
      s.destroy();
      resolve({ frames, closed: false });
    }, waitMs);
    s.on('close', () => {
      clearTimeout(t);
      resolve({ frames, closed: true });
    });
  });
}

test('serializer: replies are byte for byte what codec.ts encodes, ids echoed', async () => {
  const c = await SvpClient.connect('127.0.0.1', port);
  const hit = await c.request(OP.VL2_REQ, vl2Req({ mac: BigInt(MAC), vnetid: 7 }));
  assert.equal(hit.header.op, OP.VL2_ACK);
  assert.deepEqual(hit.payload, vl2Ack({ status: STATUS.OK, port: VXLAN_PORT, addr: HOST.underlay16 as Buffer }));
  const miss = await c.request(OP.VL2_REQ, vl2Req({ mac: 1n, vnetid: 7 }));
  assert.deepEqual(miss.payload, vl2Ack({ status: STATUS.NOTFOUND, port: 0, addr: Buffer.alloc(16) }));
  const l3 = await c.request(OP.VL3_REQ, vl3Req({ ip: ip16(4, 0x0a000001n), type: L3_TYPE.IPV4, vnetid: 7 }));
  assert.deepEqual(l3.payload, vl3Ack({ status: STATUS.OK, mac: BigInt(MAC), uport: VXLAN_PORT, uip: HOST.underlay16 as Buffer }));
  const badType = await c.request(OP.VL3_REQ, vl3Req({ ip: ip16(4, 0x0a000001n), type: 9, vnetid: 7 }));
  assert.deepEqual(badType.payload, vl3Ack({ status: STATUS.BADL3TYPE, mac: 0n, uport: 0, uip: Buffer.alloc(16) }));
  const bulk = await c.request(OP.BULK_REQ);
  assert.deepEqual([bulk.header.op, bulk.payload.readUInt32BE(0), bulk.payload.length], [OP.BULK_ACK, STATUS.BADBULK, SIZE.BULK_ACK]);
  const log = await c.request(OP.LOG_REQ, logReq({ count: 1024, ip: HOST.underlay16 as Buffer }));
  assert.deepEqual(log.payload, logAck(STATUS.OK, [{ type: 'vl2', id: Buffer.alloc(16, 1), mac: BigInt(MAC), vnetid: 7 }], 1024).payload);
  const rm0 = await c.request(OP.LOG_RM, logRm([]));
  assert.deepEqual([rm0.header.op, rm0.payload.readUInt32BE(0)], [OP.LOG_RM_ACK, STATUS.OK]);
  assert.equal(await c.logRemove([Buffer.alloc(16, 2)]), STATUS.OK);
  assert.deepEqual(backend.removed, ['02'.repeat(16)]);
  c.close();
});

test('each stage fails alone: framer and parser errors close that connection, by reason; a failing backend answers FATAL', async () => {
  const before = { ...server.closed };
  const good = encodeFrame(OP.VL2_REQ, 1, vl2Req({ mac: BigInt(MAC), vnetid: 7 }));
  const badCrc = Buffer.from(good);
  badCrc[20] = (badCrc[20] as number) ^ 1;
  const badVersion = Buffer.from(good);
  badVersion.writeUInt16BE(2, 0);
  const huge = Buffer.from(good.subarray(0, 16));
  huge.writeUInt32BE(1 << 20, 4);
  const lyingRm = Buffer.from(logRm([Buffer.alloc(16)]));
  lyingRm.writeUInt32BE(2, 0);
  assert.equal(decodeLogRm(lyingRm), null);
  const cases: [string, Buffer, string][] = [
    ['framer: bad CRC', badCrc, 'crc'],
    ['framer: wrong version', badVersion, 'version'],
    ['framer: oversized', huge, 'size'],
    ['parser: short VL3_REQ', encodeFrame(OP.VL3_REQ, 2, Buffer.alloc(SIZE.VL3_REQ - 1)), 'malformed'],
    ['parser: long LOG_REQ', encodeFrame(OP.LOG_REQ, 3, Buffer.alloc(SIZE.LOG_REQ + 1)), 'malformed'],
    ['parser: LOG_RM whose count lies', encodeFrame(OP.LOG_RM, 4, lyingRm), 'malformed'],
  ];
  for (const [what, bytes, reason] of cases) {
    const was = server.closed[reason] ?? 0;
    const { frames, closed } = await exchange(Buffer.concat([encodeFrame(OP.PING, 77), bytes, encodeFrame(OP.PING, 78)]));
    assert.ok(closed, what);
    // Nothing after the bad frame is answered. (The replies of one read are written together,
    // so the ping before it is answered only if it came in an earlier read.)
    assert.ok(
      frames.every((f) => f.header.id === 77),
      what,
    );
    assert.equal(server.closed[reason], was + 1, what);
  }
  // The backend: a store that fails is FATAL for that request, and the connection stays.
  backend.failLog = true;
  try {
    const c = await SvpClient.connect('127.0.0.1', port);
    assert.equal((await c.log(HOST.underlay16 as Buffer, 1024)).status, STATUS.FATAL);
    assert.equal(await c.logRemove([Buffer.alloc(16, 3)]), STATUS.FATAL);
    await c.ping();
    c.close();
  } finally {
    backend.failLog = false;
  }
  // A backend that throws (a bug) closes that connection only, counted as 'error'.
  backend.throwOnLookup = true;
  try {
    const { closed } = await exchange(good);
    assert.ok(closed);
    assert.equal(server.closed.error, (before.error ?? 0) + 1);
  } finally {
    backend.throwOnLookup = false;
  }
  const c = await SvpClient.connect('127.0.0.1', port);
  await c.ping();
  c.close();
});

test('fuzz: random, truncated and corrupted streams over many connections never stop the server', async () => {
  const requests = [
    encodeFrame(OP.PING, 1),
    encodeFrame(OP.VL2_REQ, 2, vl2Req({ mac: BigInt(MAC), vnetid: 7 })),
    encodeFrame(OP.VL3_REQ, 3, vl3Req({ ip: ip16(4, 0x0a000001n), type: L3_TYPE.IPV4, vnetid: 7 })),
    encodeFrame(OP.LOG_RM, 4, logRm([])),
  ];
  for (let i = 0; i < 60; i++) {
    const kind = i % 3;
    let input: Buffer;
    if (kind === 0) input = randomBytes(1 + Math.floor(Math.random() * 300));
    else {
      input = Buffer.concat(Array.from({ length: 8 }, (_, k) => requests[(i + k) % requests.length] as Buffer));
      if (kind === 1) input = input.subarray(0, Math.floor(Math.random() * input.length));
      else {
        input = Buffer.from(input);
        const at = Math.floor(Math.random() * input.length);
        input[at] = (input[at] as number) ^ (1 + Math.floor(Math.random() * 255));
      }
    }
    // Whatever comes back passed the client's framer (its CRC is good): the server never sends a broken frame.
    const { frames } = await exchange(input, 50);
    for (const f of frames) assert.ok([OP.PONG, OP.VL2_ACK, OP.VL3_ACK, OP.LOG_RM_ACK, OP.BULK_ACK, OP.LOG_ACK].includes(f.header.op as 2));
  }
  const c = await SvpClient.connect('127.0.0.1', port);
  await c.ping();
  assert.equal((await c.vl2(BigInt(MAC), 7)).status, STATUS.OK);
  c.close();
});
