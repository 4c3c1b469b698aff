import assert from 'node:assert/strict';
import { test } from 'node:test';
import { announcementFrames, garpFrame, icmpv6Checksum, unsolicitedNaFrame } from './frames.js';

test('gratuitous ARP: broadcast request with sender = target', () => {
  const f = garpFrame('02:57:46:00:00:0a', '10.0.0.5');
  assert.equal(f.length, 42);
  assert.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff');
  assert.equal(f.subarray(6, 12).toString('hex'), '02574600000a');
  assert.equal(f.readUInt16BE(12), 0x0806);
  assert.equal(f.readUInt16BE(20), 1);
  assert.equal(f.subarray(22, 28).toString('hex'), '02574600000a', 'sender MAC');
  assert.equal(f.subarray(28, 32).toString('hex'), '0a000005', 'sender IP');
  assert.equal(f.subarray(38, 42).toString('hex'), '0a000005', 'target IP');
});

test('unsolicited NA: to all nodes, override set, target option, valid checksum', () => {
  const f = unsolicitedNaFrame('02:57:46:00:00:0a', 'fd00::5');
  assert.equal(f.subarray(0, 6).toString('hex'), '333300000001');
  assert.equal(f.readUInt16BE(12), 0x86dd);
  const ip6 = f.subarray(14, 54);
  assert.equal(ip6[6], 58);
  assert.equal(ip6[7], 255, 'hop limit 255, or receivers drop it');
  const icmp = Buffer.from(f.subarray(54));
  assert.equal(icmp[0], 136);
  assert.equal(icmp.readUInt32BE(4), 0x20000000, 'override only');
  assert.equal(icmp.subarray(8, 24).toString('hex'), 'fd000000000000000000000000000005');
  assert.deepEqual([...icmp.subarray(24, 26)], [2, 1]);
  assert.equal(icmp.subarray(26, 32).toString('hex'), '02574600000a');
  const sum = icmp.readUInt16BE(2);
  icmp.writeUInt16BE(0, 2);
  assert.equal(icmpv6Checksum(ip6.subarray(8, 24), ip6.subarray(24, 40), icmp), sum);
  assert.notEqual(sum, 0);
});

test('announcements: one frame per address, by family', () => {
  const fs = announcementFrames('02:57:46:00:00:0a', ['10.0.0.5', 'fd00::5']);
  assert.deepEqual(
    fs.map((f) => f.readUInt16BE(12)),
    [0x0806, 0x86dd],
  );
});
