// AgentState: deltas given again after a reconnect (the stream resumes from
// the last acknowledged version, behind the state) change nothing; ports of
// VNIs the host no longer has go, whether the VNI set changed or not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostInfo, LoggedChange, NetworkInfo, PortMapping } from '../../model/changes.js';
import { AgentState } from './agent-state.js';

const host = (h: number, ip = `192.0.2.${h}`): HostInfo => ({
  hostId: `h${h}`,
  name: `h${h}`,
  siteId: 's',
  rackId: null,
  underlayIp: ip,
  asn: null,
  state: 'active',
  ipv6Prefix: null,
});
const net = (vni: number, mtu = 1450): NetworkInfo => ({
  networkId: `n${vni}`,
  tenantId: 't',
  kind: 'overlay',
  vni,
  mtu,
  subnets: [],
  arpRate: null,
  ndRate: null,
});
const port = (i: number, h: number, vni = 100): PortMapping => ({
  portId: `p${i}`,
  instanceId: `i${i}`,
  tenantId: 't',
  networkId: `n${vni}`,
  networkKind: 'overlay',
  vni,
  mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  ipv4: `10.0.${i >> 8}.${i & 255}`,
  ipv6: null,
  hostId: `h${h}`,
  underlayIp: `192.0.2.${h}`,
});
const at = <T extends object>(c: T, version: number) => ({ ...c, version, at: '' }) as unknown as LoggedChange;

/** Everything the state holds, comparable. */
function dump(s: AgentState) {
  return JSON.stringify({
    host: s.host,
    ports: [...s.ports.entries()].sort(([a], [b]) => a.localeCompare(b)),
    networks: [...s.networks.entries()].sort(),
    vips: [...s.vips.entries()].sort(),
    peers: [...s.peers.entries()].sort(),
    vnis: [...s.vnis].sort(),
  });
}

/** A run of deltas touching ports, hosts, networks and the host's VNIs. */
function deltas(): { version: number; changes: LoggedChange[]; vnis: number[] }[] {
  const out: { version: number; changes: LoggedChange[]; vnis: number[] }[] = [];
  let v = 1;
  const next = (changes: object[], vnis: number[]) => {
    v++;
    out.push({ version: v, changes: changes.map((c) => at(c, v)), vnis });
  };
  next([{ kind: 'port.created', port: port(10, 2) }], [100, 200]);
  next([{ kind: 'port.moved', port: port(10, 3), from: { hostId: 'h2', underlayIp: '192.0.2.2' } }], [100, 200]);
  next([{ kind: 'host.updated', host: host(3, '198.51.100.3'), before: host(3) }], [100, 200]);
  next([{ kind: 'port.updated', port: { ...port(11, 2), ipv4: '10.9.9.9' }, before: port(11, 2) }], [100, 200]);
  next([{ kind: 'network.updated', network: net(100, 1400) }], [100, 200]);
  // The host's last port on VNI 200 goes: so do the remote ports there.
  next([{ kind: 'port.deleted', port: port(1, 1, 200) }], [100]);
  next(
    [
      { kind: 'port.created', port: port(12, 2) },
      { kind: 'port.deleted', port: port(12, 2) },
    ],
    [100],
  );
  next([{ kind: 'port.created', port: port(13, 2) }], [100]);
  return out;
}

function fresh(): AgentState {
  const s = new AgentState('h1');
  s.snapshot(1, {
    host: host(1),
    ports: [port(0, 1), port(1, 1, 200), port(11, 2), port(20, 2, 200), port(21, 3, 200)],
    networks: [net(100), net(200)],
    vnis: [100, 200],
    vips: [],
    peers: [],
  });
  return s;
}

test('agent state: deltas given again from an acked version, in order, leave the state as applied once', () => {
  const ds = deltas();
  const once = fresh();
  for (const d of ds) once.delta(d.version, d.changes, d.vnis);
  const want = dump(once);
  assert.equal(once.ports.has('p20'), false, 'VNI 200 left with its remote ports');
  assert.equal(once.ports.get('p10')?.underlayIp, '198.51.100.3');
  // Applied up to each point, then resumed from every earlier acknowledged version.
  for (let upTo = 0; upTo <= ds.length; upTo++)
    for (let acked = 0; acked <= upTo; acked++) {
      const s = fresh();
      for (const d of ds.slice(0, upTo)) s.delta(d.version, d.changes, d.vnis);
      for (const d of ds.slice(acked)) s.delta(d.version, d.changes, d.vnis);
      assert.equal(dump(s), want, `applied to ${upTo}, resumed after ${acked}`);
      assert.equal(s.version, (ds.at(-1) as { version: number }).version);
    }
});

test('agent state: a port set off the host VNIs is dropped though the VNI set did not change', () => {
  const s = fresh();
  s.delta(2, [at({ kind: 'port.created', port: port(30, 2, 300) }, 2), at({ kind: 'port.created', port: port(31, 2) }, 2)], [100, 200]);
  assert.equal(s.ports.has('p30'), false, 'VNI 300 is not on the host');
  assert.equal(s.ports.has('p31'), true);
  // Moved onto another VNI the host does not have.
  s.delta(3, [at({ kind: 'port.updated', port: port(31, 2, 300), before: port(31, 2) }, 3)], [100, 200]);
  assert.equal(s.ports.has('p31'), false);
  // The host's own ports stay whatever their VNI.
  s.delta(4, [at({ kind: 'port.created', port: port(32, 1, 300) }, 4)], [100, 200]);
  assert.equal(s.ports.has('p32'), true);
  // A remote port off the VNIs in a snapshot (the server sends none) goes at the next delta.
  const t = new AgentState('h1');
  t.snapshot(1, { host: host(1), ports: [port(0, 1), port(40, 2, 300)], networks: [net(100)], vnis: [100], vips: [], peers: [] });
  t.delta(2, [], [100]);
  assert.equal(t.ports.has('p40'), false);
  assert.equal(t.ports.has('p0'), true);
});

test("agent state: its host's instances from a snapshot that has them, then instance changes; a move away drops one", () => {
  const s = fresh();
  assert.equal(s.instancesKnown, false, 'a snapshot without instances (a server that sends none)');
  const inst = (id: string, hostId = 'h1') => ({ instanceId: id, tenantId: 't', name: id, hostId, state: 'running', profile: null });
  s.snapshot(2, { host: host(1), ports: [], networks: [], vnis: [], vips: [], peers: [], instances: [inst('i1')] });
  assert.equal(s.instancesKnown, true);
  s.delta(3, [at({ kind: 'instance.updated', instance: inst('i2'), fromHostId: null }, 3)], []);
  assert.deepEqual([...s.instances.keys()].sort(), ['i1', 'i2']);
  s.delta(4, [at({ kind: 'instance.updated', instance: inst('i1', 'h2'), fromHostId: 'h1' }, 4)], []);
  s.delta(5, [at({ kind: 'instance.deleted', instance: inst('i2') }, 5)], []);
  assert.deepEqual([...s.instances.keys()], []);
});

test('agent state: a live move (its record has a migration URI) is departed at the source and arrived at the destination; a cold one neither', () => {
  const inst = (id: string, hostId: string, migrationUri: string | null) => ({
    instanceId: id,
    tenantId: 't',
    name: id,
    hostId,
    state: 'running',
    profile: null,
    migrationUri,
  });
  const src = fresh();
  src.snapshot(2, { host: host(1), ports: [], networks: [], vnis: [], vips: [], peers: [], instances: [inst('i1', 'h1', null), inst('i2', 'h1', null)] });
  src.delta(3, [at({ kind: 'instance.updated', instance: inst('i1', 'h2', 'qemu+tls://192.0.2.2/system'), fromHostId: 'h1' }, 3)], []);
  src.delta(4, [at({ kind: 'instance.updated', instance: inst('i2', 'h2', null), fromHostId: 'h1' }, 4)], []);
  assert.deepEqual([...src.departed.keys()], ['i1']);
  assert.equal(src.departed.get('i1')?.migrationUri, 'qemu+tls://192.0.2.2/system', "the destination's URI");
  // A reconnect's snapshot keeps what is departed; a delete ends it.
  src.snapshot(5, { host: host(1), ports: [], networks: [], vnis: [], vips: [], peers: [], instances: [] });
  assert.deepEqual([...src.departed.keys()], ['i1']);
  src.delta(6, [at({ kind: 'instance.deleted', instance: inst('i1', 'h2', null) }, 6)], []);
  assert.equal(src.departed.size, 0);

  const dst = new AgentState('h2');
  dst.snapshot(2, { host: host(2), ports: [], networks: [], vnis: [], vips: [], peers: [], instances: [] });
  dst.delta(3, [at({ kind: 'instance.updated', instance: inst('i1', 'h2', 'qemu+tls://192.0.2.2/system'), fromHostId: 'h1' }, 3)], []);
  dst.delta(4, [at({ kind: 'instance.updated', instance: inst('i2', 'h2', null), fromHostId: 'h1' }, 4)], []);
  dst.delta(5, [at({ kind: 'instance.updated', instance: inst('i3', 'h2', 'qemu+tls://192.0.2.2/system'), fromHostId: null }, 5)], []);
  assert.deepEqual([...dst.arrived], ['i1'], 'only a live move arrives; a new instance does not');
  dst.delta(6, [at({ kind: 'instance.updated', instance: inst('i1', 'h3', 'qemu+tls://192.0.2.3/system'), fromHostId: 'h2' }, 6)], []);
  assert.deepEqual([...dst.arrived], []);
  assert.deepEqual([...dst.departed.keys()], ['i1']);
});
