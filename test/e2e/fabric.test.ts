// End-to-end test of the lab's BGP fabric: real BIRD on a rack router (ToR)
// and the core, rendered by src/lab/fabric.ts, and a hand-written BIRD on two
// hosts announcing one anycast /32 (and /128). Needs root and BIRD 2.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { type BirdProcess, enableL4Hashing, kernelRoute, type NextHop, protocols, rackUplink, startBird, waitEstablished } from '../../src/lab/bird.js';
import { type Host, Lab } from '../../src/lab/builder.js';
import { hostProtocol, renderCoreConf, renderTorConf } from '../../src/lab/fabric.js';
import { run } from '../../src/sys/exec.js';
import { until } from '../../src/sys/until.js';

const VIP4 = '203.0.113.10/32';
const VIP6 = '2001:db8:ffff::10/128';
const ORIGINATED = '198.51.100.0/24';
const [CORE_ASN, TOR_ASN] = [65000, 65001];
const HOST_ASN: Record<string, number> = { h1: 65101, h2: 65102 };

/** A minimal host BIRD: eBGP to its ToR, announcing the VIPs (optionally tagged GRACEFUL_SHUTDOWN), installing nothing. */
function hostConf(h: Host, o: { announce: boolean; gshut?: boolean }): string {
  const attrs = o.gshut ? ' { bgp_community.add((65535, 0)); }' : '';
  const vips = (family: 4 | 6, prefix: string) =>
    [`protocol static vip${family} {`, `  ipv${family};`, ...(o.announce ? [`  route ${prefix} blackhole${attrs};`] : []), '}'].join('\n');
  return `router id ${h.underlayIp};
protocol device {}
${vips(4, VIP4)}
${vips(6, VIP6)}
protocol bgp tor {
  local as ${HOST_ASN[h.name]};
  neighbor ${h.gatewayIp} as ${TOR_ASN};
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
    core: { asn: CORE_ASN, ipv4: up.core.ipv4, multiprotocol: true },
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
    waitEstablished(tor, ['core', hostProtocol('h1'), hostProtocol('h2')]),
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
    assert.deepEqual(await routePrefixes(tor, ['protocol', 'core']), []);
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
    await waitEstablished(tor, ['core', hostProtocol('h1'), hostProtocol('h2')], 1000);
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
