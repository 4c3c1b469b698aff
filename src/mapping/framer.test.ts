import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { WeftError } from '../model/errors.js';
import { encodeFrame, ip16, logReq, vl2Req, vl3Req } from './codec.js';
import { type Frame, FrameError, Framer } from './framer.js';
import { OP } from './wire.js';

const ping = (id: number) => encodeFrame(OP.PING, id);
const vl2 = (id: number) => encodeFrame(OP.VL2_REQ, id, vl2Req({ mac: 0x020000000000n + BigInt(id), vnetid: id }));

test('frames split across chunks, byte by byte, come out whole and in order', () => {
  const stream = Buffer.concat([ping(1), vl2(2), ping(3), vl2(4)]);
  const f = new Framer();
  const got: number[] = [];
  for (const byte of stream) for (const fr of f.push(Buffer.from([byte]))) got.push(fr.header.id);
  assert.deepEqual(got, [1, 2, 3, 4]);
  assert.equal(f.pending, 0);
  const all = new Framer().push(stream);
  assert.deepEqual(
    all.map((x) => [x.header.op, x.payload.length]),
    [
      [1, 0],
      [3, 12],
      [1, 0],
      [3, 12],
    ],
  );
});

test('a bad CRC, a wrong version or an oversized frame is a FrameError', () => {
  const bad = Buffer.from(vl2(1));
  bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
  assert.throws(
    () => new Framer().push(bad),
    (e: FrameError) => e instanceof FrameError && e.reason === 'crc',
  );
  const v2 = Buffer.from(ping(1));
  v2.writeUInt16BE(2, 0);
  assert.throws(
    () => new Framer().push(v2),
    (e: FrameError) => e.reason === 'version',
  );
  const huge = Buffer.from(ping(1));
  huge.writeUInt32BE(10_000_000, 4);
  // Refused on the header alone: the 10 MB payload is never waited for or buffered.
  assert.throws(
    () => new Framer().push(huge.subarray(0, 16)),
    (e: FrameError) => e.reason === 'size',
  );
});

test('frames before a bad one are delivered by an earlier push; nothing after it is trusted', () => {
  const f = new Framer();
  assert.equal(f.push(ping(1)).length, 1);
  const bad = Buffer.from(ping(2));
  bad[15] = (bad[15] as number) ^ 0xff;
  assert.throws(() => f.push(Buffer.concat([bad, ping(3)])), FrameError);
});

test('fuzz: random and truncated input yields frames or FrameError, never anything else', () => {
  for (let i = 0; i < 3000; i++) {
    const f = new Framer();
    const kind = i % 3;
    let input: Buffer;
    if (kind === 0) input = randomBytes(Math.floor(Math.random() * 200));
    else if (kind === 1) {
      const good = Buffer.concat([vl2(i), ping(i)]);
      input = good.subarray(0, Math.floor(Math.random() * good.length));
    } else {
      input = Buffer.from(Buffer.concat([ping(i), vl2(i)]));
      const at = Math.floor(Math.random() * input.length);
      input[at] = (input[at] as number) ^ (1 + Math.floor(Math.random() * 255));
    }
    try {
      for (let at = 0; at < input.length; ) {
        const n = 1 + Math.floor(Math.random() * 40);
        for (const fr of f.push(input.subarray(at, at + n))) assert.ok(fr.payload.length === fr.header.size);
        at += n;
      }
    } catch (e) {
      assert.ok(e instanceof FrameError, `unexpected ${(e as Error).stack}`);
    }
    assert.ok(f.pending <= 16 + 65536, 'never holds more than one frame');
  }
});

test('a FrameError is a WeftError (E_INVALID_ARG) whose message says what was wrong', () => {
  const v9 = Buffer.from(ping(1));
  v9.writeUInt16BE(9, 0);
  assert.throws(
    () => new Framer().push(v9),
    (e: FrameError) => e instanceof WeftError && e.code === 'E_INVALID_ARG' && e.message === 'version 9, only 1 is spoken',
  );
  const big = Buffer.from(ping(1));
  big.writeUInt32BE(70_000, 4);
  assert.throws(
    () => new Framer().push(big),
    (e: FrameError) => e.reason === 'size' && e.message === 'payload of 70000 bytes exceeds 65536',
  );
});

test('fuzz: no single corrupted byte of a request is ever delivered as a frame', () => {
  const frames = [
    vl2(5),
    encodeFrame(OP.VL3_REQ, 6, vl3Req({ ip: ip16(4, 0x0a000001n), type: 1, vnetid: 6 })),
    encodeFrame(OP.LOG_REQ, 7, logReq({ count: 1024, ip: ip16(4, 0xc0000201n) })),
  ];
  for (const good of frames) {
    for (let at = 0; at < good.length; at++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(good);
        bad[at] = (bad[at] as number) ^ flip;
        const f = new Framer();
        const got: Frame[] = [];
        try {
          // Followed by a good ping: a size made larger swallows it, and must still not yield the bad frame.
          for (const fr of f.push(Buffer.concat([bad, ping(99)]))) got.push(fr);
        } catch (e) {
          assert.ok(e instanceof FrameError, `unexpected ${(e as Error).stack}`);
          assert.ok(['version', 'size', 'crc'].includes(e.reason));
        }
        for (const fr of got) assert.deepEqual([fr.header.op, fr.header.id], [OP.PING, 99], `byte ${at} ^ ${flip} was delivered`);
      }
    }
  }
});

test('fuzz: good frames with garbage between them: everything before the garbage is delivered, then a FrameError', () => {
  for (let i = 0; i < 500; i++) {
    const head = Array.from({ length: 1 + (i % 5) }, (_, k) => (k % 2 ? ping(k) : vl2(k)));
    const garbage = randomBytes(16 + (i % 30));
    // A garbage header that happens to be a valid PING with a right CRC is (2^-48) not worth handling.
    garbage.writeUInt16BE(2 + (i % 100), 0);
    const f = new Framer();
    const got: number[] = [];
    const stream = Buffer.concat([...head, garbage, ping(1000)]);
    let err: unknown = null;
    try {
      for (let at = 0; at < stream.length; at += 7) for (const fr of f.push(stream.subarray(at, at + 7))) got.push(fr.header.id);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof FrameError && err.reason === 'version', `round ${i}: ${err}`);
    assert.deepEqual(
      got,
      head.map((_, k) => k),
    );
  }
});
