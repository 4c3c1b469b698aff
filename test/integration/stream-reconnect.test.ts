// Reconnect storms: 50 agents' stream clients against a server that restarts
// come back spread over the backoff window, not in one burst.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { streamContext } from '../../src/server/server.js';
import { StreamClient } from '../../src/stream/client.js';
import { StreamServer } from '../../src/stream/server.js';
import { type StreamFixture, startStreamFixture } from '../support/stream.js';

const TOKEN = 'reconnect-test-admin-token-0123456789';
const AGENTS = 50;
const hosts = Array.from({ length: AGENTS }, (_, i) => `h${i}`);

let fx: StreamFixture;
let restarted: StreamServer | null = null;
const LIMITS = { max: 4096, perSource: 4096 };
const clients: StreamClient[] = [];
before(async () => {
  // 50 agents from one address: past the stream's default per-source cap, which is for real hosts.
  fx = await startStreamFixture({ token: TOKEN, hosts, stream: { limits: LIMITS } });
});
after(async () => {
  for (const c of clients) c.stop();
  await restarted?.close();
  await fx?.close();
});

const until = async (what: string, ok: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('50 clients reconnecting to a restarted server are spread, not in the same 100 ms', async (t) => {
  const welcomes: number[][] = hosts.map(() => []);
  for (const [i, host] of hosts.entries()) {
    const c = new StreamClient({
      host: '127.0.0.1',
      port: fx.port,
      hostRef: host,
      token: TOKEN,
      handler: { snapshot: () => undefined, delta: () => undefined },
      onWelcome: () => welcomes[i]?.push(Date.now()),
    });
    clients.push(c);
    c.start();
  }
  await until('every client connected', () => welcomes.every((w) => w.length === 1), 30_000);

  // The server goes away for 2 s (connections refused meanwhile) and comes back on the same port.
  await fx.stream.close();
  const downAt = Date.now();
  await new Promise((r) => setTimeout(r, 2000));
  restarted = new StreamServer(streamContext(fx.ctx), fx.mapping.follower.index, { limits: LIMITS });
  await restarted.listen('127.0.0.1', fx.port);
  const upAt = Date.now();
  await until('every client reconnected', () => welcomes.every((w) => w.length === 2), 30_000);

  const back = welcomes.map((w) => w[1] as number);
  const buckets = new Map<number, number>();
  for (const t of back) buckets.set(Math.floor((t - upAt) / 100), (buckets.get(Math.floor((t - upAt) / 100)) ?? 0) + 1);
  const busiest = Math.max(...buckets.values());
  const spread = Math.max(...back) - Math.min(...back);
  t.diagnostic(`${AGENTS} clients back ${Math.min(...back) - upAt}..${Math.max(...back) - upAt} ms after the restart; busiest 100 ms: ${busiest}`);
  // A fixed schedule puts all 50 in one bucket; full jitter over a window of ~1.6 s gives a few per bucket.
  assert.ok(busiest <= AGENTS / 2, `at most half of the clients in one 100 ms bucket, got ${busiest} (buckets ${JSON.stringify([...buckets])})`);
  assert.ok(spread >= 300, `reconnects spread over ${spread} ms, want at least 300`);
  // And bounded: the cap (5 s) plus a generous margin for a busy machine.
  assert.ok(Math.max(...back) - downAt < 2000 + 5000 + 10_000, 'every client back within the capped window');
});
