// Lazy mode end to end: agents program nothing remote up front, answer the
// kernel's l2/l3 misses with SVP lookups and apply SVP shoot-downs, and the
// VMs reach the same connectivity as in push mode, also after a move.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LinuxDataplane } from '../../src/agent/dataplane/linux/linux-dataplane.js';
import { OverlayLab } from '../../src/lab/overlay-lab.js';
import { until } from '../../src/sys/until.js';

let c: OverlayLab;

before(async () => {
  c = await OverlayLab.start({
    name: `wz${process.pid % 1000}`,
    hosts: [
      ['h1', 'r1'],
      ['h2', 'r1'],
      ['h3', 'r2'],
    ],
    lazy: true,
  });
  await c.network('acme', 'private', ['10.0.0.0/24', 'fd00:10::/64']);
  await c.vm('a1', { tenant: 'acme', network: 'private', host: 'h1' });
  await c.vm('a2', { tenant: 'acme', network: 'private', host: 'h2' });
  await c.vm('a3', { tenant: 'acme', network: 'private', host: 'h3' });
  await c.converged();
});

after(async () => {
  await c?.destroy();
});

const ip4 = (vm: string) => c.vms.get(vm)?.port.ipv4 as string;
const ip6 = (vm: string) => c.vms.get(vm)?.port.ipv6 as string;

/** Pings until answered: the first packets wait for the miss to be resolved (the VM's ARP/ND retries). */
async function reach(from: string, ip: string): Promise<void> {
  await until(`${from} reaches ${ip}`, async () => (await c.ping(from, ip, { count: 2, interval: 0.2, wait: 1 })).received > 0, 15_000);
  assert.equal((await c.ping(from, ip, { count: 5, interval: 0.05 })).received, 5, `${from} -> ${ip} after resolution`);
}

test('nothing remote is programmed up front', async () => {
  const seen = await new LinuxDataplane({ netns: c.host('h1').lab.ns }).observe();
  assert.equal(seen.vnis.size, 1);
  assert.equal([...seen.vnis.values()][0]?.lazy, true);
  assert.deepEqual(
    [...seen.fdb.values()].filter((d) => !d.startsWith('@')),
    [],
  );
  assert.equal(seen.neigh.size, 0);
});

test('misses answered over SVP give IPv4 and IPv6 connectivity across hosts', async () => {
  await reach('a1', ip4('a2'));
  await reach('a1', ip4('a3'));
  await reach('a3', ip6('a2'));
  const m = await c.metrics('h1');
  const resolved = Number(/weft_agent_lazy_events_total\{event="resolved"\} (\d+)/.exec(m)?.[1] ?? 0);
  assert.ok(resolved >= 1, `h1 resolved ${resolved} misses`);
  const neigh = (
    await c.lab.exec(c.host('h1').lab.ns, 'ip', [
      'neigh',
      'show',
      'dev',
      `wvx${[...(await new LinuxDataplane({ netns: c.host('h1').lab.ns }).observe()).vnis.keys()][0]}`,
    ])
  ).stdout;
  assert.match(neigh, new RegExp(`${ip4('a2').replace(/\./g, '\\.')} lladdr ${c.vms.get('a2')?.port.mac}`));
});

test('after a move, shoot-downs make every host look the port up again', async () => {
  await reach('a1', ip4('a2'));
  await c.move('a2', 'h3');
  await c.converged();
  await reach('a1', ip4('a2'));
  await reach('a2', ip6('a1'));
  const m = await c.metrics('h1');
  const shot = Number(/weft_agent_lazy_events_total\{event="shootdowns"\} (\d+)/.exec(m)?.[1] ?? 0);
  assert.ok(shot >= 1, `h1 applied ${shot} shoot-downs`);
  // h1's VTEP entry for a2 now points at h3.
  const fdb = (
    await c.lab.exec(c.host('h1').lab.ns, 'bridge', [
      'fdb',
      'show',
      'dev',
      `wvx${[...(await new LinuxDataplane({ netns: c.host('h1').lab.ns }).observe()).vnis.keys()][0]}`,
    ])
  ).stdout;
  assert.match(fdb, new RegExp(`${c.vms.get('a2')?.port.mac} dst ${c.host('h3').lab.underlayIp.replace(/\./g, '\\.')} self`));
});
