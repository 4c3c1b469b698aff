// The routed ports' guards on a real kernel: a VM (namespace) on a routed
// port of a "host" namespace, the host side written by RoutedPorts (what
// applyRouted runs), frames sent with scapy from the VM. A packet from its
// own address reaches the host; one with a forged source, a router
// advertisement and a DHCP server reply are dropped, each counted under its
// guard, which is what weft_routed_guard_drops_total exports.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { GATEWAY4 } from '../../src/agent/dataplane/linux/guards-routed.js';
import { RoutedPorts } from '../../src/agent/dataplane/linux/routed-ports.js';
import { portIfname } from '../../src/agent/names.js';
import { run } from '../../src/sys/exec.js';

const PYTHON = '/usr/bin/python3';
const ready = process.getuid?.() === 0 && spawnSync('nft', ['--version']).status === 0 && spawnSync(PYTHON, ['-c', 'import scapy']).status === 0;
const skip = ready ? false : 'needs root, nft and /usr/bin/python3 with scapy';

const P = `wrg${process.pid}-`;
const H = `${P}h`;
const VM = `${P}v`;
const IFNAME = portIfname('routed-guard-test-port');
const MAC = '02:00:5e:20:00:0a';
const ADDR = '203.0.113.10';

async function cleanup(): Promise<void> {
  for (const ns of [VM, H]) await run('ip', ['netns', 'del', ns]).catch(() => {});
}

/** Sends `frames` (scapy expressions) from the VM's eth0. */
async function send(frames: string[]): Promise<void> {
  const py = `from scapy.all import *\nconf.verb = 0\nfor f in [${frames.join(', ')}]:\n    sendp(f, iface='eth0')\n`;
  await run('ip', ['netns', 'exec', VM, PYTHON, '-c', py]);
}

const byGuard = async (r: RoutedPorts) => new Map((await r.counters()).map((c) => [c.guard, c.packets]));

test('routed guards on a real kernel: forged sources, RAs and DHCP replies dropped and counted by guard', { skip }, async (t) => {
  t.after(cleanup);
  await cleanup();
  const ip = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
  for (const ns of [H, VM]) await run('ip', ['netns', 'add', ns]);
  await ip(H, 'link', 'add', IFNAME, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', VM);
  await ip(VM, 'link', 'set', 'eth0', 'address', MAC, 'up');
  await ip(VM, 'addr', 'add', `${ADDR}/32`, 'dev', 'eth0');
  await ip(VM, 'route', 'add', 'default', 'via', GATEWAY4, 'dev', 'eth0', 'onlink');
  const routed = new RoutedPorts({ run, netns: H });
  assert.deepEqual(await routed.counters(), [], 'no table yet: no counters, no error');
  await routed.apply([{ ifname: IFNAME, mtu: 1500 }], []);
  // What the agent's routing adds for the instance's address: the host reaches it through its port.
  await ip(H, 'route', 'add', `${ADDR}/32`, 'dev', IFNAME);
  await run('ip', ['netns', 'exec', H, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  assert.deepEqual(Object.fromEntries(await byGuard(routed)), { spoof: 0, ra: 0, 'dhcp-server': 0 });

  // Its own address: answered (the gateway is the host's side of the port).
  const ok = await run('ip', ['netns', 'exec', VM, 'ping', '-c', '2', '-i', '0.2', '-W', '2', GATEWAY4], { okCodes: [1] });
  assert.match(ok.stdout, / 0% packet loss/, ok.stdout);

  const gw = (await run('ip', ['-n', H, '-j', 'link', 'show', IFNAME])).stdout;
  const hostMac = (JSON.parse(gw) as { address: string }[])[0]?.address as string;
  const eth = `Ether(src='${MAC}', dst='${hostMac}')`;
  await send([
    // Three forged sources: another tenant's address, a private one, the host's own gateway.
    `${eth}/IP(src='203.0.113.99', dst='${GATEWAY4}')/ICMP()`,
    `${eth}/IP(src='10.0.0.1', dst='198.51.100.1')/UDP(sport=4000, dport=4000)`,
    `${eth}/IP(src='192.0.2.1', dst='198.51.100.1')/UDP(sport=4000, dport=4000)`,
    `Ether(src='${MAC}', dst='33:33:00:00:00:01')/IPv6(src='fe80::5eff:fe20:a', dst='ff02::1', hlim=255)/ICMPv6ND_RA()`,
    `${eth}/IP(src='${ADDR}', dst='255.255.255.255')/UDP(sport=67, dport=68)/BOOTP(op=2)`,
  ]);
  const after = await byGuard(routed);
  assert.equal(after.get('spoof'), 3, `spoof counted each forged source: ${JSON.stringify([...after])}`);
  assert.equal(after.get('ra'), 1);
  assert.equal(after.get('dhcp-server'), 1);
  // The legitimate pings above were not counted as anything.
  const again = await run('ip', ['netns', 'exec', VM, 'ping', '-c', '1', '-W', '2', GATEWAY4], { okCodes: [1] });
  assert.match(again.stdout, / 0% packet loss/);
  assert.equal((await byGuard(routed)).get('spoof'), 3);

  await routed.remove();
  assert.deepEqual(await routed.counters(), [], 'the table removed: no counters');
});
