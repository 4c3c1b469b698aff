// Port guards on a real kernel: two VMs (namespaces) on a bridge in a "host"
// namespace, guards applied with NftGuards, forged frames sent with scapy
// from one VM and a capture on the other shows what got through.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type GuardPort, guardSpecHash } from '../../src/agent/dataplane/guard-spec.js';
import { NftGuards } from '../../src/agent/dataplane/linux/guards-nft.js';
import { portIfname } from '../../src/agent/names.js';
import { linkLocalOf } from '../../src/model/addr.js';
import { run } from '../../src/sys/exec.js';
import { until } from '../../src/sys/until.js';

const PYTHON = '/usr/bin/python3';
const ready =
  process.getuid?.() === 0 &&
  spawnSync('nft', ['--version']).status === 0 &&
  spawnSync('tcpdump', ['--version']).status === 0 &&
  spawnSync(PYTHON, ['-c', 'import scapy']).status === 0;
const skip = ready ? false : 'needs root, nft, tcpdump and /usr/bin/python3 with scapy';

const P = `wgd${process.pid}-`;
const H = `${P}h`;
const NS_A = `${P}a`;
const NS_B = `${P}b`;
const ARP_RATE = 20;
const vm = {
  a: { ns: NS_A, ifname: portIfname('guard-test-port-a'), mac: '02:00:5e:10:00:0a', ipv4: '10.100.0.1', ipv6: 'fd00:100::1' },
  b: { ns: NS_B, ifname: portIfname('guard-test-port-b'), mac: '02:00:5e:10:00:0b', ipv4: '10.100.0.2', ipv6: 'fd00:100::2' },
};
const guardOf = (v: typeof vm.a): GuardPort => ({ ifname: v.ifname, mac: v.mac, ipv4: v.ipv4, ipv6: v.ipv6, arpRate: ARP_RATE, ndRate: 50 });
const OTHER_MAC = '02:00:5e:10:00:99';

/** One forged or legitimate frame from VM A: a scapy expression (marker appended), and the guard that must drop it (null: must arrive). */
interface Case {
  marker: string;
  guard: string | null;
  frame: string;
}

const A = { mac: vm.a.mac, ip: vm.a.ipv4, ip6: vm.a.ipv6, ll: linkLocalOf(vm.a.mac) };
const B = { mac: vm.b.mac, ip: vm.b.ipv4, ip6: vm.b.ipv6 };
const eth = (dst = B.mac, src = A.mac) => `Ether(src='${src}', dst='${dst}')`;
const ip6 = (src: string, dst = B.ip6) => `IPv6(src='${src}', dst='${dst}', hlim=255)`;
const cases: Case[] = [
  { marker: 'ok-ipv4', guard: null, frame: `${eth()}/IP(src='${A.ip}', dst='${B.ip}')/UDP(sport=4000, dport=4000)` },
  { marker: 'ok-ipv6', guard: null, frame: `${eth()}/${ip6(A.ip6)}/UDP(sport=4000, dport=4000)` },
  { marker: 'ok-ll', guard: null, frame: `${eth()}/${ip6(A.ll, linkLocalOf(B.mac))}/UDP(sport=4000, dport=4000)` },
  { marker: 'ok-na', guard: null, frame: `${eth()}/${ip6(A.ip6)}/ICMPv6ND_NA(tgt='${A.ip6}', R=0, S=0, O=1)/ICMPv6NDOptDstLLAddr(lladdr='${A.mac}')` },
  { marker: 'ok-dad', guard: null, frame: `${eth('33:33:ff:00:00:01')}/${ip6('::', 'ff02::1:ff00:1')}/ICMPv6ND_NS(tgt='${A.ip6}')` },
  { marker: 'ok-garp', guard: null, frame: `${eth('ff:ff:ff:ff:ff:ff')}/ARP(op=1, hwsrc='${A.mac}', psrc='${A.ip}', pdst='${A.ip}')` },
  { marker: 'ok-probe', guard: null, frame: `${eth('ff:ff:ff:ff:ff:ff')}/ARP(op=1, hwsrc='${A.mac}', psrc='0.0.0.0', pdst='${A.ip}')` },
  { marker: 'spoof-mac', guard: 'spoof-mac', frame: `${eth(B.mac, OTHER_MAC)}/IP(src='${A.ip}', dst='${B.ip}')/UDP(sport=4000, dport=4000)` },
  { marker: 'bad-ethertype', guard: 'bad-ethertype', frame: `${eth()}/Dot1Q(vlan=5)/IP(src='${A.ip}', dst='${B.ip}')/UDP(sport=4000, dport=4000)` },
  { marker: 'spoof-ipv4', guard: 'spoof-ipv4', frame: `${eth()}/IP(src='10.100.0.99', dst='${B.ip}')/ICMP()` },
  { marker: 'arp-as-b', guard: 'spoof-arp', frame: `${eth()}/ARP(op=2, hwsrc='${A.mac}', psrc='${B.ip}', hwdst='${B.mac}', pdst='${B.ip}')` },
  { marker: 'arp-as-other', guard: 'spoof-arp', frame: `${eth()}/ARP(op=2, hwsrc='${A.mac}', psrc='10.100.0.77', hwdst='${B.mac}', pdst='${B.ip}')` },
  { marker: 'arp-hwsrc', guard: 'spoof-arp', frame: `${eth()}/ARP(op=2, hwsrc='${OTHER_MAC}', psrc='${A.ip}', hwdst='${B.mac}', pdst='${B.ip}')` },
  { marker: 'arp-probe-b', guard: 'spoof-arp', frame: `${eth('ff:ff:ff:ff:ff:ff')}/ARP(op=1, hwsrc='${A.mac}', psrc='0.0.0.0', pdst='${B.ip}')` },
  {
    marker: 'dhcp-offer',
    guard: 'dhcp-server',
    frame: `${eth('ff:ff:ff:ff:ff:ff')}/IP(src='${A.ip}', dst='255.255.255.255')/UDP(sport=67, dport=68)/BOOTP(op=2, yiaddr='10.100.0.50', chaddr=bytes.fromhex('${B.mac.replace(/:/g, '')}'))/DHCP(options=[('message-type', 'offer'), 'end'])`,
  },
  {
    marker: 'dhcp-discover',
    guard: 'dhcp-client',
    frame: `${eth('ff:ff:ff:ff:ff:ff')}/IP(src='0.0.0.0', dst='255.255.255.255')/UDP(sport=68, dport=67)/BOOTP(op=1)/DHCP(options=[('message-type', 'discover'), 'end'])`,
  },
  {
    marker: 'ra',
    guard: 'ra',
    frame: `${eth('33:33:00:00:00:01')}/${ip6(A.ll, 'ff02::1')}/ICMPv6ND_RA()/ICMPv6NDOptPrefixInfo(prefix='2001:db8:bad::', prefixlen=64)`,
  },
  { marker: 'dhcp6-advertise', guard: 'dhcp6-server', frame: `${eth()}/${ip6(A.ll, linkLocalOf(B.mac))}/UDP(sport=547, dport=546)` },
  { marker: 'spoof-ipv6', guard: 'spoof-ipv6', frame: `${eth()}/${ip6('fd00:100::99')}/UDP(sport=4000, dport=4000)` },
  { marker: 'na-for-b', guard: 'spoof-nd', frame: `${eth()}/${ip6(A.ip6)}/ICMPv6ND_NA(tgt='${B.ip6}', O=1)/ICMPv6NDOptDstLLAddr(lladdr='${A.mac}')` },
  { marker: 'na-lladdr', guard: 'spoof-nd', frame: `${eth()}/${ip6(A.ip6)}/ICMPv6ND_NA(tgt='${A.ip6}', O=1)/ICMPv6NDOptDstLLAddr(lladdr='${OTHER_MAC}')` },
  { marker: 'ns-lladdr', guard: 'spoof-nd', frame: `${eth()}/${ip6(A.ip6)}/ICMPv6ND_NS(tgt='${B.ip6}')/ICMPv6NDOptSrcLLAddr(lladdr='${OTHER_MAC}')` },
  { marker: 'dad-for-b', guard: 'spoof-nd', frame: `${eth('33:33:ff:00:00:02')}/${ip6('::', 'ff02::1:ff00:2')}/ICMPv6ND_NS(tgt='${B.ip6}')` },
];

/** Egress frames, sent into the bridge from a port that is not a guarded one (as from the vxlan port). */
const egress: Case[] = [
  {
    marker: 'egress-ok',
    guard: null,
    frame: `Ether(src='02:00:5e:10:00:ee', dst='ff:ff:ff:ff:ff:ff')/IP(src='10.100.0.254', dst='255.255.255.255')/UDP(sport=4000, dport=4000)`,
  },
  {
    marker: 'egress-dhcp',
    guard: 'egress-dhcp-server',
    frame: `Ether(src='02:00:5e:10:00:ee', dst='ff:ff:ff:ff:ff:ff')/IP(src='10.100.0.254', dst='255.255.255.255')/UDP(sport=67, dport=68)/BOOTP(op=2)/DHCP(options=[('message-type', 'offer'), 'end'])`,
  },
  {
    marker: 'egress-ra',
    guard: 'egress-ra',
    frame: `Ether(src='02:00:5e:10:00:ee', dst='33:33:00:00:00:01')/IPv6(src='fe80::ee', dst='ff02::1', hlim=255)/ICMPv6ND_RA()`,
  },
  {
    marker: 'egress-dhcp6',
    guard: 'egress-dhcp6-server',
    frame: `Ether(src='02:00:5e:10:00:ee', dst='33:33:00:01:00:02')/IPv6(src='fe80::ee', dst='ff02::1:2')/UDP(sport=547, dport=546)`,
  },
];

const SCAPY =
  'from scapy.all import Ether, ARP, Dot1Q, IP, UDP, ICMP, IPv6, ICMPv6ND_RA, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptPrefixInfo, BOOTP, DHCP, Raw, sendp, conf\nconf.verb = 0\n';

/** Sends each case's frame once, in order, with `wgd-<marker>` appended as its last bytes. */
async function sendCases(ns: string, iface: string, list: Case[]): Promise<void> {
  const frames = list.map((c) => `(${c.frame})/Raw(b'wgd-${c.marker}')`).join(',\n  ');
  await run(PYTHON, ['-c', `${SCAPY}sendp([\n  ${frames}\n], iface='${iface}')\n`], { netns: ns, timeoutMs: 20000 });
}

/** Sends `count` ARP requests from VM A in 20 back-to-back bursts over about a second; returns the seconds it took. */
async function arpFlood(count: number): Promise<number> {
  const py = `${SCAPY}import time
f = Ether(src='${A.mac}', dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc='${A.mac}', psrc='${A.ip}', pdst='${B.ip}')/Raw(b'wgd-flood')
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
raw = bytes(f)
t = time.monotonic()
for i in range(${count}):
    s.send(raw)
    if i % ${count / 20} == ${count / 20 - 1}:
        time.sleep(0.05)
print(time.monotonic() - t)
`;
  const r = await run(PYTHON, ['-c', py], { netns: NS_A, timeoutMs: 20000 });
  return Number(r.stdout.trim());
}

/** A running tcpdump on VM B's eth0 writing to a pcap file. */
async function capture(file: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', NS_B, 'tcpdump', '-i', 'eth0', '-Q', 'in', '--immediate-mode', '-U', '-n', '-s', '256', '-w', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (b: Buffer) => {
    err += b.toString();
  });
  await until('tcpdump listening', () => err.includes('listening on') || child.exitCode !== null, 5000);
  assert.equal(child.exitCode, null, `tcpdump failed: ${err}`);
  return child;
}

/** The frames of a classic pcap file (little- or big-endian). */
function pcapFrames(file: string): Buffer[] {
  const buf = readFileSync(file);
  if (buf.length < 24) return [];
  const le = buf.readUInt32LE(0) === 0xa1b2c3d4 || buf.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const out: Buffer[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const len = u32(o + 8);
    out.push(buf.subarray(o + 16, o + 16 + len));
    o += 16 + len;
  }
  return out;
}

const countMarker = (frames: Buffer[], marker: string) => {
  const m = Buffer.from(`wgd-${marker}`);
  return frames.filter((f) => f.includes(m)).length;
};

type Counts = Map<string, number>;
async function counts(g: NftGuards, ifname: string): Promise<Counts> {
  const m = new Map<string, number>();
  for (const c of await g.counters()) if (c.ifname === ifname) m.set(c.guard, c.packets);
  return m;
}
function delta(after: Counts, before: Counts): Counts {
  const m = new Map<string, number>();
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) !== 0) m.set(k, v - (before.get(k) ?? 0));
  return m;
}

async function cleanup(): Promise<void> {
  for (const ns of [NS_A, NS_B, H]) await run('ip', ['netns', 'del', ns]).catch(() => {});
}

async function topology(): Promise<void> {
  await cleanup();
  for (const ns of [H, NS_A, NS_B]) await run('ip', ['netns', 'add', ns]);
  const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
  await ip(H, 'link', 'add', 'wbr100', 'type', 'bridge', 'mcast_snooping', '0');
  await ip(H, 'link', 'set', 'wbr100', 'addrgenmode', 'none', 'up');
  for (const v of [vm.a, vm.b]) {
    await ip(H, 'link', 'add', v.ifname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', v.ns);
    await ip(H, 'link', 'set', v.ifname, 'addrgenmode', 'none', 'master', 'wbr100', 'up');
    await ip(v.ns, 'link', 'set', 'lo', 'up');
    await ip(v.ns, 'link', 'set', 'eth0', 'address', v.mac);
    await ip(v.ns, 'addr', 'add', `${v.ipv4}/24`, 'dev', 'eth0');
    await ip(v.ns, 'addr', 'add', `${v.ipv6}/64`, 'dev', 'eth0', 'nodad');
  }
  // An unguarded bridge port standing for the vxlan port (traffic from other hosts).
  await ip(H, 'link', 'add', 'wup0', 'type', 'veth', 'peer', 'name', 'wup1');
  await ip(H, 'link', 'set', 'wup0', 'addrgenmode', 'none', 'master', 'wbr100', 'up');
  await ip(H, 'link', 'set', 'wup1', 'addrgenmode', 'none', 'up');
}

test('NftGuards on a real kernel: observe, incremental apply, full sync', { skip }, async (t) => {
  t.after(cleanup);
  await cleanup();
  await run('ip', ['netns', 'add', H]);
  const g = new NftGuards(run, H);
  assert.deepEqual(await g.observe(), new Map(), 'no table yet: empty, no error');
  const [pa, pb] = [guardOf(vm.a), guardOf(vm.b)];
  await g.apply({ add: [], remove: [pa.ifname] });
  assert.deepEqual(await g.observe(), new Map(), 'removing what is not there succeeds');
  await g.apply({ add: [pa, pb], remove: [] });
  assert.deepEqual(
    await g.observe(),
    new Map([
      [pa.ifname, guardSpecHash(pa)],
      [pb.ifname, guardSpecHash(pb)],
    ]),
  );
  const pa2 = { ...pa, ndRate: 7 };
  await g.apply({ add: [pa2], remove: [] });
  await g.apply({ add: [pa2], remove: [] });
  assert.equal((await g.observe()).get(pa.ifname), guardSpecHash(pa2), 'a changed spec replaces the chain');
  await g.apply({ add: [], remove: [pb.ifname] });
  await g.apply({ add: [], remove: [pb.ifname] });
  assert.deepEqual([...(await g.observe()).keys()], [pa.ifname]);
  await g.sync([pb]);
  assert.deepEqual([...(await g.observe()).keys()], [pb.ifname], 'sync replaces everything');
  const counters = await g.counters();
  assert.ok(counters.length > 0 && counters.every((c) => c.packets === 0));
  assert.deepEqual(
    counters.filter((c) => c.ifname === '').map((c) => c.guard),
    ['egress-dhcp-server', 'egress-dhcp6-server', 'egress-ra'],
  );
});

test('guards drop spoofed, DHCP, RA and rogue ND frames and rate-limit ARP, with real packets', { skip, timeout: 60000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wgd-'));
  let tcpdump: ChildProcess | null = null;
  t.after(async () => {
    if (tcpdump && tcpdump.exitCode === null && tcpdump.pid) process.kill(tcpdump.pid, 'SIGKILL');
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const t0 = Date.now();
  await topology();
  const g = new NftGuards(run, H);
  const [pa, pb] = [guardOf(vm.a), guardOf(vm.b)];
  // Guards first, as the agent does, so the VMs' own boot-time traffic meets them too.
  await g.apply({ add: [pa, pb], remove: [] });
  for (const v of [vm.a, vm.b]) await run('ip', ['-n', v.ns, 'link', 'set', 'eth0', 'up']);
  const pcap = join(dir, 'b.pcap');
  tcpdump = await capture(pcap);

  // Legitimate traffic through the guards, both families.
  await run('ping', ['-c', '2', '-i', '0.2', '-W', '2', vm.b.ipv4], { netns: NS_A });
  await run('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', vm.b.ipv6], { netns: NS_A });

  const beforeA = await counts(g, vm.a.ifname);
  const beforeEgress = await counts(g, '');
  await Promise.all([sendCases(NS_A, 'eth0', cases), sendCases(H, 'wup1', egress)]);
  const afterA = await counts(g, vm.a.ifname);
  const afterEgress = await counts(g, '');

  const flood = 1000;
  const beforeFlood = await counts(g, vm.a.ifname);
  const seconds = await arpFlood(flood);
  const afterFlood = await counts(g, vm.a.ifname);
  await new Promise((r) => setTimeout(r, 300));
  process.kill(tcpdump.pid!, 'SIGINT');
  await new Promise((r) => tcpdump?.once('exit', r));
  const frames = pcapFrames(pcap);

  for (const c of [...cases, ...egress]) {
    const n = countMarker(frames, c.marker);
    if (c.guard === null) assert.equal(n, 1, `${c.marker} reaches B`);
    else assert.equal(n, 0, `${c.marker} never reaches B (${c.guard})`);
  }
  // Each drop counted under its guard on A's port, and nothing else dropped meanwhile.
  const want = new Map<string, number>();
  for (const c of cases) if (c.guard) want.set(c.guard, (want.get(c.guard) ?? 0) + 1);
  // (A's kernel may itself send an MLD report from :: meanwhile: its link-local is still tentative.)
  const got = delta(afterA, beforeA);
  got.delete('mld-unspec');
  assert.deepEqual(Object.fromEntries(got), Object.fromEntries(want));
  const e = delta(afterEgress, beforeEgress);
  assert.equal(e.get('egress-dhcp-server'), 2, 'the broadcast offer toward both ports');
  assert.equal(e.get('egress-ra'), 2, 'the RA toward both ports');
  assert.equal(e.get('egress-dhcp6-server'), 2, 'the DHCPv6 reply toward both ports');

  // The ARP flood is cut to burst + rate x duration.
  const passed = countMarker(frames, 'flood');
  const dropped = delta(afterFlood, beforeFlood).get('arp-rate') ?? 0;
  const burst = Math.max(5, ARP_RATE);
  const bound = burst + Math.ceil(ARP_RATE * (seconds + 0.2)) + 2;
  t.diagnostic(`ARP flood: ${flood} sent in ${seconds.toFixed(3)} s, ${passed} reached B, ${dropped} dropped as arp-rate (bound ${bound})`);
  assert.equal(passed + dropped, flood, 'every flood frame either passed or was counted');
  // Other ARP earlier in the test may have taken a few tokens from the bucket.
  const low = Math.floor(ARP_RATE * seconds * 0.8);
  assert.ok(passed >= low && passed <= bound, `${passed} passed, expected ${low}..${bound}`);

  // B's own (legitimate) kernel traffic met its guards all along: nothing of it was dropped
  // but MLD reports sent from :: while its link-local was tentative.
  const bDrops = [...(await counts(g, vm.b.ifname))].filter(([guard, n]) => n > 0 && guard !== 'mld-unspec');
  assert.deepEqual(bDrops, [], "B's legitimate traffic is never dropped");

  // Rewriting A's chain (a spec change) resets only A's counters.
  const bBefore = await g.counters();
  await g.apply({ add: [{ ...pa, ndRate: 49 }], remove: [] });
  const bAfter = await g.counters();
  const keep = (cs: typeof bBefore) => cs.filter((c) => c.ifname !== vm.a.ifname);
  assert.deepEqual(keep(bAfter), keep(bBefore), "other ports' and egress counters survive an incremental change");
  assert.ok(bAfter.filter((c) => c.ifname === vm.a.ifname).every((c) => c.packets === 0));
  t.diagnostic(`real-packet test took ${Date.now() - t0} ms`);
});
