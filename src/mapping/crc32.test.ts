import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { crc32Range } from './crc32.js';

test('matches zlib on random ranges, and reads a zeroed field as zeros', () => {
  for (let i = 0; i < 500; i++) {
    const b = randomBytes(1 + (i % 90));
    const s = i % 7 < b.length ? i % 7 : 0;
    assert.equal(crc32Range(b, s, b.length), crc32(b.subarray(s)));
  }
  const frame = Buffer.from('000100010000000000000001b5b66088', 'hex');
  assert.equal(crc32Range(frame, 0, 16, 12).toString(16), 'b5b66088', 'the PING test vector');
});
