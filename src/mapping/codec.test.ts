import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIp } from '../model/addr.js';
import {
  decodeHeader,
  decodeLogAck,
  decodeLogReq,
  decodeLogRm,
  decodeVl2Ack,
  decodeVl2Req,
  decodeVl3Ack,
  decodeVl3Req,
  encodeFrame,
  fromIp16,
  ip16,
  type LogEntry,
  logAck,
  logReq,
  logRm,
  vl2Ack,
  vl2Req,
  vl3Ack,
  vl3Req,
} from './codec.js';
import { L3_TYPE, OP, SIZE, STATUS } from './wire.js';

test('the test vectors of docs/protocol.md, byte for byte', () => {
  assert.equal(encodeFrame(OP.PING, 1).toString('hex'), '000100010000000000000001b5b66088');
  const req = vl2Req({ mac: 0x000a959d6816n, vnetid: 12340 });
  assert.equal(encodeFrame(OP.VL2_REQ, 7, req).toString('hex'), '000100030000000c00000007cb8dc581000a959d6816000000003034');
});

test('headers round-trip and ids are echoed unchanged, all 32 bits', () => {
  const f = encodeFrame(OP.VL3_REQ, 0xdeadbeef, Buffer.alloc(SIZE.VL3_REQ));
  const h = decodeHeader(f);
  assert.deepEqual({ version: h.version, op: h.op, size: h.size, id: h.id }, { version: 1, op: 5, size: 24, id: 0xdeadbeef });
});

test('IPv4 travels as IPv4-mapped IPv6; IPv6 as itself', () => {
  const v4 = parseIp('x', '10.1.2.3');
  const b = ip16(4, v4.n);
  assert.equal(b.toString('hex'), '00000000000000000000ffff0a010203');
  assert.deepEqual(fromIp16(b), { family: 4, n: v4.n });
  const v6 = parseIp('x', 'fd00::1:2');
  assert.deepEqual(fromIp16(ip16(6, v6.n)), { family: 6, n: v6.n });
});

test('every request and reply round-trips at its exact size', () => {
  const uip = ip16(4, parseIp('x', '192.0.2.7').n);
  const cases: [Buffer, number, (b: Buffer) => unknown, unknown][] = [
    [vl2Req({ mac: 0x025746000001n, vnetid: 4096 }), SIZE.VL2_REQ, decodeVl2Req, { mac: 0x025746000001n, vnetid: 4096 }],
    [vl3Req({ ip: uip, type: L3_TYPE.IPV4, vnetid: 7 }), SIZE.VL3_REQ, decodeVl3Req, { ip: uip, type: 1, vnetid: 7 }],
    [logReq({ count: 1024, ip: uip }), SIZE.LOG_REQ, decodeLogReq, { count: 1024, ip: uip }],
    [vl2Ack({ status: STATUS.OK, port: 4789, addr: uip }), SIZE.VL2_ACK, decodeVl2Ack, { status: 0, port: 4789, addr: uip }],
    [
      vl3Ack({ status: STATUS.NOTFOUND, mac: 0n, uport: 0, uip: Buffer.alloc(16) }),
      SIZE.VL3_ACK,
      decodeVl3Ack,
      { status: 2, mac: 0n, uport: 0, uip: Buffer.alloc(16) },
    ],
  ];
  for (const [bytes, size, decode, value] of cases) {
    assert.equal(bytes.length, size);
    assert.deepEqual(decode(bytes), value);
  }
  // The status widths differ: u16 in VL2_ACK, u32 in VL3_ACK.
  assert.equal(
    vl2Ack({ status: STATUS.NOTFOUND, port: 0, addr: Buffer.alloc(16) })
      .subarray(0, 2)
      .toString('hex'),
    '0002',
  );
  assert.equal(
    vl3Ack({ status: STATUS.NOTFOUND, mac: 0n, uport: 0, uip: Buffer.alloc(16) })
      .subarray(0, 4)
      .toString('hex'),
    '00000002',
  );
});

test('LOG_RM carries a count and 16-byte ids; a count that disagrees with the size is refused', () => {
  const ids = [Buffer.alloc(16, 1), Buffer.alloc(16, 2)];
  const p = logRm(ids);
  assert.equal(p.length, 4 + 32);
  assert.deepEqual(decodeLogRm(p), ids);
  const lying = Buffer.from(p);
  lying.writeUInt32BE(3, 0);
  assert.equal(decodeLogRm(lying), null);
  assert.equal(decodeLogRm(Buffer.alloc(2)), null);
});

test('LOG_ACK fits entries in the budget including the status word, in order', () => {
  const vl2: LogEntry = { type: 'vl2', id: Buffer.alloc(16, 0xaa), mac: 0x020000000001n, vnetid: 5 };
  const vl3: LogEntry = { type: 'vl3', id: Buffer.alloc(16, 0xbb), ip: ip16(4, parseIp('x', '10.0.0.1').n), vlan: 0, vnetid: 5 };
  const many = Array.from({ length: 40 }, () => vl2);
  // 1024 bytes hold the status word and 31 VL2 entries (4 + 31*32 = 996), not 32 (1028).
  const { payload, taken } = logAck(STATUS.OK, many, 1024);
  assert.equal(taken, 31);
  assert.equal(payload.length, 996);
  const mixed = logAck(STATUS.OK, [vl2, vl3, vl2], 4 + 32 + 44);
  assert.equal(mixed.taken, 2);
  assert.deepEqual(decodeLogAck(mixed.payload), { status: 0, entries: [vl2, vl3] });
  assert.equal(logAck(STATUS.OK, [vl3], 40).taken, 0, 'an entry that does not fit is left for the next request');
  assert.equal(decodeLogAck(mixed.payload.subarray(0, 50)), null, 'a cut entry is refused');
});
