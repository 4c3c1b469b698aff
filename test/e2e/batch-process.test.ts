// The long-lived iproute2 batch processes on the real kernel, in a namespace
// of the test's own: failures found by line over several batches, iproute2's
// stale interface indexes when a device is made again under its name (and
// LinuxDataplane working around them), and a killed process replaced.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Op } from '../../src/agent/dataplane/dataplane.js';
import { IprouteBatch } from '../../src/agent/dataplane/linux/batch-process.js';
import { LinuxDataplane } from '../../src/agent/dataplane/linux/linux-dataplane.js';
import { run } from '../../src/sys/exec.js';

const NS = `wbp${process.pid}`;
const sh = (cmd: string) => run('sh', ['-c', cmd]);
const lines = (...ls: string[]) => [`${ls.join('\n')}\n`];
const vni = { vni: 5100, mtu: 1450, local: '192.0.2.1', lazy: false };
const remote = (mac: string, dst: string): Op => ({ op: 'fdb.set', vni: 5100, mac, dst });

before(async () => {
  await sh(`ip netns add ${NS} && ip -n ${NS} link set lo up`);
});

after(async () => {
  await sh(`ip netns del ${NS}; true`);
});

/** The VTEP's remote entries: mac -> dst. */
async function vtep(): Promise<Map<string, string>> {
  const r = await run('bridge', ['-n', NS, '-j', 'fdb', 'show', 'dev', 'wvx5100']);
  const out = new Map<string, string>();
  for (const e of JSON.parse(r.stdout || '[]') as { mac: string; dst?: string }[]) if (e.dst) out.set(e.mac, e.dst);
  return out;
}

test('IprouteBatch on the real ip: failed lines of each batch, numbered within it', async (t) => {
  const ip = new IprouteBatch('ip', { netns: NS });
  t.after(() => ip.close());
  const one = await ip.run(lines('link add wbpa type bridge', 'link add wbpa type bridge', 'link set dev wbpa up'));
  assert.equal(one.lost, null);
  assert.deepEqual(
    one.failed.map((f) => f.line),
    [2],
  );
  assert.match(one.failed[0]?.error ?? '', /File exists/);
  const two = await ip.run(lines('link set dev wbpa mtu 1400', 'link set dev wbp-nope up', 'link del wbpa', 'link del wbpa'));
  assert.deepEqual(
    two.failed.map((f) => f.line),
    [2, 4],
  );
  assert.match(two.failed[0]?.error ?? '', /wbp-nope/);
  assert.equal(ip.spawned, 1, 'both batches in one process');
});

test('bridge caches interface indexes: a device made again needs a fresh process, which LinuxDataplane starts', async (t) => {
  const br = new IprouteBatch('bridge', { netns: NS });
  t.after(() => br.close());
  const mk = `ip -n ${NS} link add wvx5100 type vxlan id 5100 local 192.0.2.1 dstport 4789 nolearning && ip -n ${NS} link set wvx5100 up`;
  await sh(mk);
  assert.deepEqual((await br.run(lines('fdb replace 02:57:46:00:0b:01 dev wvx5100 dst 192.0.2.2 self permanent'))).failed, []);
  await sh(`ip -n ${NS} link del wvx5100 && ${mk}`);
  // What iproute2 6.1 does with its cache: the old index, which the kernel refuses. Other versions may not cache.
  const stale = await br.run(lines('fdb replace 02:57:46:00:0b:02 dev wvx5100 dst 192.0.2.2 self permanent'));
  t.diagnostic(`bridge with a re-made device, same process: ${stale.failed.map((f) => f.error).join('; ') || 'no failure'}`);
  br.restart();
  assert.deepEqual((await br.run(lines('fdb replace 02:57:46:00:0b:03 dev wvx5100 dst 192.0.2.3 self permanent'))).failed, []);
  assert.equal((await vtep()).get('02:57:46:00:0b:03'), '192.0.2.3');
  await sh(`ip -n ${NS} link del wvx5100`);

  // The dataplane: a VNI removed and made again between two plans, entries on the new devices.
  const dp = new LinuxDataplane({ netns: NS, announce: false });
  t.after(() => dp.close());
  const apply = async (ops: Op[]) => assert.deepEqual((await dp.apply({ ops, waiting: [] })).failed, []);
  await apply([{ op: 'vni.add', vni }, remote('02:57:46:00:0b:11', '192.0.2.2')]);
  await apply([{ op: 'vni.del', vni: 5100 }]);
  await apply([{ op: 'vni.add', vni }, remote('02:57:46:00:0b:12', '192.0.2.2')]);
  assert.deepEqual([...(await vtep())], [['02:57:46:00:0b:12', '192.0.2.2']]);
  // By hand, behind the dataplane's back: the next plan's entry fails at worst, and the one after (the agent re-reads the kernel) lands.
  await sh(`ip -n ${NS} link del wvx5100`);
  await sh(`ip -n ${NS} link add wvx5100 type vxlan id 5100 local 192.0.2.1 dstport 4789 nolearning && ip -n ${NS} link set wvx5100 master wbr5100 up`);
  const first = await dp.apply({ ops: [remote('02:57:46:00:0b:13', '192.0.2.4')], waiting: [] });
  if (first.failed.length > 0) await apply([remote('02:57:46:00:0b:13', '192.0.2.4')]);
  assert.equal((await vtep()).get('02:57:46:00:0b:13'), '192.0.2.4');
  // After linksChanged (the link watcher) the first attempt lands.
  await sh(`ip -n ${NS} link del wvx5100`);
  await sh(`ip -n ${NS} link add wvx5100 type vxlan id 5100 local 192.0.2.1 dstport 4789 nolearning && ip -n ${NS} link set wvx5100 master wbr5100 up`);
  dp.linksChanged();
  await apply([remote('02:57:46:00:0b:14', '192.0.2.5')]);
  assert.equal((await vtep()).get('02:57:46:00:0b:14'), '192.0.2.5');
  await apply([{ op: 'vni.del', vni: 5100 }]);
});

test('a batch process killed between batches is replaced; one killed during a batch loses it', async (t) => {
  const ip = new IprouteBatch('ip', { netns: NS });
  t.after(() => ip.close());
  assert.equal((await ip.run(lines('link add wbpk type bridge'))).lost, null);
  const p1 = ip.pid;
  assert.ok(p1, 'the process is running between batches');
  await sh(`kill -9 ${p1}`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await ip.run(lines('link del wbpk'))).lost, null);
  assert.equal(ip.spawned, 2);
  // A batch long enough to be killed in the middle.
  const big = Array.from({ length: 200_000 }, (_, i) => `link set dev lo mtu ${65536 - (i % 2)}`);
  const running = ip.run([`${big.join('\n')}\n`]);
  await new Promise((r) => setTimeout(r, 50));
  const p2 = ip.pid;
  if (p2) await sh(`kill -9 ${p2}`);
  const r = await running;
  if (p2) assert.match(r.lost ?? '', /killed by SIGKILL/);
  assert.equal((await ip.run(lines('link set dev lo up'))).lost, null);
});
