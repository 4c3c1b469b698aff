// The Dataplane contract for the operations outside observe/apply: link and
// miss watches, lazy-mode entries and the routed ports' host side. Every test
// runs on FakeDataplane and on LinuxDataplane in a namespace of its own.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Dataplane, VniState } from '../../src/agent/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/agent/dataplane/fake/fake-dataplane.js';
import { GATEWAY4, GATEWAY6, ROUTING_TABLE } from '../../src/agent/dataplane/linux/guards-routed.js';
import { LinuxDataplane } from '../../src/agent/dataplane/linux/linux-dataplane.js';
import { vxlanName } from '../../src/agent/names.js';
import { WeftError } from '../../src/model/errors.js';
import { run } from '../../src/sys/exec.js';
import { until } from '../../src/sys/until.js';

/** What a routed port's interface holds, as the harness reads it from the kernel. */
interface RoutedView {
  mtu: number;
  gateways: boolean;
  rpFilter: boolean;
}

/** One implementation, with the hypervisor's part (making interfaces) and a way to read the kernel back. */
interface Harness {
  dp: Dataplane;
  /** The hypervisor makes (or removes) a port's interface. */
  addLink(ifname: string): Promise<void>;
  removeLink(ifname: string): Promise<void>;
  /** Makes the kernel raise an l3 miss for `ip` on `wvx<vni>`. */
  raiseMiss(vni: number, ip: string): Promise<void>;
  /** The lazy entries on `wvx<vni>`: MAC -> VTEP, IP -> MAC (empty when the device is gone). */
  lazyEntries(vni: number): Promise<{ fdb: Map<string, string>; neigh: Map<string, string> }>;
  /** The routed ports configured (by interface) and the routing table: guarded ports, VIPs with a DNAT rule (null: no table). */
  routed(ifnames: string[]): Promise<{ ports: Map<string, RoutedView>; table: { ports: string[]; vips: string[] } | null }>;
  /** How long a kernel event may take to reach a watch. */
  settleMs: number;
  close(): Promise<void>;
}

function fakeHarness(): Harness {
  const dp = new FakeDataplane();
  return {
    dp,
    addLink: async (n) => dp.addLink(n),
    removeLink: async (n) => dp.removeLink(n),
    raiseMiss: async (vni, ip) => dp.raiseMiss({ kind: 'l3', vni, ip }),
    async lazyEntries(vni) {
      const pick = (m: Map<string, string>) => new Map([...m].filter(([k]) => k.startsWith(`${vni}|`)).map(([k, v]) => [k.slice(k.indexOf('|') + 1), v]));
      return { fdb: pick(dp.lazy.fdb), neigh: pick(dp.lazy.neigh) };
    },
    async routed(ifnames) {
      const ports = new Map<string, RoutedView>();
      for (const n of ifnames) {
        const mtu = dp.routed.ports.get(n);
        if (mtu !== undefined) ports.set(n, { mtu, gateways: true, rpFilter: true });
      }
      const t = dp.routed.table;
      return { ports, table: t ? { ports: [...t.ports], vips: t.vips.map((v) => v.vip).sort() } : null };
    },
    settleMs: 0,
    close: async () => {},
  };
}

async function linuxHarness(): Promise<Harness> {
  const ns = `wdh${process.pid}`;
  const sh = (cmd: string) => run('sh', ['-c', cmd]);
  await sh(`ip netns add ${ns}`);
  try {
    await sh(`ip -n ${ns} link set lo up && ip -n ${ns} link add ul0 type veth peer name ul1`);
    await sh(`ip -n ${ns} addr add 192.0.2.1/24 dev ul0 && ip -n ${ns} link set ul0 up && ip -n ${ns} link set ul1 up`);
  } catch (e) {
    await sh(`ip netns del ${ns}; true`);
    throw e;
  }
  const dp = new LinuxDataplane({ netns: ns, announce: false });
  const json = async (tool: string, args: string[]) => {
    const r = await run(tool, ['-n', ns, '-j', ...args], { okCodes: [1, 255] });
    return r.code === 0 ? (JSON.parse(r.stdout || '[]') as Record<string, unknown>[]) : [];
  };
  return {
    dp,
    // A veth pair, as a container's would be (its peer's name is not weft's).
    addLink: async (n) => void (await sh(`ip -n ${ns} link add ${n} type veth peer name ${n.slice(1)}`)),
    removeLink: async (n) => void (await sh(`ip -n ${ns} link del ${n}`)),
    async raiseMiss(vni, ip) {
      // An ARP request the bridge floods to the vxlan port: with `proxy l3miss` and no entry, the kernel reports a miss.
      await sh(`ip -n ${ns} addr replace 10.77.0.1/24 dev wbr${vni}`);
      await run('ping', ['-c', '1', '-W', '1', ip], { netns: ns, okCodes: [1, 2] });
    },
    async lazyEntries(vni) {
      const fdb = new Map<string, string>();
      for (const e of await json('bridge', ['fdb', 'show', 'dev', vxlanName(vni)]))
        if (typeof e.dst === 'string' && (e.flags as string[] | undefined)?.includes('self') && e.state === 'permanent') fdb.set(e.mac as string, e.dst);
      const neigh = new Map<string, string>();
      for (const n of await json('ip', ['neigh', 'show', 'dev', vxlanName(vni)]))
        if (typeof n.lladdr === 'string' && (n.state as string[] | undefined)?.includes('PERMANENT')) neigh.set(n.dst as string, n.lladdr);
      return { fdb, neigh };
    },
    async routed(ifnames) {
      const ports = new Map<string, RoutedView>();
      for (const l of await json('ip', ['addr', 'show'])) {
        const name = l.ifname as string;
        if (!ifnames.includes(name)) continue;
        const addrs = ((l.addr_info as { local: string; prefixlen: number }[]) ?? []).map((a) => `${a.local}/${a.prefixlen}`);
        const gateways = addrs.includes(`${GATEWAY4}/32`) && addrs.includes(`${GATEWAY6}/64`);
        const rp = await run('sysctl', ['-n', `net.ipv4.conf.${name}.rp_filter`], { netns: ns });
        if (gateways) ports.set(name, { mtu: l.mtu as number, gateways, rpFilter: rp.stdout.trim() === '1' });
      }
      const r = await run('nft', ['list', 'table', 'inet', ROUTING_TABLE], { netns: ns, okCodes: [1] });
      if (r.code !== 0) return { ports, table: null };
      const set = /set routed_ports \{[^}]*?elements = \{([^}]*)\}/.exec(r.stdout);
      const guarded = [...(set?.[1] ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1] as string).sort();
      const vips = [...r.stdout.matchAll(/daddr (\S+) dnat/g)].map((m) => m[1] as string).sort();
      return { ports, table: { ports: guarded, vips } };
    },
    settleMs: 300,
    async close() {
      dp.close();
      await sh(`ip netns del ${ns}; true`);
    },
  };
}

const root = process.getuid?.() === 0;
const IMPLEMENTATIONS: [string, () => Promise<Harness>, string | false][] = [
  ['FakeDataplane', async () => fakeHarness(), false],
  ['LinuxDataplane', linuxHarness, root ? false : 'needs root to make a network namespace'],
];

const lazyVni = (vni: number): VniState => ({ vni, mtu: 1450, local: '192.0.2.1', lazy: true });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (e: unknown) => (e instanceof WeftError ? e.code : String(e));

for (const [name, make, skip] of IMPLEMENTATIONS) {
  describe(`Dataplane host contract: ${name}`, { skip }, () => {
    let h: Harness;
    before(async () => {
      h = await make();
    });
    after(async () => {
      await h?.close();
    });

    test('watchLinks hears a port interface appear, observeLinks lists it; nothing after stop', async () => {
      let calls = 0;
      const w = h.dp.watchLinks(() => calls++);
      try {
        await sleep(h.settleMs);
        await h.addLink('wpc0000000001');
        await until('the link watch fires', async () => calls > 0, 5000);
        assert.ok((await h.dp.observeLinks()).has('wpc0000000001'));
      } finally {
        w.stop();
      }
      await sleep(h.settleMs);
      const before = calls;
      await h.removeLink('wpc0000000001');
      await sleep(h.settleMs);
      assert.equal(calls, before, 'a stopped watch calls no more');
      assert.ok(!(await h.dp.observeLinks()).has('wpc0000000001'));
    });

    test('lazySet refuses a missing vxlan device', async () => {
      await assert.rejects(h.dp.lazySet({ kind: 'l2', vni: 7999, mac: '02:57:46:00:09:01', dst: '192.0.2.9' }), (e) => code(e) === 'E_DATAPLANE');
    });

    test('lazy entries: set (replace), delete, deleting what is gone is fine, and they go with their device', async () => {
      const vni = 7001;
      assert.deepEqual((await h.dp.apply({ ops: [{ op: 'vni.add', vni: lazyVni(vni) }], waiting: [] })).failed, []);
      await h.dp.lazySet({ kind: 'l3', vni, ip: '10.77.0.5', mac: '02:57:46:00:07:05', dst: '192.0.2.5' });
      await h.dp.lazySet({ kind: 'l2', vni, mac: '02:57:46:00:07:06', dst: '192.0.2.6' });
      let e = await h.lazyEntries(vni);
      assert.deepEqual([...e.fdb].sort(), [
        ['02:57:46:00:07:05', '192.0.2.5'],
        ['02:57:46:00:07:06', '192.0.2.6'],
      ]);
      assert.deepEqual([...e.neigh], [['10.77.0.5', '02:57:46:00:07:05']]);
      // A moved port: the same key, another VTEP.
      await h.dp.lazySet({ kind: 'l2', vni, mac: '02:57:46:00:07:06', dst: '192.0.2.7' });
      assert.equal((await h.lazyEntries(vni)).fdb.get('02:57:46:00:07:06'), '192.0.2.7');

      await h.dp.lazyDelete([
        { kind: 'l3', vni, ip: '10.77.0.5' },
        { kind: 'l2', vni, mac: '02:57:46:00:07:05' },
      ]);
      e = await h.lazyEntries(vni);
      assert.deepEqual([...e.fdb], [['02:57:46:00:07:06', '192.0.2.7']]);
      assert.deepEqual([...e.neigh], []);
      // Shoot-downs of entries (or devices) already gone succeed.
      await h.dp.lazyDelete([
        { kind: 'l3', vni, ip: '10.77.0.5' },
        { kind: 'l2', vni: 7998, mac: '02:57:46:00:07:05' },
      ]);

      assert.deepEqual((await h.dp.apply({ ops: [{ op: 'vni.del', vni }], waiting: [] })).failed, []);
      e = await h.lazyEntries(vni);
      assert.equal(e.fdb.size + e.neigh.size, 0);
    });

    test('watchMisses reports an l3 miss on a lazy vxlan device', async () => {
      const vni = 7002;
      assert.deepEqual((await h.dp.apply({ ops: [{ op: 'vni.add', vni: lazyVni(vni) }], waiting: [] })).failed, []);
      const seen: unknown[] = [];
      const w = h.dp.watchMisses((m) => seen.push(m));
      try {
        await sleep(h.settleMs);
        await until(
          'a miss for 10.77.0.9',
          async () => {
            await h.raiseMiss(vni, '10.77.0.9');
            return seen.some((m) => JSON.stringify(m) === JSON.stringify({ kind: 'l3', vni, ip: '10.77.0.9' }));
          },
          10_000,
        );
      } finally {
        w.stop();
        await h.dp.apply({ ops: [{ op: 'vni.del', vni }], waiting: [] });
      }
    });

    test('applyRouted: ports whose interface exists get gateways and the guard; the others once it appears', async () => {
      const [a, b] = ['wpr0000000000a', 'wpr0000000000b'];
      await h.addLink(a);
      const ports = [
        { ifname: a, mtu: 1500 },
        { ifname: b, mtu: 9000 },
      ];
      assert.deepEqual([...(await h.dp.applyRouted(ports, []))], [a]);
      let r = await h.routed([a, b]);
      assert.deepEqual([...r.ports], [[a, { mtu: 1500, gateways: true, rpFilter: true }]]);
      assert.deepEqual(r.table, { ports: [a], vips: [] });

      await h.addLink(b);
      assert.deepEqual([...(await h.dp.applyRouted(ports, []))].sort(), [a, b]);
      r = await h.routed([a, b]);
      assert.deepEqual(r.ports.get(b), { mtu: 9000, gateways: true, rpFilter: true });
      assert.deepEqual(r.table?.ports, [a, b]);

      // The interface goes (the VM stops): no longer guarded; made again, it is configured again.
      await h.removeLink(a);
      assert.deepEqual([...(await h.dp.applyRouted(ports, []))], [b]);
      assert.deepEqual((await h.routed([a, b])).table?.ports, [b]);
      await h.addLink(a);
      assert.deepEqual([...(await h.dp.applyRouted(ports, []))].sort(), [a, b]);
      assert.equal((await h.routed([a])).ports.get(a)?.gateways, true);
    });

    test('applyRouted: a VIP is DNATed only while it has healthy backends; removeRouted drops the table, the next call writes it again', async () => {
      const p = 'wpr0000000000c';
      await h.addLink(p);
      const ports = [{ ifname: p, mtu: 1500 }];
      await h.dp.applyRouted(ports, [
        { vip: '198.51.100.80', backends: ['203.0.113.11', '203.0.113.10'] },
        { vip: '198.51.100.81', backends: [] },
        { vip: '2001:db8:ffff::80', backends: ['2001:db8:1:2::10'] },
      ]);
      assert.deepEqual((await h.routed([p])).table?.vips, ['198.51.100.80', '2001:db8:ffff::80']);
      await h.dp.applyRouted(ports, [{ vip: '198.51.100.80', backends: [] }]);
      assert.deepEqual((await h.routed([p])).table?.vips, []);

      await h.dp.removeRouted();
      assert.equal((await h.routed([p])).table, null);
      await h.dp.removeRouted();
      await h.dp.applyRouted(ports, []);
      assert.deepEqual((await h.routed([p])).table?.ports.includes(p), true);
      h.dp.resetRouted();
      await h.dp.applyRouted(ports, []);
      assert.equal((await h.routed([p])).ports.get(p)?.gateways, true);
    });

    test('applyRouted refuses a bad MTU with E_INVALID_ARG', async () => {
      const p = 'wpr0000000000d';
      await h.addLink(p);
      await assert.rejects(h.dp.applyRouted([{ ifname: p, mtu: 100 }], []), (e) => code(e) === 'E_INVALID_ARG' && /port\.mtu 100/.test((e as Error).message));
    });
  });
}
