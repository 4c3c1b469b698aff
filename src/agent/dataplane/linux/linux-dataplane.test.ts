// LinuxDataplane over fake batch processes: which batch gets which lines,
// when the processes are started afresh (devices changed, a failure, links
// changed, a read of the kernel), and a lost batch failing all its steps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WeftError } from '../../../model/errors.js';
import type { RunOptions } from '../../../sys/exec.js';
import type { Op } from '../dataplane.js';
import type { GuardPort } from '../guard-spec.js';
import type { BatchOutcome, BatchProcess } from './batch-process.js';
import { SPLIT_BUDGET } from './guards-nft.js';
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

/** What the fake host has: its bridges, and the nft scripts it refuses (by a text they hold). */
interface FakeHost {
  bridges: string[];
  nftRefuses: string[];
  /** Every `nft -f -` script run. */
  scripts: string[];
}

function dataplane(host: Partial<FakeHost> = {}) {
  const made = new Map<string, FakeBatch>();
  const runs: string[] = [];
  const h: FakeHost = { bridges: ['wbr5000'], nftRefuses: [], scripts: [], ...host };
  order = [];
  const runner = async (cmd: string, args: string[], o?: RunOptions) => {
    runs.push(`${cmd} ${args.join(' ')}`);
    order.push(`${cmd} ${args.join(' ')}`);
    if (cmd === 'nft') {
      const script = typeof o?.input === 'string' ? o.input : '';
      if (args[0] === '-f') h.scripts.push(script);
      const refused = h.nftRefuses.find((t) => script.includes(t));
      if (refused) throw new WeftError('E_DATAPLANE', `nft -f -: exit 1: Error: Could not process rule: No space left on device (${refused})`);
      return { code: 0, stdout: '{"nftables":[]}', stderr: '' };
    }
    if (args.includes('type') && args.includes('bridge')) return { code: 0, stdout: JSON.stringify(h.bridges.map((ifname) => ({ ifname }))), stderr: '' };
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
  return { dp, ip: made.get('ip') as FakeBatch, bridge: made.get('bridge') as FakeBatch, runs, host: h };
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
  // The plug goes into a bridge the plan does not make: it is checked first (iproute2 would exit on a missing one).
  assert.deepEqual(order, ['nft -f -', 'ip -j link show type bridge', 'ip: link set', 'bridge: link set']);
  order = [];
  await dp.apply({ ops: [{ op: 'vni.add', vni }, guard, plug], waiting: [] });
  assert.deepEqual(order, ['nft -f -', 'ip: link add', 'bridge: link set'], 'no check for a bridge the plan makes');
});

const port = (i: number, o: Partial<GuardPort> = {}): GuardPort => ({
  ifname: `wp00000000000${i}`,
  mac: `02:57:46:00:00:0${i}`,
  ipv4: `10.0.0.${i}`,
  ipv6: null,
  arpRate: 20,
  ndRate: 20,
  ...o,
});
/** A local port as reconcile plans it: guard, plug, static entry, announcement. */
const local = (i: number, o: Partial<GuardPort> = {}, vniOf = 5000): Op[] => [
  { op: 'guard.set', port: port(i, o), hash: 'h' },
  { op: 'port.plug', plug: { ifname: `wp00000000000${i}`, vni: vniOf, mtu: 1450, mac: `02:57:46:00:00:0${i}` } },
  fdb(i, `@wp00000000000${i}`),
  { op: 'announce', ifname: `wp00000000000${i}`, vni: vniOf, mac: `02:57:46:00:00:0${i}`, ips: [`10.0.0.${i}`] },
];
const failedOps = (r: { failed: { op: Op }[] }) =>
  r.failed
    .map(
      (f) =>
        f.op.op +
        (f.op.op === 'port.plug' ? ` ${f.op.plug.ifname}` : f.op.op === 'guard.set' ? ` ${f.op.port.ifname}` : f.op.op === 'fdb.set' ? ` ${f.op.dst}` : ''),
    )
    .sort();

test('LinuxDataplane: a guard the renderer refuses never reaches nft; its port is not plugged, pointed at or announced; the others are', async () => {
  const { dp, ip, bridge, runs, host } = dataplane();
  const ops = [...local(1), ...local(2, { ipv4: '224.0.0.2' }), ...local(3)];
  const r = await dp.apply({ ops, waiting: [] });
  assert.deepEqual(failedOps(r), ['fdb.set @wp000000000002', 'guard.set wp000000000002', 'port.plug wp000000000002']);
  assert.match(r.failed.find((f) => f.op.op === 'guard.set')?.error ?? '', /^invalid port\.ipv4 "224\.0\.0\.2": must be a unicast address, not multicast/);
  assert.match(
    r.failed.find((f) => f.op.op === 'port.plug')?.error ?? '',
    /^port\.plug wp000000000002: not plugged: its guard is not in place: invalid port\.ipv4/,
  );
  assert.equal(host.scripts.length, 1, 'the valid guards in one transaction');
  assert.match(host.scripts[0] ?? '', /wp000000000001/);
  assert.match(host.scripts[0] ?? '', /wp000000000003/);
  assert.doesNotMatch(host.scripts[0] ?? '', /wp000000000002/);
  const lines = [...ip.batches.flat(), ...bridge.batches.flat()];
  assert.deepEqual(
    lines.filter((l) => l.includes('wp000000000002') || l.includes(':02 ')),
    [],
  );
  assert.equal(lines.filter((l) => l.includes('wp000000000001')).length, 3, 'plug, learning off, static entry');
  assert.equal(lines.filter((l) => l.includes('wp000000000003')).length, 3);
  assert.ok(!runs.some((x) => x.includes('wp000000000002')), 'no announcement for it');
});

test('LinuxDataplane: a transaction nft refuses is split until the refused port is alone; the rest are set', async () => {
  const { dp, host } = dataplane({ nftRefuses: ['p_wp000000000005'] });
  const ops: Op[] = [];
  for (const i of [1, 2, 3, 4, 5, 6, 7]) ops.push(local(i)[0] as Op);
  const r = await dp.apply({ ops, waiting: [] });
  assert.deepEqual(failedOps(r), ['guard.set wp000000000005']);
  assert.match(r.failed[0]?.error ?? '', /No space left on device/);
  const applied = host.scripts.filter((t) => !t.includes('p_wp000000000005'));
  const set = new Set(applied.flatMap((t) => [...t.matchAll(/add chain bridge weft (p_wp\d+)/g)].map((m) => m[1])));
  assert.deepEqual(
    [...set].sort(),
    [1, 2, 3, 4, 6, 7].map((i) => `p_wp00000000000${i}`),
  );
  assert.ok(host.scripts.length <= 1 + 2 * Math.ceil(Math.log2(7)), `nft runs: ${host.scripts.length}`);
});

test('LinuxDataplane: when nft refuses everything, the split stops at its budget and every guard fails', async () => {
  const ports = Array.from({ length: 200 }, (_, i) => ({ ...port(1), ifname: `wq${String(i).padStart(6, '0')}` }));
  const { dp, host } = dataplane({ nftRefuses: ['add chain'] });
  const r = await dp.apply({ ops: ports.map((p) => ({ op: 'guard.set', port: p, hash: 'h' })), waiting: [] });
  assert.equal(r.failed.length, 200);
  assert.equal(host.scripts.length, SPLIT_BUDGET);
});

test('LinuxDataplane: a plug into a bridge that is missing is left out with its static entry; the batch keeps the rest', async () => {
  const { dp, ip } = dataplane({ bridges: ['wbr5000'] });
  const ops = [...local(1), ...local(2, {}, 6000)];
  const r = await dp.apply({ ops, waiting: [] });
  assert.deepEqual(failedOps(r), ['fdb.set @wp000000000002', 'port.plug wp000000000002']);
  assert.match(r.failed.find((f) => f.op.op === 'port.plug')?.error ?? '', /bridge wbr6000 does not exist \(VNI 6000 is not on this host\)/);
  assert.deepEqual(ip.batches[0], ['link set dev wp000000000001 master wbr5000 mtu 1450 up']);
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
