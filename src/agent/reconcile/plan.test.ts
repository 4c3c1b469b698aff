import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostInfo, NetworkInfo, PortMapping } from '../../model/changes.js';
import { Agent } from '../agent.js';
import { FakeDataplane } from '../dataplane/fake/fake-dataplane.js';
import { portIfname } from '../names.js';
import { AgentState } from '../state/agent-state.js';
import { desiredKernel } from './desired.js';
import { plan } from './plan.js';

const host = (n: number): HostInfo => ({
  hostId: `h${n}`,
  name: `h${n}`,
  siteId: 's',
  rackId: 'r',
  underlayIp: `192.0.2.${n}`,
  asn: null,
  state: 'active',
  ipv6Prefix: null,
});
const net: NetworkInfo = { networkId: 'n1', tenantId: 't', kind: 'overlay', vni: 4096, mtu: 1450, subnets: [], arpRate: null, ndRate: 7 };
const port = (i: number, h: number, vni = 4096): PortMapping => ({
  portId: `p${i}`,
  instanceId: `i${i}`,
  tenantId: 't',
  networkId: 'n1',
  networkKind: 'overlay',
  vni,
  mac: `02:57:46:00:00:${i.toString(16).padStart(2, '0')}`,
  ipv4: `10.0.0.${i}`,
  ipv6: `fd00::${i}`,
  hostId: `h${h}`,
  underlayIp: `192.0.2.${h}`,
});
const opts = { lazy: false, arpRate: 20, ndRate: 20 };

function stateOf(ports: PortMapping[], version = 1): AgentState {
  const s = new AgentState('h1');
  s.snapshot(version, { host: host(1), ports, networks: [net], vnis: [4096], vips: [], peers: [] });
  return s;
}

test('desired: local ports are plugged and guarded, remote ports get FDB and neighbours', () => {
  const d = desiredKernel(stateOf([port(1, 1), port(2, 2)]), opts);
  const lp = portIfname('p1');
  assert.deepEqual([...d.state.vnis.values()], [{ vni: 4096, mtu: 1450, local: '192.0.2.1', lazy: false }]);
  assert.deepEqual([...d.state.plugs.keys()], [lp]);
  assert.equal(d.state.fdb.get('4096|02:57:46:00:00:01'), `@${lp}`);
  assert.equal(d.state.fdb.get('4096|02:57:46:00:00:02'), '192.0.2.2');
  assert.equal(d.state.neigh.get('4096|10.0.0.2'), '02:57:46:00:00:02');
  assert.equal(d.state.neigh.get('4096|fd00::1'), '02:57:46:00:00:01');
  assert.equal(d.guardPorts.get(lp)?.ndRate, 7, 'the network sets the ND rate');
  assert.equal(d.guardPorts.get(lp)?.arpRate, 20, 'the default ARP rate');
});

test('desired: lazy mode programs no remote entries', () => {
  const d = desiredKernel(stateOf([port(1, 1), port(2, 2)]), { ...opts, lazy: true });
  assert.equal(d.state.fdb.size, 1);
  assert.equal(d.state.neigh.size, 0);
  assert.equal(d.state.vnis.get(4096)?.lazy, true);
});

test('plan: converges, then is empty; a port waits for its interface', async () => {
  const dp = new FakeDataplane();
  const s = stateOf([port(1, 1), port(2, 2), port(3, 3)]);
  let d = desiredKernel(s, opts);
  let p = plan(d, await dp.observe());
  assert.deepEqual(p.waiting, [portIfname('p1')]);
  assert.equal((await dp.apply(p)).failed.length, 0);
  dp.addLink(portIfname('p1'));
  p = plan(d, await dp.observe());
  assert.deepEqual(
    p.ops.map((o) => o.op),
    ['port.plug', 'fdb.set', 'announce'],
  );
  await dp.apply(p);
  assert.deepEqual(plan(d, await dp.observe()).ops, []);
  // Remove port 3, add port 4: only those change.
  s.delta(
    2,
    [
      { kind: 'port.deleted', port: port(3, 3), version: 2, at: '' },
      { kind: 'port.created', port: port(4, 2), version: 2, at: '' },
    ],
    [4096],
  );
  d = desiredKernel(s, opts);
  p = plan(d, await dp.observe());
  assert.deepEqual(p.ops.map((o) => `${o.op}`).sort(), ['fdb.del', 'fdb.set', 'neigh.del', 'neigh.del', 'neigh.set', 'neigh.set']);
});

test('plan: a stale entry in the kernel is removed; entries of a removed VNI go with its devices', async () => {
  const dp = new FakeDataplane();
  dp.addLink(portIfname('p1'));
  const s = stateOf([port(1, 1), port(2, 2)]);
  await dp.apply(plan(desiredKernel(s, opts), await dp.observe()));
  dp.state.fdb.set('4096|02:57:46:00:00:99', '192.0.2.9');
  dp.state.neigh.set('4096|10.0.0.99', '02:57:46:00:00:99');
  const p = plan(desiredKernel(s, opts), await dp.observe());
  assert.deepEqual(p.ops.map((o) => o.op).sort(), ['fdb.del', 'neigh.del']);
  await dp.apply(p);
  s.delta(3, [{ kind: 'port.deleted', port: port(1, 1), version: 3, at: '' }], []);
  const q = plan(desiredKernel(s, opts), await dp.observe());
  assert.deepEqual(q.ops.map((o) => o.op).sort(), ['guard.del', 'vni.del']);
  await dp.apply(q);
  assert.equal(dp.state.fdb.size + dp.state.neigh.size + dp.state.vnis.size + dp.state.guards.size, 0);
});

test('plan: a move rewrites only FDB entries, on every host, and the destination announces', async () => {
  const before = [port(1, 1), port(2, 2), port(3, 3)];
  const moved = { ...port(2, 1) };
  const hosts = [1, 2, 3].map((h) => {
    const dp = new FakeDataplane();
    for (const p of before) if (p.hostId === `h${h}`) dp.addLink(portIfname(p.portId));
    const s = new AgentState(`h${h}`);
    s.snapshot(1, { host: host(h), ports: before, networks: [net], vnis: [4096], vips: [], peers: [] });
    return { dp, s };
  });
  for (const { dp, s } of hosts) await dp.apply(plan(desiredKernel(s, opts), await dp.observe()));
  hosts[0]?.dp.addLink(portIfname('p2'));
  hosts[1]?.dp.removeLink(portIfname('p2'));
  const ops: string[][] = [];
  for (const { dp, s } of hosts) {
    s.delta(2, [{ kind: 'port.moved', port: moved, from: { hostId: 'h2', underlayIp: '192.0.2.2' }, version: 2, at: '' }], [4096]);
    const p = plan(desiredKernel(s, opts), await dp.observe());
    ops.push(p.ops.map((o) => o.op));
    assert.equal((await dp.apply(p)).failed.length, 0);
    assert.equal(dp.state.fdb.get('4096|02:57:46:00:00:02'), s.hostId === 'h1' ? `@${portIfname('p2')}` : '192.0.2.1');
  }
  assert.deepEqual(ops[0], ['guard.set', 'port.plug', 'fdb.set', 'announce']);
  assert.deepEqual(ops[1], ['fdb.set', 'guard.del']);
  assert.deepEqual(ops[2], ['fdb.set']);
});

test('agent: failed steps are retried and acknowledged versions are in the kernel', async () => {
  const dp = new FakeDataplane();
  dp.addLink(portIfname('p1'));
  const agent = new Agent({ hostId: 'h1', dataplane: dp, resyncMs: 0 });
  dp.failNext('neigh.set', 2);
  await agent.handler.snapshot(1, { host: host(1), ports: [port(1, 1), port(2, 2)], networks: [net], vnis: [4096], vips: [], peers: [] });
  assert.equal(agent.stats.failures['neigh.set'], 2);
  const deadline = Date.now() + 3000;
  while (dp.state.neigh.size < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(dp.state.neigh.size, 4, 'the retry put the failed neighbours in');
  assert.deepEqual(plan(agent.desired(), await dp.observe()).ops, []);
  agent.stop();
});

test('agent: deltas arriving during a reconcile are coalesced', async () => {
  const dp = new FakeDataplane();
  const agent = new Agent({ hostId: 'h1', dataplane: dp, resyncMs: 0 });
  await agent.handler.snapshot(1, { host: host(1), ports: [port(1, 1)], networks: [net], vnis: [4096], vips: [], peers: [] });
  const n = agent.stats.reconciles;
  await Promise.all([2, 3, 4, 5].map((i) => agent.handler.delta(i, [{ kind: 'port.created', port: port(i, 2), version: i, at: '' }], [4096])));
  assert.ok(agent.stats.reconciles - n <= 2, `${agent.stats.reconciles - n} passes for 4 deltas`);
  assert.equal(dp.state.fdb.size, 4);
  agent.stop();
});
