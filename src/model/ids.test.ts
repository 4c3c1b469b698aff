import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isId, newId } from './ids.js';

test('newId makes UUID version 7 ids with the millisecond time in front', () => {
  const at = Date.UTC(2026, 11, 2, 0, 25, 0, 123);
  const id = newId(at);
  assert.ok(isId(id), id);
  assert.equal(id[14], '7', 'version 7');
  assert.match(id[19] as string, /[89ab]/, 'RFC 4122 variant');
  assert.equal(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16), at);
});

test('newId sorts by time and does not repeat', () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => newId(1_700_000_000_000 + Math.floor(i / 100)));
  assert.equal(new Set(ids).size, ids.length);
  const byTime = ids.map((id) => id.slice(0, 13));
  assert.deepEqual([...byTime].sort(), byTime);
  assert.ok(newId(0).startsWith('00000000-0000-7'));
});
