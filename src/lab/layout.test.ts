// Unit tests of the lab's cloud layout: names, ASNs, per-site pools that hold
// exactly their hosts' links, the limits, and the choices the seed makes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrContains, cidrsOverlap, parseCidr, parseIp } from '../model/addr.js';
import { mulberry32 } from '../model/prng.js';
import { type CloudShape, checkShape, cloudLayout, SHAPE_LIMITS, shuffle } from './layout.js';
import { DEFAULT_CLOUD, IFNAME_MAX, MAX_MGMT_HOSTS, MAX_P2P_LINKS, nsName, p2pAddrs } from './plan.js';

const shape = (o: Partial<CloudShape> = {}): CloudShape => ({ sites: 2, racksPerSite: 2, hostsPerRack: 2, tenants: 2, instances: 16, seed: 1, ...o });

test('the default: 2 sites x 2 racks x 2 hosts, named by site, rack and host, ASNs per level', () => {
  const l = cloudLayout(DEFAULT_CLOUD);
  assert.deepEqual(
    l.sites.map((s) => [s.name, s.spine, s.asn, s.underlayPool, s.public4, s.public6]),
    [
      ['s1', 's1sp', 65001, '192.0.2.0/26', '203.0.113.0/27', '2001:db8:101::/48'],
      ['s2', 's2sp', 65002, '192.0.2.64/26', '203.0.113.32/27', '2001:db8:102::/48'],
    ],
  );
  assert.deepEqual(
    l.racks.map((r) => `${r.name}@${r.site}:${r.asn}`),
    ['s1r1@s1:65010', 's1r2@s1:65011', 's2r1@s2:65012', 's2r2@s2:65013'],
  );
  assert.deepEqual(
    l.hosts.map((h) => `${h.name}:${h.link}:${h.asn}`),
    ['s1r1h1:0:65101', 's1r1h2:1:65102', 's1r2h1:2:65103', 's1r2h2:3:65104', 's2r1h1:32:65105', 's2r1h2:33:65106', 's2r2h1:34:65107', 's2r2h2:35:65108'],
  );
  assert.equal(l.vipSite, 's1');
  assert.equal(l.instances.length, 16);
});

test("every site's underlay pool holds exactly its hosts' addresses; no pool overlaps another", () => {
  // The most hosts each number of sites can have.
  for (const [sites, racksPerSite, hostsPerRack] of [
    [1, 4, 8],
    [2, 4, 4],
    [3, 2, 5],
    [4, 2, 4],
  ] as const) {
    const l = cloudLayout(shape({ sites, racksPerSite, hostsPerRack }));
    const pools = l.sites.flatMap((s) => [s.underlayPool, s.public4].map((p) => parseCidr('pool', p)));
    for (let i = 0; i < pools.length; i++) for (let j = i + 1; j < pools.length; j++) assert.ok(!cidrsOverlap(pools[i]!, pools[j]!), `${sites} sites`);
    for (const h of l.hosts) {
      const ip = parseIp('ip', p2pAddrs(h.link).b.v4.split('/')[0]);
      for (const s of l.sites) assert.equal(cidrContains(parseCidr('p', s.underlayPool), 4, ip.n), s.name === h.site, `${h.name} in ${s.name}`);
    }
  }
});

test('2 sites x 4 racks x 4 hosts fits: management addresses, underlay links, names', () => {
  const l = cloudLayout(shape({ racksPerSite: 4, hostsPerRack: 4, instances: 200 }));
  assert.equal(l.hosts.length, 32);
  assert.ok(l.hosts.length <= MAX_MGMT_HOSTS);
  // Host links at the bottom, one per ToR-spine and spine-WAN link from the top (builder.ts): 32 + 8 + 2.
  assert.ok(Math.max(...l.hosts.map((h) => h.link)) < MAX_P2P_LINKS - l.racks.length - l.sites.length);
  for (const n of [...l.hosts.map((h) => h.name), ...l.racks.map((r) => r.name), ...l.sites.map((s) => s.spine), 'wan', 'client'])
    assert.ok(n.length <= IFNAME_MAX && nsName('abcdef', n).length <= 19, n);
});

test('every tenant spans every site; instances are dealt to the tenants in turn', () => {
  const l = cloudLayout(shape({ sites: 3, racksPerSite: 1, hostsPerRack: 1, tenants: 3, instances: 10 }));
  const sitesOf = (t: string) => new Set(l.instances.filter((i) => i.tenant === t).map((i) => i.site));
  assert.deepEqual([...sitesOf('t1')].sort(), ['s1', 's2', 's3']);
  assert.deepEqual([...sitesOf('t3')].sort(), ['s1', 's2', 's3']);
  assert.deepEqual(l.instances.map((i) => i.name).sort(), ['t1vm1', 't1vm2', 't1vm3', 't1vm4', 't2vm1', 't2vm2', 't2vm3', 't3vm1', 't3vm2', 't3vm3']);
  assert.equal(l.instances.find((i) => i.name === 't2vm1')?.site, 's2');
});

test('the seed decides the creation order and the backends, and nothing else', () => {
  const a = cloudLayout(shape({ racksPerSite: 4, seed: 7 }));
  assert.deepEqual(cloudLayout(shape({ racksPerSite: 4, seed: 7 })), a, 'the same seed builds the same lab');
  const orders = new Set<string>();
  const backends = new Set<string>();
  for (let seed = 0; seed < 20; seed++) {
    const l = cloudLayout(shape({ racksPerSite: 4, seed }));
    orders.add(l.instances.map((i) => i.name).join());
    backends.add(l.backends.map((b) => b.host).join());
    assert.deepEqual(l.hosts, a.hosts);
    assert.deepEqual(l.sites, a.sites);
    assert.deepEqual(
      [...l.instances].sort((x, y) => x.name.localeCompare(y.name)),
      [...a.instances].sort((x, y) => x.name.localeCompare(y.name)),
    );
    // The first host of two different racks of the VIP's site.
    const racks = l.backends.map((b) => l.hosts.find((h) => h.name === b.host));
    assert.deepEqual(
      l.backends.map((b) => b.name),
      ['web1', 'web2'],
    );
    assert.ok(racks.every((h) => h?.site === 's1' && h.name.endsWith('h1')));
    assert.notEqual(racks[0]?.rack, racks[1]?.rack);
  }
  assert.ok(orders.size > 15, `${orders.size} orders from 20 seeds`);
  assert.ok(backends.size > 4, `${backends.size} backend pairs from 20 seeds`);
  // The backends do not move when only the number of instances changes.
  assert.deepEqual(cloudLayout(shape({ racksPerSite: 4, seed: 7, instances: 3 })).backends, a.backends);
});

test('one rack in the VIP site: two hosts of it; one host: one backend', () => {
  assert.deepEqual(
    cloudLayout(shape({ racksPerSite: 1, hostsPerRack: 3 })).backends.map((b) => b.host),
    ['s1r1h1', 's1r1h2'],
  );
  assert.deepEqual(
    cloudLayout(shape({ racksPerSite: 1, hostsPerRack: 1 })).backends.map((b) => b.host),
    ['s1r1h1'],
  );
});

test('shuffle: the same generator state gives the same order, of the same items', () => {
  assert.deepEqual(shuffle([1, 2, 3, 4, 5], mulberry32(42)), shuffle([1, 2, 3, 4, 5], mulberry32(42)));
  assert.deepEqual(shuffle([1, 2, 3, 4, 5], mulberry32(42)).sort(), [1, 2, 3, 4, 5]);
});

test('shapes out of range are refused, naming the field, the value and what is allowed', () => {
  const bad: Array<[Partial<CloudShape>, RegExp]> = [
    [{ sites: 0 }, /^invalid sites 0: must be an integer 1\.\.4$/],
    [{ sites: 5 }, /^invalid sites 5: must be an integer 1\.\.4$/],
    [{ racksPerSite: 9 }, /^invalid racksPerSite 9: must be an integer 1\.\.8$/],
    [{ hostsPerRack: 1.5 }, /^invalid hostsPerRack 1\.5/],
    [{ tenants: 0 }, /^invalid tenants 0/],
    [{ instances: 201 }, /^invalid instances 201: must be an integer 0\.\.200$/],
    [{ seed: -1 }, /^invalid seed -1: must be an integer 0\.\.4294967295$/],
    [{ seed: 'x' as never }, /^invalid seed "x"/],
    [{ sites: 2, racksPerSite: 4, hostsPerRack: 5 }, /^invalid hostsPerRack 5: sites x racksPerSite x hostsPerRack must be at most 32 \(is 40\)$/],
  ];
  for (const [o, re] of bad)
    assert.throws(
      () => checkShape(shape(o)),
      (e: Error & { code?: string }) => e.code === 'E_INVALID_ARG' && re.test(e.message),
      JSON.stringify(o),
    );
  assert.equal(SHAPE_LIMITS.hosts, 32);
});
