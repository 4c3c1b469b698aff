// LinuxDataplane against the real kernel, in a namespace of the test's own:
// what it applies it observes back, a second plan is empty, stale entries
// are removed, and objects that are not weft's are never touched.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { emptyKernelState } from '../../src/agent/dataplane/dataplane.js';
import { LinuxDataplane } from '../../src/agent/dataplane/linux/linux-dataplane.js';
import { portIfname } from '../../src/agent/names.js';
import { desiredKernel } from '../../src/agent/reconcile/desired.js';
import { plan } from '../../src/agent/reconcile/plan.js';
import { AgentState } from '../../src/agent/state/agent-state.js';
import type { HostInfo, NetworkInfo, PortMapping } from '../../src/model/changes.js';
import { run } from '../../src/sys/exec.js';

const NS = `wdp${process.pid}`;
const VM = `wdp${process.pid}-vm`;
const opts = { lazy: false, arpRate: 20, ndRate: 20 };
const host: HostInfo = { hostId: 'h1', name: 'h1', siteId: 's', rackId: null, underlayIp: '192.0.2.1', asn: null, state: 'active', ipv6Prefix: null };
const net = (mtu: number): NetworkInfo => ({ networkId: 'n', tenantId: 't', kind: 'overlay', vni: 5000, mtu, subnets: [], arpRate: null, ndRate: null });
const port = (i: number, h: number): PortMapping => ({
  portId: `port-${i}`,
  instanceId: `i${i}`,
  tenantId: 't',
  networkId: 'n',
  networkKind: 'overlay',
  vni: 5000,
  mac: `02:57:46:00:01:${i.toString(16).padStart(2, '0')}`,
  ipv4: `10.1.0.${i}`,
  ipv6: `fd00:1::${i}`,
  hostId: `h${h}`,
  underlayIp: `192.0.2.${h}`,
});

const sh = (cmd: string) => run('sh', ['-c', cmd]);

before(async () => {
  await sh(`ip netns add ${NS} && ip netns add ${VM} && ip -n ${NS} link set lo up`);
  await sh(`ip -n ${NS} link add ul0 type veth peer name ul1 && ip -n ${NS} addr add 192.0.2.1/24 dev ul0 && ip -n ${NS} link set ul0 up`);
  await sh(`ip -n ${NS} link add ${portIfname('port-1')} type veth peer name eth0 netns ${VM}`);
  // Not weft's: a bridge and an entry that must survive every reconcile.
  await sh(
    `ip -n ${NS} link add br0 type bridge && ip -n ${NS} link set br0 up && ip -n ${NS} neigh add 10.9.9.9 lladdr 02:00:00:00:09:09 dev br0 nud permanent`,
  );
});

after(async () => {
  await sh(`ip netns del ${NS}; ip netns del ${VM}; true`);
});

async function converge(dp: LinuxDataplane, s: AgentState) {
  const p = plan(desiredKernel(s, opts), await dp.observe());
  const r = await dp.apply(p);
  assert.deepEqual(r.failed, []);
  return p;
}

test('apply, observe back, replan empty; stale entries removed; others untouched', async (t) => {
  const dp = new LinuxDataplane({ netns: NS, announce: false });
  t.after(() => dp.close());
  const s = new AgentState('h1');
  s.snapshot(1, { host, ports: [port(1, 1), port(2, 2), port(3, 3)], networks: [net(1450)], vnis: [5000], vips: [], peers: [] });
  const first = await converge(dp, s);
  assert.ok(first.ops.length > 5);
  const seen = await dp.observe();
  const want = desiredKernel(s, opts).state;
  assert.deepEqual(seen.vnis, want.vnis);
  assert.deepEqual(seen.fdb, want.fdb);
  assert.deepEqual(seen.neigh, want.neigh);
  assert.deepEqual(seen.plugs, want.plugs);
  assert.deepEqual(seen.guards, want.guards);
  assert.deepEqual(plan(desiredKernel(s, opts), seen).ops, []);

  // Someone (or an old agent) left entries behind; one entry of ours was altered.
  await sh(`bridge -n ${NS} fdb append 02:57:46:00:01:63 dev wvx5000 dst 192.0.2.99 self permanent`);
  await sh(`ip -n ${NS} neigh replace 10.1.0.99 lladdr 02:57:46:00:01:63 dev wbr5000 nud permanent`);
  await sh(`bridge -n ${NS} fdb replace 02:57:46:00:01:02 dev wvx5000 dst 192.0.2.77 self permanent`);
  const repair = await converge(dp, s);
  assert.deepEqual(repair.ops.map((o) => o.op).sort(), ['fdb.del', 'fdb.set', 'neigh.del']);
  assert.deepEqual(plan(desiredKernel(s, opts), await dp.observe()).ops, []);

  // An MTU change reaches the devices and the port.
  s.delta(2, [{ kind: 'network.updated', network: net(1400), version: 2, at: '' }], [5000]);
  await converge(dp, s);
  const link = JSON.parse((await run('ip', ['-n', NS, '-j', 'link', 'show', portIfname('port-1')])).stdout)[0];
  assert.equal(link.mtu, 1400);
  assert.deepEqual(plan(desiredKernel(s, opts), await dp.observe()).ops, []);

  // Everything goes when the host no longer has the VNI; br0 and its entry stay.
  s.delta(3, [{ kind: 'port.deleted', port: port(1, 1), version: 3, at: '' }], []);
  await converge(dp, s);
  const empty = await dp.observe();
  assert.deepEqual({ ...empty, links: new Set() }, emptyKernelState());
  const br0 = (await run('ip', ['-n', NS, 'neigh', 'show', 'dev', 'br0'])).stdout;
  assert.match(br0, /10\.9\.9\.9 lladdr 02:00:00:00:09:09 PERMANENT/);
});
