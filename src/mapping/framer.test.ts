import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { encodeFrame, vl2Req } from './codec.js';
import { FrameError, Framer } from './framer.js';
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
