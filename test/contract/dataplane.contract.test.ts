// The Dataplane contract: one suite for the whole seam, the plan (observe and
// apply) and the operations outside it (link and miss watches, lazy-mode
// entries, the routed ports' host side). Every case runs on FakeDataplane and
// on LinuxDataplane (in a network namespace of its own), so the fake the unit
// tests trust does what the kernel does. The harness (the hosts, their
// probes, the runner) is test/support/dataplane-contract.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KernelState, Op, PlugState, VniState } from '../../src/agent/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/agent/dataplane/fake/fake-dataplane.js';
import { type GuardPort, guardSpecHash } from '../../src/agent/dataplane/guard-spec.js';
import { WeftError } from '../../src/model/errors.js';
import { until } from '../../src/sys/until.js';
import { type DataplaneCase, dataplaneContract, Expect, LOCAL } from '../support/dataplane-contract.js';

const VNI = 5000;
const vni = (n = VNI, o: Partial<VniState> = {}): VniState => ({ vni: n, mtu: 1450, local: LOCAL, lazy: false, ...o });
const ifname = (i: number) => `wp00000000000${i}`;
const mac = (i: number) => `02:57:46:00:00:0${i}`;
const plugOf = (i: number, o: Partial<PlugState> = {}): PlugState => ({ ifname: ifname(i), vni: VNI, mtu: 1450, mac: mac(i), ...o });
const guardOf = (i: number, o: Partial<GuardPort> = {}): GuardPort => ({
  ifname: ifname(i),
  mac: mac(i),
  ipv4: `10.1.0.${i}`,
  ipv6: `fd00:1::${i}`,
  arpRate: 20,
  ndRate: 20,
  ...o,
});
const guardSet = (port: GuardPort): Op => ({ op: 'guard.set', port, hash: guardSpecHash(port) });
/** A local port as reconcile plugs it: the plug, then its static entry on the bridge. */
const plugged = (p: PlugState): Op[] => [
  { op: 'port.plug', plug: p },
  { op: 'fdb.set', vni: p.vni, mac: p.mac, dst: `@${p.ifname}` },
];

/** observe and apply: a plan's steps, read back. */
const planCases: DataplaneCase[] = [
  {
    name: 'observe: a host with nothing of weft on it is empty; port interfaces are listed',
    async run(h) {
      const x = new Expect(h);
      await x.observed();
      await x.addLink(ifname(1));
      await x.observed();
      await x.apply([]);
    },
  },
  {
    name: 'vni: add, change the MTU, delete; a lazy VNI is observed lazy',
    async run(h) {
      const x = new Expect(h);
      await x.apply([{ op: 'vni.add', vni: vni() }]);
      await x.apply([{ op: 'vni.mtu', vni: VNI, mtu: 1400 }]);
      await x.apply([{ op: 'vni.add', vni: vni(5001, { lazy: true }) }]);
      await x.apply([{ op: 'vni.del', vni: VNI }]);
      await x.apply([{ op: 'vni.del', vni: 5001 }]);
    },
  },
  {
    name: 'fdb: set, move to another VTEP, to a local port and back, delete; a VNI takes its entries with it',
    async run(h) {
      const x = new Expect(h);
      await x.addLink(ifname(2));
      await x.apply([{ op: 'vni.add', vni: vni() }]);
      await x.apply([
        { op: 'fdb.set', vni: VNI, mac: mac(2), dst: '192.0.2.2' },
        { op: 'fdb.set', vni: VNI, mac: mac(3), dst: '192.0.2.3' },
      ]);
      await x.apply([{ op: 'fdb.set', vni: VNI, mac: mac(3), dst: '192.0.2.4', was: '192.0.2.3' }]);
      // Port 2 moves here (its interface was made), then away again.
      await x.apply([
        { op: 'port.plug', plug: plugOf(2) },
        { op: 'fdb.set', vni: VNI, mac: mac(2), dst: `@${ifname(2)}`, was: '192.0.2.2' },
      ]);
      await x.apply([
        { op: 'fdb.set', vni: VNI, mac: mac(2), dst: '192.0.2.5', was: `@${ifname(2)}` },
        { op: 'port.unplug', plug: plugOf(2) },
      ]);
      await x.apply([{ op: 'fdb.del', vni: VNI, mac: mac(3), was: '192.0.2.4' }]);
      await x.apply([{ op: 'vni.del', vni: VNI }]);
    },
  },
  {
    name: 'neigh: set IPv4 and IPv6, replace, delete; a VNI takes its entries with it',
    async run(h) {
      const x = new Expect(h);
      await x.apply([{ op: 'vni.add', vni: vni() }]);
      await x.apply([
        { op: 'neigh.set', vni: VNI, ip: '10.1.0.2', mac: mac(2) },
        { op: 'neigh.set', vni: VNI, ip: 'fd00:1::2', mac: mac(2) },
        { op: 'neigh.set', vni: VNI, ip: '10.1.0.3', mac: mac(3) },
      ]);
      await x.apply([{ op: 'neigh.set', vni: VNI, ip: '10.1.0.2', mac: mac(4) }]);
      await x.apply([
        { op: 'neigh.del', vni: VNI, ip: '10.1.0.2' },
        { op: 'neigh.del', vni: VNI, ip: 'fd00:1::2' },
      ]);
      await x.apply([{ op: 'vni.del', vni: VNI }]);
    },
  },
  {
    name: 'plug: plug, re-plug with a new MTU, move to another VNI, unplug; a removed interface takes its plug along',
    async run(h) {
      const x = new Expect(h);
      await x.addLink(ifname(1));
      await x.addLink(ifname(2));
      await x.apply([{ op: 'vni.add', vni: vni() }, { op: 'vni.add', vni: vni(5001) }, ...plugged(plugOf(1)), ...plugged(plugOf(2))]);
      await x.apply([{ op: 'vni.mtu', vni: VNI, mtu: 1400 }, ...plugged(plugOf(1, { mtu: 1400 }))]);
      // Leaving a bridge takes the port's entries on it along.
      await x.apply(plugged(plugOf(1, { vni: 5001 })));
      await x.apply([{ op: 'port.unplug', plug: plugOf(1, { vni: 5001 }) }]);
      await x.removeLink(ifname(2));
      await x.observed();
      // A VNI deleted under a plugged port leaves the interface unplugged.
      await x.apply(plugged(plugOf(1, { vni: 5001 })));
      await x.apply([{ op: 'vni.del', vni: 5001 }]);
    },
  },
  {
    name: 'plug: the MAC of a plug is read from its static entry: without one it is observed as empty',
    async run(h) {
      const x = new Expect(h);
      await x.addLink(ifname(1));
      await x.apply(
        [
          { op: 'vni.add', vni: vni() },
          { op: 'port.plug', plug: plugOf(1) },
        ],
        [],
        (want) => want.plugs.set(ifname(1), plugOf(1, { mac: '' })),
      );
      // Its static entry set, the plug reads back whole.
      await x.apply([{ op: 'fdb.set', vni: VNI, mac: mac(1), dst: `@${ifname(1)}` }]);
    },
  },
  {
    name: 'guard: set, replace with a changed spec, delete; an interface need not exist',
    async run(h) {
      const x = new Expect(h);
      await x.apply([guardSet(guardOf(1)), guardSet(guardOf(2, { ipv4: null }))]);
      await x.apply([guardSet(guardOf(1, { ipv6: null, arpRate: 5 }))]);
      await x.apply([{ op: 'guard.del', ifname: ifname(1) }]);
      await x.apply([{ op: 'guard.del', ifname: ifname(2) }]);
    },
  },
  {
    name: 'idempotent: a plan applied again changes nothing and fails nothing, except vni.add of a VNI that exists',
    async run(h) {
      const x = new Expect(h);
      await x.addLink(ifname(1));
      const devices: Op[] = [{ op: 'vni.add', vni: vni() }];
      const rest: Op[] = [
        guardSet(guardOf(1)),
        ...plugged(plugOf(1)),
        { op: 'fdb.set', vni: VNI, mac: mac(2), dst: '192.0.2.2' },
        { op: 'neigh.set', vni: VNI, ip: '10.1.0.2', mac: mac(2) },
        { op: 'neigh.set', vni: VNI, ip: 'fd00:1::2', mac: mac(2) },
        { op: 'vni.mtu', vni: VNI, mtu: 1450 },
      ];
      await x.apply([...devices, ...rest]);
      await x.apply(rest);
      // Adding a device that exists fails (`File exists`) and leaves it as it was, even with other settings.
      const again: Op = { op: 'vni.add', vni: vni(VNI, { mtu: 1400 }) };
      await x.apply([again], [again]);
      const gone: Op[] = [
        { op: 'neigh.del', vni: VNI, ip: '10.1.0.2' },
        { op: 'fdb.del', vni: VNI, mac: mac(2), was: '192.0.2.2' },
        { op: 'port.unplug', plug: plugOf(1) },
        { op: 'guard.del', ifname: ifname(1) },
        { op: 'vni.del', vni: VNI },
      ];
      await x.apply(gone);
      // Deletions of what is gone (entries of a VNI that is gone, a missing interface) succeed.
      await x.apply(gone);
      await x.apply([{ op: 'port.unplug', plug: plugOf(9) }]);
    },
  },
  {
    name: 'failures: each bad step is reported on its own, with why; the other steps of the plan are applied',
    async run(h) {
      const x = new Expect(h);
      await x.addLink(ifname(1));
      await x.addLink(ifname(2));
      await x.apply([{ op: 'vni.add', vni: vni() }]);
      const bad: Op[] = [
        { op: 'vni.add', vni: vni() },
        { op: 'vni.mtu', vni: 6000, mtu: 1400 },
        { op: 'port.plug', plug: plugOf(9) },
        { op: 'fdb.set', vni: 6000, mac: mac(5), dst: '192.0.2.5' },
        { op: 'fdb.set', vni: VNI, mac: mac(2), dst: `@${ifname(2)}` },
        { op: 'fdb.set', vni: VNI, mac: mac(9), dst: `@${ifname(9)}` },
        { op: 'neigh.set', vni: 6000, ip: '10.1.0.5', mac: mac(5) },
      ];
      const good: Op[] = [
        ...plugged(plugOf(1)),
        { op: 'fdb.set', vni: VNI, mac: mac(3), dst: '192.0.2.3' },
        { op: 'neigh.set', vni: VNI, ip: '10.1.0.3', mac: mac(3) },
        { op: 'vni.add', vni: vni(5001) },
      ];
      // Interleaved, a bad step first and last.
      const ops: Op[] = [];
      for (let i = 0; i < Math.max(bad.length, good.length); i++) for (const op of [bad[i], good[i]]) if (op) ops.push(op);
      await x.apply(ops, bad);
      // An invalid guard spec is refused; the neighbour entry beside it is not.
      const badGuard: Op = { op: 'guard.set', port: guardOf(3, { ipv4: '224.0.0.1' }), hash: 'invalid' };
      await x.apply([badGuard, { op: 'neigh.set', vni: VNI, ip: '10.1.0.4', mac: mac(4) }], [badGuard]);
    },
  },
  {
    name: 'failures: a plug into a VNI that does not exist fails on its own (its static entry with it)',
    async run(h) {
      const x = new Expect(h);
      await x.addLink(ifname(1));
      await x.addLink(ifname(2));
      await x.apply([{ op: 'vni.add', vni: vni() }]);
      // iproute2 exits on an unknown `master`: LinuxDataplane must not hand it such a line.
      const bad = plugged(plugOf(2, { vni: 6000 }));
      await x.apply([...bad, ...plugged(plugOf(1)), { op: 'vni.add', vni: vni(5001) }], bad);
      // And into a VNI the same plan deletes.
      const gone = plugged(plugOf(2, { vni: 5001 }));
      await x.apply([{ op: 'vni.del', vni: 5001 }, ...gone, { op: 'neigh.set', vni: VNI, ip: '10.1.0.2', mac: mac(2) }], gone);
    },
  },
  {
    name: 'failures: an invalid guard spec fails on its own; the other guards of the apply are set',
    async run(h) {
      const x = new Expect(h);
      const bad: Op = { op: 'guard.set', port: guardOf(3, { ipv4: '224.0.0.1' }), hash: 'invalid' };
      const badV6: Op = { op: 'guard.set', port: guardOf(4, { ipv6: 'fe80::4' }), hash: 'invalid' };
      await x.apply([bad, guardSet(guardOf(1)), badV6, guardSet(guardOf(2))], [bad, badV6]);
    },
  },
  {
    name: 'failures: a port whose guard fails is neither plugged nor pointed at; the ports beside it are guarded and plugged',
    async run(h) {
      const x = new Expect(h);
      for (const i of [1, 2, 3]) await x.addLink(ifname(i));
      // As reconcile plans it: devices, guards, plugs, then entries.
      const badGuard: Op = { op: 'guard.set', port: guardOf(2, { ipv4: '169.254.0.2' }), hash: 'invalid' };
      const [plug2, entry2] = plugged(plugOf(2)) as [Op, Op];
      const ops: Op[] = [
        { op: 'vni.add', vni: vni() },
        guardSet(guardOf(1)),
        badGuard,
        guardSet(guardOf(3)),
        ...plugged(plugOf(1)).slice(0, 1),
        plug2,
        ...plugged(plugOf(3)).slice(0, 1),
        ...plugged(plugOf(1)).slice(1),
        entry2,
        ...plugged(plugOf(3)).slice(1),
        { op: 'neigh.set', vni: VNI, ip: '10.1.0.2', mac: mac(2) },
      ];
      await x.apply(ops, [badGuard, plug2, entry2]);
      // Its spec fixed, the port is guarded and plugged.
      await x.apply([guardSet(guardOf(2)), ...plugged(plugOf(2))]);
      // Without a plug in the plan (the port is plugged already), a failed guard keeps its static entry from being set.
      const noMac = (want: KernelState) => want.plugs.set(ifname(3), plugOf(3, { mac: '' }));
      await x.apply([{ op: 'fdb.del', vni: VNI, mac: mac(3), was: `@${ifname(3)}` }], [], noMac);
      const bad3: Op = { op: 'guard.set', port: guardOf(3, { mac: '01:00:5e:00:00:03' }), hash: 'invalid' };
      const entry3: Op = { op: 'fdb.set', vni: VNI, mac: mac(3), dst: `@${ifname(3)}` };
      await x.apply([bad3, entry3], [bad3, entry3], noMac);
    },
  },
  {
    name: 'failures: a plug into a VNI that does not exist fails (alone in its apply)',
    async run(h) {
      const x = new Expect(h);
      await x.addLink(ifname(2));
      const bad: Op = { op: 'port.plug', plug: plugOf(2, { vni: 6000 }) };
      await x.apply([bad], [bad]);
      await x.apply([{ op: 'vni.add', vni: vni(6000) }, ...plugged(plugOf(2, { vni: 6000 }))]);
    },
  },
  {
    name: 'observe after apply: a whole host (two VNIs, one lazy; ports, guards, remote entries) reads back as applied',
    async run(h) {
      const x = new Expect(h);
      for (const i of [1, 2, 3]) await x.addLink(ifname(i));
      const ops: Op[] = [
        { op: 'vni.add', vni: vni() },
        { op: 'vni.add', vni: vni(5001, { lazy: true, mtu: 1400 }) },
      ];
      for (const i of [1, 2]) ops.push(guardSet(guardOf(i)), ...plugged(plugOf(i)));
      ops.push(guardSet(guardOf(3, { ipv6: null })), ...plugged(plugOf(3, { vni: 5001, mtu: 1400 })));
      for (const i of [4, 5, 6]) {
        ops.push({ op: 'fdb.set', vni: VNI, mac: mac(i), dst: `192.0.2.${i}` });
        ops.push({ op: 'neigh.set', vni: VNI, ip: `10.1.0.${i}`, mac: mac(i) }, { op: 'neigh.set', vni: VNI, ip: `fd00:1::${i}`, mac: mac(i) });
      }
      for (const i of [1, 2]) ops.push({ op: 'neigh.set', vni: VNI, ip: `10.1.0.${i}`, mac: mac(i) });
      ops.push({ op: 'fdb.set', vni: 5001, mac: mac(7), dst: '192.0.2.7' });
      await x.apply(ops);
      await x.observed();
    },
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (e: unknown) => (e instanceof WeftError ? e.code : String(e));

/** The operations outside observe/apply, checked with the host's probes. */
const hostCases: DataplaneCase[] = [
  {
    name: 'watchLinks hears a port interface appear, observeLinks lists it; nothing after stop',
    async run(h) {
      let calls = 0;
      const w = h.dataplane.watchLinks(() => calls++);
      try {
        await sleep(h.settleMs);
        await h.addLink('wpc0000000001');
        await until('the link watch fires', async () => calls > 0, 5000);
        assert.ok((await h.dataplane.observeLinks()).has('wpc0000000001'));
      } finally {
        w.stop();
      }
      await sleep(h.settleMs);
      const before = calls;
      await h.removeLink('wpc0000000001');
      await sleep(h.settleMs);
      assert.equal(calls, before, 'a stopped watch calls no more');
      assert.ok(!(await h.dataplane.observeLinks()).has('wpc0000000001'));
    },
  },
  {
    name: 'lazySet refuses a missing vxlan device',
    async run(h) {
      await assert.rejects(h.dataplane.lazySet({ kind: 'l2', vni: 7999, mac: '02:57:46:00:09:01', dst: '192.0.2.9' }), (e) => code(e) === 'E_DATAPLANE');
    },
  },
  {
    name: 'lazy entries: set (replace), delete, deleting what is gone is fine, and they go with their device',
    async run(h) {
      const n = 7001;
      assert.deepEqual((await h.dataplane.apply({ ops: [{ op: 'vni.add', vni: vni(n, { lazy: true }) }], waiting: [] })).failed, []);
      await h.dataplane.lazySet({ kind: 'l3', vni: n, ip: '10.77.0.5', mac: '02:57:46:00:07:05', dst: '192.0.2.5' });
      await h.dataplane.lazySet({ kind: 'l2', vni: n, mac: '02:57:46:00:07:06', dst: '192.0.2.6' });
      let e = await h.lazyEntries(n);
      assert.deepEqual([...e.fdb].sort(), [
        ['02:57:46:00:07:05', '192.0.2.5'],
        ['02:57:46:00:07:06', '192.0.2.6'],
      ]);
      assert.deepEqual([...e.neigh], [['10.77.0.5', '02:57:46:00:07:05']]);
      // A moved port: the same key, another VTEP.
      await h.dataplane.lazySet({ kind: 'l2', vni: n, mac: '02:57:46:00:07:06', dst: '192.0.2.7' });
      assert.equal((await h.lazyEntries(n)).fdb.get('02:57:46:00:07:06'), '192.0.2.7');

      await h.dataplane.lazyDelete([
        { kind: 'l3', vni: n, ip: '10.77.0.5' },
        { kind: 'l2', vni: n, mac: '02:57:46:00:07:05' },
      ]);
      e = await h.lazyEntries(n);
      assert.deepEqual([...e.fdb], [['02:57:46:00:07:06', '192.0.2.7']]);
      assert.deepEqual([...e.neigh], []);
      // Shoot-downs of entries (or devices) already gone succeed.
      await h.dataplane.lazyDelete([
        { kind: 'l3', vni: n, ip: '10.77.0.5' },
        { kind: 'l2', vni: 7998, mac: '02:57:46:00:07:05' },
      ]);

      assert.deepEqual((await h.dataplane.apply({ ops: [{ op: 'vni.del', vni: n }], waiting: [] })).failed, []);
      e = await h.lazyEntries(n);
      assert.equal(e.fdb.size + e.neigh.size, 0);
    },
  },
  {
    name: 'watchMisses reports an l3 miss on a lazy vxlan device',
    async run(h) {
      const n = 7002;
      assert.deepEqual((await h.dataplane.apply({ ops: [{ op: 'vni.add', vni: vni(n, { lazy: true }) }], waiting: [] })).failed, []);
      const seen: unknown[] = [];
      const w = h.dataplane.watchMisses((m) => seen.push(m));
      try {
        await sleep(h.settleMs);
        await until(
          'a miss for 10.77.0.9',
          async () => {
            await h.raiseMiss(n, '10.77.0.9');
            return seen.some((m) => JSON.stringify(m) === JSON.stringify({ kind: 'l3', vni: n, ip: '10.77.0.9' }));
          },
          10_000,
        );
      } finally {
        w.stop();
        await h.dataplane.apply({ ops: [{ op: 'vni.del', vni: n }], waiting: [] });
      }
    },
  },
  {
    name: 'applyRouted: ports whose interface exists get gateways and the guard; the others once it appears',
    async run(h) {
      const [a, b] = ['wpr0000000000a', 'wpr0000000000b'];
      await h.addLink(a);
      const ports = [
        { ifname: a, mtu: 1500 },
        { ifname: b, mtu: 9000 },
      ];
      assert.deepEqual([...(await h.dataplane.applyRouted(ports, []))], [a]);
      let r = await h.routed([a, b]);
      assert.deepEqual([...r.ports], [[a, { mtu: 1500, gateways: true, rpFilter: true }]]);
      assert.deepEqual(r.table, { ports: [a], vips: [] });

      await h.addLink(b);
      assert.deepEqual([...(await h.dataplane.applyRouted(ports, []))].sort(), [a, b]);
      r = await h.routed([a, b]);
      assert.deepEqual(r.ports.get(b), { mtu: 9000, gateways: true, rpFilter: true });
      assert.deepEqual(r.table?.ports, [a, b]);

      // The interface goes (the VM stops): no longer guarded; made again, it is configured again.
      await h.removeLink(a);
      assert.deepEqual([...(await h.dataplane.applyRouted(ports, []))], [b]);
      assert.deepEqual((await h.routed([a, b])).table?.ports, [b]);
      await h.addLink(a);
      assert.deepEqual([...(await h.dataplane.applyRouted(ports, []))].sort(), [a, b]);
      assert.equal((await h.routed([a])).ports.get(a)?.gateways, true);
    },
  },
  {
    name: 'applyRouted: a VIP is DNATed only while it has healthy backends; removeRouted drops the table, the next call writes it again',
    async run(h) {
      const p = 'wpr0000000000c';
      await h.addLink(p);
      const ports = [{ ifname: p, mtu: 1500 }];
      await h.dataplane.applyRouted(ports, [
        { vip: '198.51.100.80', backends: ['203.0.113.11', '203.0.113.10'] },
        { vip: '198.51.100.81', backends: [] },
        { vip: '2001:db8:ffff::80', backends: ['2001:db8:1:2::10'] },
      ]);
      assert.deepEqual((await h.routed([p])).table?.vips, ['198.51.100.80', '2001:db8:ffff::80']);
      await h.dataplane.applyRouted(ports, [{ vip: '198.51.100.80', backends: [] }]);
      assert.deepEqual((await h.routed([p])).table?.vips, []);

      await h.dataplane.removeRouted();
      assert.equal((await h.routed([p])).table, null);
      await h.dataplane.removeRouted();
      await h.dataplane.applyRouted(ports, []);
      assert.deepEqual((await h.routed([p])).table?.ports.includes(p), true);
      h.dataplane.resetRouted();
      await h.dataplane.applyRouted(ports, []);
      assert.equal((await h.routed([p])).ports.get(p)?.gateways, true);
    },
  },
  {
    name: 'applyRouted refuses a bad MTU with E_INVALID_ARG',
    async run(h) {
      const p = 'wpr0000000000d';
      await h.addLink(p);
      await assert.rejects(
        h.dataplane.applyRouted([{ ifname: p, mtu: 100 }], []),
        (e) => code(e) === 'E_INVALID_ARG' && /port\.mtu 100/.test((e as Error).message),
      );
    },
  },
];

dataplaneContract('Dataplane contract', [...planCases, ...hostCases]);

test('FakeDataplane: failNext fails the next steps of that kind only, then lets them through', async () => {
  const dp = new FakeDataplane();
  dp.failNext('vni.add', 2);
  const add = (n: number): Op => ({ op: 'vni.add', vni: vni(n) });
  const r = await dp.apply({ ops: [add(1), { op: 'vni.del', vni: 9 }, add(2), add(3)], waiting: [] });
  assert.deepEqual(
    r.failed.map((f) => [f.op, f.error]),
    [
      [add(1), 'vni.add: injected failure'],
      [add(2), 'vni.add: injected failure'],
    ],
  );
  assert.deepEqual([...(await dp.observe()).vnis.keys()], [3]);
});
