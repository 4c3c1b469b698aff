// LinuxDataplane over fake batch processes: which batch gets which lines,
// when the processes are started afresh (devices changed, a failure, links
// changed, a read of the kernel), and a lost batch failing all its steps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunOptions } from '../../../sys/exec.js';
import type { Op } from '../dataplane.js';
import type { BatchOutcome, BatchProcess } from './batch-process.js';
import { LinuxDataplane } from './linux-dataplane.js';

/** Every batch and nft run of a test, in order. */
let order: string[] = [];

class FakeBatch implements BatchProcess {
  readonly batches: string[][] = [];
  restarts = 0;
  /** What the next batches report, by line text. */
  fail: ((line: string) => string | null) | null = null;
  lose: string | null = null;

  constructor(readonly tool: string) {}

  async run(pieces: Iterable<string>): Promise<BatchOutcome> {
    const lines = [...pieces].join('').split('\n').slice(0, -1);
    this.batches.push(lines);
    order.push(`${this.tool}: ${lines[0]?.split(' ').slice(0, 2).join(' ')}`);
    const failed: BatchOutcome['failed'] = [];
    lines.forEach((l, i) => {
      const e = this.fail?.(l);
      if (e) failed.push({ line: i + 1, error: e });
    });
    return { failed, lost: this.lose, lines: lines.length };
  }

  restart(): void {
    this.restarts++;
  }

  close(): void {}
}

function dataplane() {
  const made = new Map<string, FakeBatch>();
  const runs: string[] = [];
  order = [];
  const runner = async (cmd: string, args: string[], _o?: RunOptions) => {
    runs.push(`${cmd} ${args.join(' ')}`);
    order.push(`${cmd} ${args.join(' ')}`);
    if (cmd === 'nft') return { code: 0, stdout: '{"nftables":[]}', stderr: '' };
    return { code: 0, stdout: '[]', stderr: '' };
  };
  const dp = new LinuxDataplane({
    run: runner,
    batches: (tool) => {
      const b = new FakeBatch(tool);
      made.set(tool, b);
      return b;
    },
  });
  return { dp, ip: made.get('ip') as FakeBatch, bridge: made.get('bridge') as FakeBatch, runs };
}

const vni = { vni: 5000, mtu: 1450, local: '192.0.2.1', lazy: false };
const fdb = (i: number, dst = '192.0.2.2'): Op => ({ op: 'fdb.set', vni: 5000, mac: `02:57:46:00:00:0${i}`, dst });
const neigh = (i: number): Op => ({ op: 'neigh.set', vni: 5000, ip: `10.0.0.${i}`, mac: `02:57:46:00:00:0${i}` });

test('LinuxDataplane: a delta goes to the running processes; devices made restart them before the entries', async () => {
  const { dp, ip, bridge } = dataplane();
  assert.deepEqual((await dp.apply({ ops: [fdb(1), neigh(1)], waiting: [] })).failed, []);
  assert.deepEqual(bridge.batches, [
    ['fdb replace 02:57:46:00:00:01 dev wvx5000 dst 192.0.2.2 self permanent', 'fdb replace 02:57:46:00:00:01 dev wvx5000 master static'],
  ]);
  assert.deepEqual(ip.batches, [['neigh replace 10.0.0.1 lladdr 02:57:46:00:00:01 dev wbr5000 nud permanent']]);
  assert.equal(ip.restarts + bridge.restarts, 0, 'entries alone keep the processes');

  await dp.apply({ ops: [{ op: 'vni.add', vni }, fdb(2)], waiting: [] });
  assert.equal(ip.batches.length, 2);
  assert.match(ip.batches[1]?.[0] ?? '', /^link add wvx5000 /);
  assert.equal(ip.restarts, 1);
  assert.equal(bridge.restarts, 1, 'the FDB batch after new devices runs in a fresh bridge process');
});

test('LinuxDataplane: guards go before the plugs they protect, and after the entries when the plan plugs nothing', async () => {
  const { dp } = dataplane();
  const guard: Op = {
    op: 'guard.set',
    port: { ifname: 'wp000000000001', mac: '02:57:46:00:00:01', ipv4: null, ipv6: null, arpRate: 20, ndRate: 20 },
    hash: 'h',
  };
  const plug: Op = { op: 'port.plug', plug: { ifname: 'wp000000000001', vni: 5000, mtu: 1450, mac: '02:57:46:00:00:01' } };
  await dp.apply({ ops: [guard, fdb(2), neigh(2)], waiting: [] });
  assert.deepEqual(order, ['bridge: fdb replace', 'ip: neigh replace', 'nft -f -']);
  order = [];
  await dp.apply({ ops: [guard, plug, fdb(2)], waiting: [] });
  assert.deepEqual(order, ['nft -f -', 'ip: link set', 'bridge: link set']);
});

test('LinuxDataplane: a failed line fails its step and restarts that process; a gone deletion does neither', async () => {
  const { dp, ip, bridge } = dataplane();
  bridge.fail = (l) =>
    l.includes(':02 dev wvx5000 dst') ? 'Error: unknown ifindex.' : l.startsWith('fdb del') ? 'RTNETLINK answers: No such file or directory' : null;
  const del: Op = { op: 'fdb.del', vni: 5000, mac: '02:57:46:00:00:09', was: '192.0.2.9' };
  const r = await dp.apply({ ops: [fdb(1), fdb(2), del, neigh(2)], waiting: [] });
  assert.deepEqual(
    r.failed.map((f) => [f.op, f.error]),
    [[fdb(2), 'fdb replace 02:57:46:00:00:02 dev wvx5000 dst 192.0.2.2 self permanent: Error: unknown ifindex.']],
  );
  assert.equal(bridge.restarts, 1);
  assert.equal(ip.restarts, 0);
  bridge.fail = (l) => (l.startsWith('fdb del') ? 'RTNETLINK answers: No such file or directory' : null);
  assert.deepEqual((await dp.apply({ ops: [del], waiting: [] })).failed, []);
  assert.equal(bridge.restarts, 1);
});

test('LinuxDataplane: a lost batch fails every step with lines in it', async () => {
  const { dp, ip } = dataplane();
  ip.lose = 'ip batch process killed by SIGKILL';
  const r = await dp.apply({ ops: [fdb(1), neigh(1), neigh(2)], waiting: [] });
  assert.deepEqual(
    r.failed.map((f) => f.op),
    [neigh(1), neigh(2)],
  );
  assert.match(r.failed[0]?.error ?? '', /^neigh replace 10\.0\.0\.1 .*: ip batch process killed by SIGKILL$/);
});

test('LinuxDataplane: links changed, or a read of the kernel, start both processes afresh', async () => {
  const { dp, ip, bridge, runs } = dataplane();
  dp.linksChanged();
  assert.deepEqual([ip.restarts, bridge.restarts], [1, 1]);
  await dp.observe();
  assert.deepEqual([ip.restarts, bridge.restarts], [2, 2]);
  assert.ok(runs.some((r) => r.startsWith('bridge -j fdb show')));
});
