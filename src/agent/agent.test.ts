// The agent never plugs a port without its guard: a port whose guard spec is
// refused, or whose guard nft does not take, is kept unplugged (unplugged if
// it was plugged) and reported in `unguarded`; the ports beside it are
// guarded and plugged. On FakeDataplane, which holds the contract's rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostInfo, LoggedChange, NetworkInfo, PortMapping } from '../model/changes.js';
import type { UnguardedPort } from '../stream/protocol.js';
import { until } from '../sys/until.js';
import { Agent } from './agent.js';
import { FakeDataplane } from './dataplane/fake/fake-dataplane.js';
import { guardSpecHash } from './dataplane/guard-spec.js';
import { portIfname } from './names.js';

const host: HostInfo = { hostId: 'h1', name: 'h1', siteId: 's', rackId: 'r', underlayIp: '192.0.2.1', asn: null, state: 'active', ipv6Prefix: null };
const net: NetworkInfo = { networkId: 'n1', tenantId: 't', kind: 'overlay', vni: 4096, mtu: 1450, subnets: [], arpRate: null, ndRate: null };
const port = (i: number, o: Partial<PortMapping> = {}): PortMapping => ({
  portId: `p${i}`,
  instanceId: `i${i}`,
  tenantId: 't',
  networkId: 'n1',
  networkKind: 'overlay',
  vni: 4096,
  mac: `02:57:46:00:00:0${i}`,
  ipv4: `10.0.0.${i}`,
  ipv6: `fd00::${i}`,
  hostId: 'h1',
  underlayIp: '192.0.2.1',
  ...o,
});
const ifname = (i: number) => portIfname(`p${i}`);
const updated = (version: number, before: PortMapping, after: PortMapping): LoggedChange => ({ kind: 'port.updated', port: after, before, version, at: '' });

function agentOn(dp: FakeDataplane) {
  const agent = new Agent({ hostId: 'h1', dataplane: dp, resyncMs: 0 });
  const reports: UnguardedPort[][] = [];
  agent.onUnguarded = (ports) => reports.push(ports);
  return { agent, reports };
}

/** The host as the kernel holds it: which ports are plugged, which guarded. */
const plugged = (dp: FakeDataplane) => [...dp.state.plugs.keys()].sort();
const guarded = (dp: FakeDataplane) => [...dp.state.guards.keys()].sort();

test('agent: a port whose guard spec is refused stays unplugged and is reported; the ports beside it are guarded and plugged', async () => {
  const dp = new FakeDataplane();
  for (const i of [1, 2, 3]) dp.addLink(ifname(i));
  const { agent, reports } = agentOn(dp);
  // Port 2 holds an address the server should have refused (written around its checks).
  const ports = [port(1), port(2, { ipv4: '224.0.0.2' }), port(3), port(4, { hostId: 'h2', underlayIp: '192.0.2.2' })];
  await agent.handler.snapshot(1, { host, ports, networks: [net], vnis: [4096], vips: [], peers: [] });
  assert.deepEqual(plugged(dp), [ifname(1), ifname(3)].sort());
  assert.deepEqual(guarded(dp), [ifname(1), ifname(3)].sort());
  assert.equal(dp.state.fdb.get(`4096|${port(2).mac}`), undefined, 'nothing points at it');
  assert.equal(dp.state.fdb.get(`4096|${port(4).mac}`), '192.0.2.2', 'remote ports are programmed');
  const u = agent.unguardedPorts();
  assert.equal(u.length, 1);
  assert.deepEqual({ ...u[0], reason: '' }, { portId: 'p2', ifname: ifname(2), kind: 'refused', reason: '' });
  assert.match(u[0]?.reason ?? '', /^invalid port\.ipv4 "224\.0\.0\.2": must be a unicast address, not multicast/);
  assert.deepEqual(reports, [u]);
  assert.deepEqual(agent.stats.guardFailures, { refused: 1, failed: 0 });
  assert.deepEqual(agent.stats.failures, {}, 'a refused spec is never sent, so nothing fails and nothing is retried');

  // Another change does not count it again, nor report it again.
  await agent.handler.delta(2, [{ kind: 'port.created', port: port(5, { hostId: 'h2', underlayIp: '192.0.2.2' }), version: 2, at: '' }], [4096]);
  assert.deepEqual(agent.stats.guardFailures, { refused: 1, failed: 0 });
  assert.equal(reports.length, 1);

  // Its record fixed, it is guarded, then plugged, and no longer reported.
  await agent.handler.delta(3, [updated(3, port(2, { ipv4: '224.0.0.2' }), port(2))], [4096]);
  assert.deepEqual(plugged(dp), [1, 2, 3].map(ifname).sort());
  assert.equal(
    dp.state.guards.get(ifname(2)),
    guardSpecHash({ ifname: ifname(2), mac: port(2).mac, ipv4: '10.0.0.2', ipv6: 'fd00::2', arpRate: 20, ndRate: 20 }),
  );
  assert.deepEqual(agent.unguardedPorts(), []);
  assert.deepEqual(reports.at(-1), []);
  agent.stop();
});

test('agent: a plugged port whose new spec is refused is unplugged and its old guard removed, not left forwarding on it', async () => {
  const dp = new FakeDataplane();
  for (const i of [1, 2]) dp.addLink(ifname(i));
  const { agent } = agentOn(dp);
  await agent.handler.snapshot(1, { host, ports: [port(1), port(2)], networks: [net], vnis: [4096], vips: [], peers: [] });
  assert.deepEqual(plugged(dp), [1, 2].map(ifname).sort());
  // The old guard allows 10.0.0.2, which may be another port's by now.
  await agent.handler.delta(2, [updated(2, port(2), port(2, { ipv6: 'fe80::2' }))], [4096]);
  assert.deepEqual(plugged(dp), [ifname(1)]);
  assert.deepEqual(guarded(dp), [ifname(1)]);
  assert.deepEqual(
    agent.unguardedPorts().map((p) => [p.portId, p.kind]),
    [['p2', 'refused']],
  );
  assert.match(agent.unguardedPorts()[0]?.reason ?? '', /port\.ipv6 "fe80::2".*link-local/);
  agent.stop();
});

test('agent: a guard nft does not take keeps the port unplugged (unplugged if it was) until a retry puts it in', async () => {
  const dp = new FakeDataplane();
  for (const i of [1, 2, 3]) dp.addLink(ifname(i));
  const { agent, reports } = agentOn(dp);
  // A new port: its guard fails, so it is not plugged; the port beside it is.
  dp.failNext('guard.set', 1);
  await agent.handler.snapshot(1, { host, ports: [port(1)], networks: [net], vnis: [4096], vips: [], peers: [] });
  assert.deepEqual(plugged(dp), []);
  assert.deepEqual(
    agent.unguardedPorts().map((p) => [p.portId, p.ifname, p.kind, p.reason]),
    [['p1', ifname(1), 'failed', 'guard.set: injected failure']],
  );
  assert.deepEqual(agent.stats.guardFailures, { refused: 0, failed: 1 });
  await until('the retry guards and plugs it', async () => dp.state.plugs.has(ifname(1)) && agent.unguarded.size === 0, 5000);
  assert.deepEqual(reports.at(-1), []);

  // A plugged port whose changed guard fails: unplugged, then plugged again by the retry.
  await agent.handler.delta(2, [{ kind: 'port.created', port: port(2), version: 2, at: '' }], [4096]);
  assert.deepEqual(plugged(dp), [1, 2].map(ifname).sort());
  const oldHash = dp.state.guards.get(ifname(2));
  dp.failNext('guard.set', 1);
  await agent.handler.delta(3, [updated(3, port(2), port(2, { ipv4: '10.0.0.22' }))], [4096]);
  assert.deepEqual(plugged(dp), [ifname(1)], 'not left plugged behind its old guard');
  assert.equal(dp.state.guards.get(ifname(2)), oldHash, 'the old chain stays (harmless: nothing is plugged behind it)');
  assert.equal(agent.unguarded.get(ifname(2))?.kind, 'failed');
  await until('the retry guards and plugs it', async () => dp.state.plugs.has(ifname(2)) && agent.unguarded.size === 0, 5000);
  assert.notEqual(dp.state.guards.get(ifname(2)), oldHash);
  assert.deepEqual(agent.stats.guardFailures, { refused: 0, failed: 2 });
  agent.stop();
});
