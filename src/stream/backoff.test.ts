// The reconnect schedule: windows double up to the cap, draws stay inside
// them, and a fleet's retries spread over the window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '../model/prng.js';
import { DEFAULT_BACKOFF, reconnectDelay } from './backoff.js';

/** A seeded [0, 1) generator, so the spread below is reproducible. */
const seeded = mulberry32;

test('the window doubles from the base and stops at the cap', () => {
  const top = () => 0.999999;
  const windows = [0, 1, 2, 3, 4, 5, 6, 7, 100, 5000].map((n) => reconnectDelay(n, top) + 1);
  assert.deepEqual(windows, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
  assert.equal(
    reconnectDelay(3, () => 0),
    0,
    'full jitter: the window starts at 0',
  );
  assert.equal(
    reconnectDelay(2, () => 0.5, { baseMs: 1000, capMs: 60_000 }),
    2000,
  );
});

test('every draw is an integer inside its window', () => {
  const r = seeded(1);
  for (let attempt = 0; attempt < 40; attempt++)
    for (let i = 0; i < 200; i++) {
      const d = reconnectDelay(attempt, r);
      assert.ok(Number.isInteger(d) && d >= 0 && d < Math.min(DEFAULT_BACKOFF.capMs, DEFAULT_BACKOFF.baseMs * 2 ** attempt), `attempt ${attempt}: ${d}`);
    }
});

test('50 agents that lost the server together do not come back in the same 100 ms', () => {
  // Each agent retries on its own schedule while the server is down for 3 s;
  // when it is back, each connects at its first retry after that.
  const downMs = 3000;
  const back: number[] = [];
  for (let agent = 0; agent < 50; agent++) {
    const r = seeded(1000 + agent);
    let t = 0;
    for (let attempt = 0; t < downMs; attempt++) t += reconnectDelay(attempt, r);
    back.push(t);
  }
  const buckets = new Map<number, number>();
  for (const t of back) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
  const busiest = Math.max(...buckets.values());
  assert.ok(busiest <= 10, `at most 10 of 50 in one 100 ms bucket, got ${busiest}`);
  assert.ok(Math.max(...back) - Math.min(...back) >= 1000, 'spread over at least a second');
  // Bounded: no agent waits more than one capped window past the outage.
  assert.ok(Math.max(...back) < downMs + DEFAULT_BACKOFF.capMs);
});
