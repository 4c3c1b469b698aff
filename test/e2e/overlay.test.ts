// The host agent end to end on the real kernel: a server and one agent per
// host namespace, VMs as namespaces. Connectivity and isolation, no ARP/NDP
// on the underlay, guards seen in the agent's metrics, agent kill -9 with no
// loss, stale entries removed, moves with their blackout bounded (the target is the lab bench's) and no
// stale entry after 100 moves.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LinuxDataplane } from '../../src/agent/dataplane/linux/linux-dataplane.js';
import { capture, OverlayLab } from '../../src/lab/overlay-lab.js';

let c: OverlayLab;
let acmeVni = 0;
const HOSTS: [string, string][] = [
  ['h1', 'r1'],
  ['h2', 'r1'],
  ['h3', 'r2'],
];

before(async () => {
  c = await OverlayLab.start({ name: `wo${process.pid % 1000}`, hosts: HOSTS });
  // Two tenants with the same subnets: only the VNI keeps them apart.
  await c.network('acme', 'private', ['10.0.0.0/24', 'fd00:10::/64']);
  await c.network('globex', 'private', ['10.0.0.0/24', 'fd00:10::/64']);
  await c.vm('a1', { tenant: 'acme', network: 'private', host: 'h1' });
  await c.vm('a2', { tenant: 'acme', network: 'private', host: 'h2' });
  await c.vm('a3', { tenant: 'acme', network: 'private', host: 'h3' });
  await c.vm('b1', { tenant: 'globex', network: 'private', host: 'h1' });
  await c.vm('b2', { tenant: 'globex', network: 'private', host: 'h3' });
  await c.vm('b3', { tenant: 'globex', network: 'private', host: 'h3' });
  await c.vm('b4', { tenant: 'globex', network: 'private', host: 'h2' });
  await c.converged();
  const nets = await c.api.get<{ items: { vni: number }[] }>('/v1/networks?tenant=acme');
  acmeVni = nets.items[0]?.vni ?? 0;
});

after(async () => {
  await c?.destroy();
});

const ip4 = (vm: string) => c.vms.get(vm)?.port.ipv4 as string;
const ip6 = (vm: string) => c.vms.get(vm)?.port.ipv6 as string;

test('same overlay reachable over IPv4 and IPv6 across hosts; other tenants not; no ARP/NDP on the underlay', async () => {
  const caps = await Promise.all([...c.hosts.values()].map((h) => capture(c.lab, h.lab.ns, 'ul0', `${c.dir}/ul-${h.name}.pcap`)));
  try {
    for (const [from, to] of [
      ['a1', 'a2'],
      ['a1', 'a3'],
      ['a2', 'a3'],
      ['b1', 'b2'],
      ['b4', 'b1'],
    ] as const) {
      assert.equal((await c.ping(from, ip4(to))).received, 3, `${from} -> ${to} IPv4\n${c.logs()}`);
      assert.equal((await c.ping(from, ip6(to))).received, 3, `${from} -> ${to} IPv6`);
    }
    // Overlapping subnets: b4's address exists only in globex; acme cannot reach it.
    const acme = ['a1', 'a2', 'a3'].flatMap((v) => [ip4(v), ip6(v)]);
    assert.ok(!acme.includes(ip4('b4')) && !acme.includes(ip6('b4')), `b4 ${ip4('b4')} must be globex-only`);
    assert.equal((await c.ping('a1', ip4('b4'), { count: 2, wait: 1 })).received, 0, 'acme reaches a globex-only address');
    assert.equal((await c.ping('a1', ip6('b4'), { count: 2, wait: 1 })).received, 0, 'acme reaches a globex-only IPv6 address');
    // The same address in both tenants answers each from its own tenant.
    assert.equal(ip4('a1'), ip4('b1'));
    const neigh = (await c.lab.exec(c.vmNs('a2'), 'ip', ['neigh', 'show', ip4('a1')])).stdout;
    assert.match(neigh, new RegExp(c.vms.get('a1')?.port.mac as string), 'a2 resolved a1, not b1');
  } finally {
    const lines = (await Promise.all(caps.map((k) => k.stop()))).flat();
    const vxlan = lines.filter((l) => / > [\d.]+\.4789: VXLAN/.test(l));
    assert.ok(vxlan.length >= 40, `the pings crossed the underlay as VXLAN (${vxlan.length} packets)`);
    const innerNd = vxlan.filter((l) => /\| .*(ARP|ICMP6, neighbor|ICMP6, router)/.test(l));
    assert.deepEqual(innerNd, [], 'ARP or NDP inside VXLAN');
    const broadcast = vxlan.filter(
      (l) => /\| ff:ff:ff:ff:ff:ff|\| 33:33:/.test(l.split('| ')[1] ?? '') || /> (ff:ff:ff:ff:ff:ff|33:33:)/.test(l.split('|')[0] ?? ''),
    );
    assert.deepEqual(broadcast, [], 'broadcast or multicast over the underlay');
    // Outside VXLAN the underlay carries only its own hop-by-hop neighbour traffic (host <-> rack router).
    const other = lines.filter((l) => !/ > [\d.]+\.4789: VXLAN/.test(l));
    for (const l of other)
      assert.match(
        l,
        /ARP \(0x0806\).*: (Request who-has 192\.0\.2\.\d+ tell 192\.0\.2\.\d+|Reply 192\.0\.2\.\d+ is-at)|ICMP6, (neighbor|router solicitation|multicast listener)/,
        `unexpected underlay packet: ${l}`,
      );
    const tenant = other.filter((l) => /10\.0\.0\.|fd00:10:/.test(l));
    assert.deepEqual(tenant, [], 'tenant addresses seen outside VXLAN');
  }
});

test('a spoofed packet from a VM is dropped and counted in the agent metrics', async () => {
  const a1 = c.vms.get('a1');
  assert.ok(a1);
  const script = `from scapy.all import Ether, IP, ICMP, sendp
sendp(Ether(src="${a1.port.mac}", dst="ff:ff:ff:ff:ff:ff")/IP(src="10.0.0.250", dst="${ip4('a2')}")/ICMP(), iface="eth0", count=5, verbose=False)`;
  await c.lab.exec(a1.vm.ns, '/usr/bin/python3', ['-c', script]);
  const text = await c.metrics('h1');
  const m = /weft_guard_drops_total\{port="([^"]+)",guard="spoof-ipv4"\} (\d+)/.exec(text);
  assert.ok(
    m,
    `no spoof-ipv4 counter in:\n${text
      .split('\n')
      .filter((l) => l.includes('guard'))
      .join('\n')}`,
  );
  assert.equal(m[1], a1.port.id);
  assert.ok(Number(m[2]) >= 5, `counted ${m[2]}`);
});

test('agent kill -9 and restart during a continuous ping loses nothing; a stale entry is removed', async () => {
  const loop = c.pingLoop('a1', ip4('a3'), 0.01);
  await new Promise((r) => setTimeout(r, 300));
  await c.killAgent('h1');
  await c.killAgent('h3');
  // Left behind in the kernel while no agent runs: entries nobody wants.
  await c.lab.exec(c.host('h1').lab.ns, 'bridge', ['fdb', 'append', '02:57:46:ff:00:01', 'dev', vx(), 'dst', '192.0.2.99', 'self', 'permanent']);
  await c.lab.exec(c.host('h1').lab.ns, 'ip', [
    'neigh',
    'replace',
    '10.0.0.199',
    'lladdr',
    '02:57:46:ff:00:01',
    'dev',
    vx().replace('wvx', 'wbr'),
    'nud',
    'permanent',
  ]);
  await new Promise((r) => setTimeout(r, 300));
  await c.startAgent('h1');
  await c.startAgent('h3');
  await c.converged();
  // Pings after convergence too: the compiled agent restarts in well under a second,
  // so this window, not the restart, keeps the loop long enough to mean something.
  await new Promise((r) => setTimeout(r, 800));
  const s = await loop.stop();
  assert.ok(s.sent > 100, `sent ${s.sent}`);
  assert.equal(s.sent - s.received, 0, `lost ${s.sent - s.received} of ${s.sent} across the restart`);
  const seen = await new LinuxDataplane({ netns: c.host('h1').lab.ns }).observe();
  assert.ok(![...seen.fdb.keys()].some((k) => k.endsWith('02:57:46:ff:00:01')), 'the stale FDB entry is still there');
  assert.ok(![...seen.neigh.keys()].some((k) => k.endsWith('10.0.0.199')), 'the stale neighbour is still there');
});

test('a move loses at most 10 pings at 10 ms; after 100 moves no host points anywhere wrong', async () => {
  const loop = c.pingLoop('a1', ip4('a2'), 0.01);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  await c.move('a2', 'h3');
  await c.converged();
  const moveMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 300));
  const s = await loop.stop();
  const lost = s.sent - s.received;
  process.stdout.write(`# move: ${lost} of ${s.sent} pings lost (10 ms apart), move + convergence ${moveMs.toFixed(0)} ms\n`);
  // A sanity bound (500 ms): the 100 ms blackout target is measured by `npm run bench -- lab`, not by a timed test.
  assert.ok(lost <= 50, `lost ${lost} pings in a move\n${c.logs()}`);
  assert.equal((await c.ping('a3', ip6('a2'))).received, 3, 'IPv6 after the move');

  const hosts = ['h1', 'h2', 'h3'];
  for (let i = 0; i < 100; i++) await c.move('a2', hosts[i % 3] as string);
  await c.converged(30_000);
  const where = new Map<string, string>();
  for (const v of c.vms.values()) where.set(`${v.port.mac}`, c.host(v.vm.host).lab.underlayIp);
  for (const h of c.hosts.values()) {
    const seen = await new LinuxDataplane({ netns: h.lab.ns }).observe();
    for (const [key, dst] of seen.fdb) {
      const mac = key.split('|')[1] as string;
      const want = where.get(mac);
      assert.ok(want, `${h.name}: entry for unknown MAC ${key}`);
      if (want === h.lab.underlayIp) assert.ok(dst.startsWith('@'), `${h.name}: local ${mac} points at ${dst}`);
      else assert.equal(dst, want, `${h.name}: ${mac} points at ${dst}, the port is on ${want}`);
    }
  }
  assert.equal((await c.ping('a1', ip4('a2'))).received, 3, 'reachable after 100 moves');
});

/** The acme network's VXLAN device. */
const vx = () => `wvx${acmeVni}`;
