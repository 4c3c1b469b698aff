import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstGap } from './alloc.js';

test('firstGap finds the lowest free number at or after from', () => {
  assert.equal(firstGap(1n, 10n, [], true), 1n);
  assert.equal(firstGap(1n, 10n, [1n, 2n, 3n], true), 4n);
  assert.equal(firstGap(1n, 10n, [2n, 3n], true), 1n);
  assert.equal(firstGap(1n, 10n, [1n, 2n, 4n], true), 3n);
  assert.equal(firstGap(5n, 10n, [5n, 6n, 7n, 8n, 9n, 10n], true), null, 'full');
  assert.equal(firstGap(5n, 10n, [5n, 6n, 7n, 8n, 9n, 10n, 11n], false), null, 'numbers past hi do not count as free');
});

test('firstGap asks for more when a partial batch is all taken', () => {
  assert.equal(firstGap(1n, 100n, [1n, 2n, 3n], false), null);
  assert.equal(firstGap(1n, 100n, [1n, 3n], false), 2n, 'a gap inside the batch is certain');
});
