import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Candidate, fits, place } from './placement.js';

const host = (name: string, used: number, state: Candidate['state'] = 'active'): Candidate => ({
  hostId: name,
  name,
  state,
  capacity: { cpus: 8, memoryMb: 8192, diskGb: 100 },
  used: { cpus: used, memoryMb: used * 1024, diskGb: used * 10 },
});
const want = { cpus: 2, memoryMb: 2048, diskGb: 20 };

test('spread takes the emptiest host, pack the fullest that fits', () => {
  const hs = [host('a', 4), host('b', 0), host('c', 6)];
  assert.equal(place(hs, want, { policy: 'spread', cpuOvercommit: 1 })?.name, 'b');
  assert.equal(place(hs, want, { policy: 'pack', cpuOvercommit: 1 })?.name, 'c');
});

test('draining and down hosts never take instances; nothing fits gives null', () => {
  const hs = [host('a', 0, 'draining'), host('b', 0, 'down'), host('c', 7)];
  assert.equal(place(hs, want, { policy: 'spread', cpuOvercommit: 1 }), null);
});

test('ties go to the host name, so placement is deterministic', () => {
  assert.equal(place([host('z', 0), host('m', 0)], want, { policy: 'spread', cpuOvercommit: 1 })?.name, 'm');
});

test('memory and disk are never overcommitted; CPUs by the ratio', () => {
  const h = host('a', 0);
  h.used = { cpus: 8, memoryMb: 0, diskGb: 0 };
  assert.equal(fits(h, want, { policy: 'spread', cpuOvercommit: 1 }), false);
  assert.equal(fits(h, want, { policy: 'spread', cpuOvercommit: 2 }), true);
  h.used = { cpus: 0, memoryMb: 8192 - 2047, diskGb: 0 };
  assert.equal(fits(h, want, { policy: 'spread', cpuOvercommit: 16 }), false);
});
