// Two `weft server` processes on one PostgreSQL database, written to at once:
// allocations never collide, the change log stays gap-free and ordered, and
// each replica serves what the other wrote.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AgentState } from '../../src/agent/state/agent-state.js';
import { ApiClient } from '../../src/cli/client.js';
import { type ServerProcess, startServerProcess } from '../../src/lab/server-process.js';
import { SvpClient } from '../../src/mapping/client.js';
import { STATUS } from '../../src/mapping/wire.js';
import { parseMac } from '../../src/model/addr.js';
import type { Instance, Port } from '../../src/model/types.js';
import { StreamClient } from '../../src/stream/client.js';
import { until } from '../../src/sys/until.js';
import { type TestDb, testDb } from '../support/stores.js';

const TOKEN = 'replica-test-admin-token-012345';

describe('two server replicas on one PostgreSQL', () => {
  let db: TestDb;
  let a: ServerProcess;
  let b: ServerProcess;
  before(async () => {
    db = await testDb('postgres');
    [a, b] = await Promise.all([startServerProcess({ db: db.url, adminToken: TOKEN }), startServerProcess({ db: db.url, adminToken: TOKEN })]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  test('concurrent creations through both replicas', async () => {
    const ca = new ApiClient(a.url, TOKEN);
    const cb = new ApiClient(b.url, TOKEN);
    await ca.post('/v1/sites', { name: 'ams1', underlayPool: '192.0.2.0/24' });
    // Hosts created through both replicas at once: underlay IPs must not collide.
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 ? ca : cb).post('/v1/hosts', { name: `hv${i}`, site: 'ams1', capacity: { cpus: 20, memoryMb: 1 << 20, diskGb: 10000 } }),
      ),
    );
    await cb.post('/v1/tenants', { name: 'acme' });
    await ca.post('/v1/networks', { tenant: 'acme', name: 'net', kind: 'overlay', subnets: ['10.0.0.0/22', 'fd00::/64'] });
    const results = await Promise.allSettled(
      Array.from({ length: 150 }, (_, i) =>
        (i % 2 ? ca : cb).post<Instance & { ports: Port[] }>('/v1/instances', {
          tenant: 'acme',
          name: `vm${i}`,
          site: 'ams1',
          cpus: 1,
          ports: [{ network: 'net' }],
        }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<Instance & { ports: Port[] }>).value);
    const failed = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as { code: string });
    assert.equal(ok.length, 120, '6 hosts x 20 cpus');
    assert.ok(failed.every((e) => e.code === 'E_CAPACITY'));
    const ports = ok.flatMap((i) => i.ports);
    for (const k of ['mac', 'ipv4', 'ipv6'] as const) assert.equal(new Set(ports.map((p) => p[k])).size, 120, `distinct ${k}`);
    const hosts = await cb.all<{ underlayIp: string }>('/v1/hosts');
    assert.equal(new Set(hosts.map((h) => h.underlayIp)).size, 6);

    // Each replica serves what the other wrote, straight away.
    const one = ok[0] as Instance;
    assert.equal((await ca.get<Instance>(`/v1/instances/${one.id}`)).name, one.name);
    assert.equal((await cb.get<Instance>(`/v1/instances/${one.id}`)).name, one.name);

    const log = await ca.get<{ items: { version: number; kind: string }[]; head: number }>('/v1/changes?after=0&limit=1000');
    assert.deepEqual(
      log.items.map((c) => c.version),
      log.items.map((_, i) => i + 1),
      'gap-free and ordered',
    );
    assert.equal(log.items.filter((c) => c.kind === 'port.created').length, 120);
    assert.equal((await cb.get<{ head: number }>('/v1/changes?limit=1')).head, log.head);
  });

  test("an agent follows one replica's writes through the other, and resumes on the first with deltas", async () => {
    const ca = new ApiClient(a.url, TOKEN);
    const hv1 = await ca.get<{ id: string }>('/v1/hosts/hv1');
    const state = new AgentState(hv1.id);
    const modes: string[] = [];
    const follow = (p: ServerProcess, version = 0, vnis: number[] = []) => {
      let snapshots = 0;
      const c = new StreamClient({
        host: p.stream.host,
        port: p.stream.port,
        hostRef: 'hv1',
        token: TOKEN,
        version,
        vnis,
        handler: {
          snapshot: (v, s) => {
            snapshots++;
            modes.push('snapshot');
            state.snapshot(v, s);
          },
          delta: (v, ch, vn) => {
            modes.push('delta');
            state.delta(v, ch, vn);
          },
        },
      });
      c.start();
      return { c, snapshots: () => snapshots };
    };
    const onB = follow(b);
    await until('snapshot from B', () => state.version > 0);
    const before = state.ports.size;
    await ca.patch('/v1/hosts/hv1', { capacity: { cpus: 60, memoryMb: 1 << 20, diskGb: 10000 } });
    await ca.post('/v1/instances', { tenant: 'acme', name: 'rep-a', site: 'ams1', cpus: 1, host: 'hv1', ports: [{ network: 'net' }] });
    await until("A's write arrives through B", () => state.ports.size === before + 1);
    onB.c.stop();
    const at = state.version;
    await ca.post('/v1/instances', { tenant: 'acme', name: 'rep-b', site: 'ams1', cpus: 1, host: 'hv1', ports: [{ network: 'net' }] });
    modes.length = 0;
    const onA = follow(a, at, [...state.vnis]);
    await until('resumed on A', () => state.ports.size === before + 2);
    assert.deepEqual(modes, ['delta'], 'resumed with deltas, no snapshot');
    onA.c.stop();
  });

  test("each replica's SVP serves the other's writes within 100 ms (median; every one within 2 s)", async () => {
    const ca = new ApiClient(a.url, TOKEN);
    const svpB = await SvpClient.connect(b.svp.host, b.svp.port);
    try {
      const net = (await ca.get<{ items: { vni: number }[] }>('/v1/networks?name=net')).items[0] as { vni: number };
      const lags: number[] = [];
      for (let i = 0; i < 10; i++) {
        await ca.patch('/v1/hosts/hv0', { capacity: { cpus: 40 + i, memoryMb: 1 << 20, diskGb: 10000 } });
        const vm = await ca.post<Instance & { ports: Port[] }>('/v1/instances', {
          tenant: 'acme',
          name: `svp${i}`,
          site: 'ams1',
          cpus: 1,
          host: 'hv0',
          ports: [{ network: 'net' }],
        });
        const t0 = performance.now();
        const m = parseMac('mac', (vm.ports[0] as Port).mac).n;
        while ((await svpB.vl2(m, net.vni)).status !== STATUS.OK) {
          if (performance.now() - t0 > 2000) throw new Error('replica B never served the port');
          await new Promise((r) => setTimeout(r, 2));
        }
        lags.push(performance.now() - t0);
      }
      lags.sort((x, y) => x - y);
      // The median tells NOTIFY (a few ms) from the polling fallback (hundreds); the tail is the shared
      // machine's scheduling, which this suite cannot control (a loaded 2-core box showed 230-350 ms).
      assert.ok((lags[4] as number) < 100, `replica lag ms: ${lags.map((l) => l.toFixed(1)).join(' ')}`);
    } finally {
      svpB.close();
    }
  });
});
