import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeftError } from '../model/errors.js';
import { FlatTable } from './flat-table.js';

test('behaves like a Map under random sets, overwrites and deletes, through growth and tombstones', () => {
  const t = new FlatTable(4);
  const ref = new Map<string, [number, number, number]>();
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 60000; i++) {
    const a = 1 + rnd(50);
    const b = rnd(300);
    const c = rnd(2) * 0x80000000 + rnd(5);
    const k = `${a}/${b}/${c}`;
    if (rnd(3) === 0) {
      assert.equal(t.delete(a, b, c), ref.delete(k));
    } else {
      const v: [number, number, number] = [rnd(1 << 30), rnd(65536), rnd(100000)];
      t.set(a, b, c, ...v);
      ref.set(k, v);
    }
  }
  assert.equal(t.size, ref.size);
  for (const [k, v] of ref) {
    const [a, b, c] = k.split('/').map(Number) as [number, number, number];
    const s = t.find(a, b, c);
    assert.ok(s >= 0, k);
    assert.deepEqual([t.value(s, 0), t.value(s, 1), t.value(s, 2)], v);
  }
  assert.equal(t.find(51, 0, 0), -1);
  assert.throws(
    () => t.set(0, 1, 1, 1),
    (e: WeftError) => e instanceof WeftError && e.code === 'E_INVALID_ARG',
  );
});
