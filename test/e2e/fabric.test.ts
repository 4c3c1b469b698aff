// End-to-end test of the lab's BGP fabric: real BIRD on rack routers (ToRs),
// the core, or spines and the WAN router, rendered by src/lab/fabric.ts, and
// a hand-written BIRD on hosts announcing one anycast /32 (and /128). Needs
// root and BIRD 2.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import {
  type BirdProcess,
  enableL4Hashing,
  kernelRoute,
  linkEnds,
  type NextHop,
  protocols,
  rackUplink,
  startBird,
  waitEstablished,
} from '../../src/lab/bird.js';
import { type Host, Lab } from '../../src/lab/builder.js';
import {
  hostProtocol,
  rackProtocol,
  renderCoreConf,
  renderSpineConf,
  renderTorConf,
  renderWanConf,
  spineProtocol,
  uplinkProtocol,
} from '../../src/lab/fabric.js';
import { run } from '../../src/sys/exec.js';
import { until } from '../../src/sys/until.js';

const VIP4 = '203.0.113.10/32';
const VIP6 = '2001:db8:ffff::10/128';
const ORIGINATED = '198.51.100.0/24';
const [CORE_ASN, TOR_ASN] = [65000, 65001];
const HOST_ASN: Record<string, number> = { h1: 65101, h2: 65102 };

/** A minimal host BIRD: eBGP to its ToR, announcing the VIPs (optionally tagged GRACEFUL_SHUTDOWN), installing nothing. */
function hostConf(h: Host, o: { announce: boolean; gshut?: boolean; asn?: number; torAsn?: number }): string {
  const attrs = o.gshut ? ' { bgp_community.add((65535, 0)); }' : '';
  const vips = (family: 4 | 6, prefix: string) =>
    [`protocol static vip${family} {`, `  ipv${family};`, ...(o.announce ? [`  route ${prefix} blackhole${attrs};`] : []), '}'].join('\n');
  return `router id ${h.underlayIp};
protocol device {}
${vips(4, VIP4)}
${vips(6, VIP6)}
protocol bgp tor {
  local as ${o.asn ?? HOST_ASN[h.name]};
  neighbor ${h.gatewayIp} as ${o.torAsn ?? TOR_ASN};
  connect delay time 1;
  ipv4 { import all; export where proto = "vip4"; };
  ipv6 { import all; export where proto = "vip6"; };
}
`;
}

/** The prefixes in `birdc show route` output (lines starting a route, not its continuation lines). */
async function routePrefixes(bird: BirdProcess, args: string[]): Promise<string[]> {
  const out = await bird.birdc(['show', 'route', ...args]);
  return out
    .split('\n')
    .filter((l) => /^[0-9a-f:.]+\/\d+\s/.test(l))
    .map((l) => l.split(/\s/)[0]!)
    .sort();
}

const vias = (hops: NextHop[]) => hops.map((h) => h.via).sort();

test('a BGP fabric: hosts announce an anycast VIP, the ToR installs one ECMP route, the core one route to the ToR', async (t) => {
  const lab = await Lab.create({ name: `wf${process.pid % 10000}` });
  t.after(() => lab.destroy());
  const [h1, h2] = await Promise.all([lab.addHost('h1', { rack: 'r1' }), lab.addHost('h2', { rack: 'r1' })]);
  const up = await rackUplink(lab, 'r1');
  await Promise.all([enableL4Hashing(lab, 'r1'), enableL4Hashing(lab, 'core')]);

  const torConf = renderTorConf({
    name: 'r1',
    routerId: up.rack.ipv4,
    asn: TOR_ASN,
    uplink: { name: 'core', asn: CORE_ASN, ipv4: up.core.ipv4, multiprotocol: true },
    hosts: [h1, h2].map((h) => ({ name: h.name, asn: HOST_ASN[h.name]!, ipv4: h.underlayIp, multiprotocol: true })),
    originate: [{ prefix: ORIGINATED, path: [64500, 64496] }],
  });
  const coreConf = renderCoreConf({
    routerId: up.core.ipv4,
    asn: CORE_ASN,
    racks: [{ name: 'r1', asn: TOR_ASN, ipv4: up.rack.ipv4, multiprotocol: true }],
  });
  const t0 = performance.now();
  const [tor, core, b1, b2] = await Promise.all([
    startBird(lab, 'r1', torConf),
    startBird(lab, 'core', coreConf),
    startBird(lab, h1, hostConf(h1, { announce: true })),
    startBird(lab, h2, hostConf(h2, { announce: true })),
  ]);
  const birds = [tor, core, b1, b2];
  await Promise.all([
    waitEstablished(tor, [uplinkProtocol(), hostProtocol('h1'), hostProtocol('h2')]),
    waitEstablished(core, ['r_r1']),
    waitEstablished(b1, ['tor']),
    waitEstablished(b2, ['tor']),
  ]);
  t.diagnostic(`4 BIRDs started and 4 sessions established in ${(performance.now() - t0).toFixed(0)} ms`);

  const ecmp4 = [h1.underlayIp, h2.underlayIp].sort();
  const ecmp6 = [h1.underlayIp6, h2.underlayIp6].sort();
  const hopsAre = async (ns: string, prefix: string, want: string[]) => assert.deepEqual(vias(await kernelRoute(lab, ns, prefix)), want);
  const waitHops = (ns: string, prefix: string, want: string[], ms = 5000) =>
    until(`${prefix} in ${ns} via ${want.join(', ')}`, async () => JSON.stringify(vias(await kernelRoute(lab, ns, prefix))) === JSON.stringify(want), ms);

  await t.test('the ToR and the core hash ECMP on layer 4', async () => {
    for (const node of ['r1', 'core']) {
      const { stdout } = await lab.exec(node, 'sysctl', ['-n', 'net.ipv4.fib_multipath_hash_policy', 'net.ipv6.fib_multipath_hash_policy']);
      assert.deepEqual(stdout.trim().split('\n'), ['1', '1'], node);
    }
  });

  await t.test('the ToR installs one route per VIP with a next hop per announcing host', async () => {
    await waitHops('r1', VIP4, ecmp4);
    await waitHops('r1', VIP6, ecmp6);
    const hops = await kernelRoute(lab, 'r1', VIP4);
    assert.deepEqual(hops.map((h) => h.dev).sort(), ['h1', 'h2']);
    const proto = JSON.parse((await lab.exec('r1', 'ip', ['-j', 'route', 'show', 'exact', VIP4])).stdout) as Array<{ protocol: string }>;
    assert.deepEqual(
      proto.map((r) => r.protocol),
      ['bird'],
    );
  });

  await t.test("the core routes the VIP to the ToR; the lab's static default routes stay alone", async () => {
    await waitHops('core', VIP4, [up.rack.ipv4]);
    await waitHops('core', VIP6, [up.rack.ipv6]);
    assert.deepEqual(await kernelRoute(lab, 'r1', '0.0.0.0/0'), [{ via: up.core.ipv4, dev: 'core' }]);
    assert.deepEqual(await kernelRoute(lab, 'r1', '::/0'), [{ via: up.core.ipv6, dev: 'core' }]);
    assert.deepEqual(await kernelRoute(lab, 'core', '0.0.0.0/0'), []);
    // The core sends the ToR nothing, and the ToR never installs its originated routes.
    assert.deepEqual(await routePrefixes(tor, ['protocol', uplinkProtocol()]), []);
    assert.deepEqual(await kernelRoute(lab, 'r1', ORIGINATED), []);
  });

  await t.test('hosts get the default routes and the originated route, not each other’s VIP', async () => {
    for (const b of [b1, b2]) {
      assert.deepEqual(await routePrefixes(b, ['table', 'master4', 'protocol', 'tor']), ['0.0.0.0/0', ORIGINATED].sort());
      assert.deepEqual(await routePrefixes(b, ['table', 'master6', 'protocol', 'tor']), ['::/0']);
    }
    const detail = await b1.birdc(['show', 'route', ORIGINATED, 'all']);
    assert.match(detail, new RegExp(`BGP\\.as_path: ${TOR_ASN} 64500 64496\\n`));
  });

  await t.test('a host withdrawing the VIP leaves the other as the one next hop within 1 s', async () => {
    const t1 = performance.now();
    await b1.reconfigure(hostConf(h1, { announce: false }));
    await waitHops('r1', VIP4, [h2.underlayIp], 1000);
    const ms = performance.now() - t1;
    t.diagnostic(`withdrawal to one next hop in the ToR's kernel: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    await waitHops('r1', VIP6, [h2.underlayIp6]);
    await waitHops('core', VIP4, [up.rack.ipv4]);

    await b1.reconfigure(hostConf(h1, { announce: true }));
    await waitHops('r1', VIP4, ecmp4);
    await waitHops('r1', VIP6, ecmp6);
  });

  await t.test('a route tagged GRACEFUL_SHUTDOWN (65535, 0) loses ECMP; its session stays up', async () => {
    await b2.reconfigure(hostConf(h2, { announce: true, gshut: true }));
    await waitHops('r1', VIP4, [h1.underlayIp]);
    await waitHops('r1', VIP6, [h1.underlayIp6]);
    const detail = await tor.birdc(['show', 'route', VIP4, 'protocol', hostProtocol('h2'), 'all']);
    assert.match(detail, /BGP\.local_pref: 0\n/);
    assert.match(detail, /BGP\.community: .*\(65535,0\)/);
    const h2Session = (await protocols(tor)).find((p) => p.name === hostProtocol('h2'));
    assert.equal(h2Session?.state, 'up');
    assert.match(h2Session?.info ?? '', /^Established/);
    await hopsAre('core', VIP4, [up.rack.ipv4]);
  });

  await t.test('a config BIRD refuses fails startBird and reconfigure with its message; the running config stays', async () => {
    const refused = (e: Error & { code?: string }) => e.code === 'E_DATAPLANE' && /bird refused config .*syntax error/.test(e.message);
    await assert.rejects(startBird(lab, 'r1', 'protocol nonsense {}\n', { name: 'bad' }), refused);
    await assert.rejects(tor.reconfigure('protocol nonsense {}\n'), refused);
    await waitEstablished(tor, [uplinkProtocol(), hostProtocol('h1'), hostProtocol('h2')], 1000);
  });

  await t.test('destroy kills every BIRD and removes its files', async () => {
    const exits = birds.map((b) => new Promise((resolve) => (b.process.exitCode !== null ? resolve(null) : b.process.once('exit', resolve))));
    await lab.destroy();
    await Promise.all(exits);
    for (const b of birds) {
      assert.equal(existsSync(dirname(b.confPath)), false, b.confPath);
      assert.equal(existsSync(`/proc/${b.process.pid}`), false, `bird ${b.process.pid} in ${b.ns}`);
    }
    const { stdout } = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(stdout, new RegExp(`^${lab.name}-`, 'm'));
  });
});

test('sites: hosts -> ToRs -> spines -> WAN; the WAN routes the VIP to the spine of its site, the spine by ECMP over its racks', async (t) => {
  const lab = await Lab.create({ name: `wg${process.pid % 10000}` });
  t.after(() => lab.destroy());
  // Site 1 has racks a1 and a2 with a host each, announcing the VIP; site 2 one rack b1 with a host that does not.
  const place = { a1h1: ['a1', 'sp1', 0], a2h1: ['a2', 'sp1', 1], b1h1: ['b1', 'sp2', 32] } as const;
  const hosts = await Promise.all(Object.entries(place).map(([n, [rack, spine, link]]) => lab.addHost(n, { rack, spine, link })));
  const [a1h1, a2h1, b1h1] = hosts as [Host, Host, Host];
  assert.equal(a1h1.underlayIp, '192.0.2.1', 'the host link asked for');
  assert.deepEqual([lab.parentOf('a1'), lab.parentOf('sp1'), lab.parentOf('wan')], ['sp1', 'wan', undefined]);
  await assert.rejects(lab.addHost('x1', { rack: 'c1' }), /invalid spine \(missing\): is required: this lab's racks hang off spines/);
  await assert.rejects(lab.addHost('x2', { rack: 'a1', spine: 'sp2' }), /router "a1" hangs off "sp1", not "sp2"/);
  await assert.rejects(lab.addHost('x3', { rack: 'c1', spine: 'sp1', link: 1 }), /underlay link 1 is taken/);

  const asn: Record<string, number> = { wan: 65000, sp1: 65001, sp2: 65002, a1: 65010, a2: 65011, b1: 65012, a1h1: 65101, a2h1: 65102, b1h1: 65103 };
  const ends = new Map(await Promise.all(['a1', 'a2', 'b1', 'sp1', 'sp2'].map(async (n) => [n, await linkEnds(lab, n, lab.parentOf(n) as string)] as const)));
  const end = (n: string) => ends.get(n) as Awaited<ReturnType<typeof linkEnds>>;
  const peer = (n: string) => ({ name: n, asn: asn[n] as number, ipv4: end(n).near.ipv4, ipv6: end(n).near.ipv6 });
  const up = (n: string) => {
    const p = lab.parentOf(n) as string;
    return { name: p, asn: asn[p] as number, ipv4: end(n).far.ipv4, ipv6: end(n).far.ipv6 };
  };
  await Promise.all(['a1', 'a2', 'b1', 'sp1', 'sp2', 'wan'].map((n) => enableL4Hashing(lab, n)));
  const tor = (rack: string, h: Host) =>
    renderTorConf({
      name: rack,
      routerId: end(rack).near.ipv4,
      asn: asn[rack] as number,
      uplink: up(rack),
      hosts: [{ name: h.name, asn: asn[h.name] as number, ipv4: h.underlayIp }],
    });
  const birds = await Promise.all([
    startBird(lab, 'a1', tor('a1', a1h1)),
    startBird(lab, 'a2', tor('a2', a2h1)),
    startBird(lab, 'b1', tor('b1', b1h1)),
    startBird(lab, 'sp1', renderSpineConf({ name: 'sp1', routerId: end('sp1').near.ipv4, asn: 65001, uplink: up('sp1'), racks: [peer('a1'), peer('a2')] })),
    startBird(lab, 'sp2', renderSpineConf({ name: 'sp2', routerId: end('sp2').near.ipv4, asn: 65002, uplink: up('sp2'), racks: [peer('b1')] })),
    startBird(lab, 'wan', renderWanConf({ routerId: end('sp1').far.ipv4, asn: 65000, spines: [peer('sp1'), peer('sp2')] })),
    ...hosts.map((h) => startBird(lab, h, hostConf(h, { announce: h !== b1h1, asn: asn[h.name], torAsn: asn[h.rack] }))),
  ]);
  const [, , , sp1, , wan] = birds as BirdProcess[];
  await Promise.all([
    waitEstablished(sp1 as BirdProcess, [uplinkProtocol(), uplinkProtocol(6), rackProtocol('a1'), rackProtocol('a2', 6)]),
    waitEstablished(wan as BirdProcess, [spineProtocol('sp1'), spineProtocol('sp1', 6), spineProtocol('sp2'), spineProtocol('sp2', 6)]),
  ]);
  const waitHops = (ns: string, prefix: string, want: string[]) =>
    until(`${prefix} in ${ns} via ${want.join(', ')}`, async () => JSON.stringify(vias(await kernelRoute(lab, ns, prefix))) === JSON.stringify(want), 10_000);
  await waitHops('sp1', VIP4, [end('a1').near.ipv4, end('a2').near.ipv4].sort());
  await waitHops('wan', VIP4, [end('sp1').near.ipv4]);
  assert.deepEqual(await kernelRoute(lab, 'sp2', VIP4), [], 'routes travel up only: the other site learns nothing');

  // The underlay is static and jumbo: a host of one site reaches a host of the other with 8972 bytes, not fragmented.
  const ping = await lab.exec(a1h1, 'ping', ['-c1', '-W2', '-M', 'do', '-s', '8972', b1h1.underlayIp]);
  assert.match(ping.stdout, / 1 received/);
  const mtus = await Promise.all(
    [
      ['sp1', 'wan'],
      ['wan', 'sp2'],
      ['a1', 'sp1'],
    ].map(
      async ([ns, dev]) => (JSON.parse((await lab.exec(ns as string, 'ip', ['-j', 'link', 'show', 'dev', dev as string])).stdout) as { mtu: number }[])[0]?.mtu,
    ),
  );
  assert.deepEqual(mtus, [9000, 9000, 9000]);
});
