// End-to-end test of the namespace lab builder: a 2x2 routed underlay, the
// management network, VMs and their moves, processes, and teardown (also of
// a lab whose process died). Needs root; traffic stays in the lab's namespaces.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Lab } from '../../src/lab/builder.js';
import { type LabRecord, LabRegistry, labDir, labFile, listLabs, reapStale } from '../../src/lab/registry.js';
import { run } from '../../src/sys/exec.js';

// Unique per process, so runs of this file never share a lab name.
const tag = String(process.pid % 10000);

interface IpAddr {
  ifname: string;
  address: string;
  mtu: number;
  master?: string;
  operstate: string;
  addr_info: Array<{ family: string; local: string; prefixlen: number; tentative?: boolean }>;
}

async function addrs(ns: string, dev: string): Promise<IpAddr | null> {
  const r = await run('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', dev], { okCodes: [1] });
  return r.code === 0 ? (JSON.parse(r.stdout) as IpAddr[])[0]! : null;
}

async function labNamespaces(prefix: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${prefix}-`));
}

const rootLinkExists = (name: string) => existsSync(`/sys/class/net/${name}`);

test('a 2x2 lab: routed underlay, management network, VMs, moves, teardown', async (t) => {
  const t0 = performance.now();
  const lab = await Lab.create({ name: `wt${tag}` });
  t.after(() => lab.destroy());
  const p = lab.name;
  await Promise.all([
    lab.addHost('h1', { rack: 'r1' }),
    lab.addHost('h2', { rack: 'r1' }),
    lab.addHost('h3', { rack: 'r2' }),
    lab.addHost('h4', { rack: 'r2' }),
  ]);
  t.diagnostic(`built 2 racks x 2 hosts in ${(performance.now() - t0).toFixed(0)} ms (slot ${lab.slot})`);
  const hosts = [...lab.hosts.values()];
  assert.deepEqual(hosts.map((h) => h.ns).sort(), [`${p}-h1`, `${p}-h2`, `${p}-h3`, `${p}-h4`]);

  await t.test('every host reaches every other host underlay address, IPv4 and IPv6', async () => {
    const pings = hosts.flatMap((a) =>
      hosts.filter((b) => b !== a).flatMap((b) => [b.underlayIp, b.underlayIp6].map((ip) => lab.exec(a, 'ping', ['-c1', '-W1', ip]))),
    );
    await Promise.all(pings);
    const ul = await addrs(lab.ns('h1'), 'ul0');
    assert.equal(ul?.mtu, 9000);
    assert.ok(ul?.addr_info.some((a) => a.local === hosts.find((h) => h.name === 'h1')!.underlayIp && a.prefixlen === 31));
  });

  await t.test('the root namespace and the hosts reach each other over the management network only', async () => {
    const root = `${p}m0`;
    for (const h of hosts) await run('ping', ['-c1', '-W1', h.mgmtIp]);
    await lab.exec('h2', 'ping', ['-c1', '-W1', lab.mgmtRootIp]);
    const v4 = await run('ip', ['-o', 'route', 'show', 'dev', root]);
    assert.deepEqual(
      v4.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[0]),
      [lab.mgmtSubnet],
    );
    assert.equal((await run('ip', ['-6', '-o', 'route', 'show', 'dev', root])).stdout.trim(), '');
  });

  await t.test('a VM has its MAC, MTU and addresses; its host end is up and unplugged', async () => {
    const vm = await lab.addVm('h1', { name: 'v1', ifname: 'wp1', mac: '02:00:00:00:01:05', ipv4: '10.0.0.5/24', ipv6: 'fd00::5/64', mtu: 1450 });
    const eth0 = await addrs(vm.ns, 'eth0');
    assert.equal(eth0?.address, '02:00:00:00:01:05');
    assert.equal(eth0?.mtu, 1450);
    const global = eth0!.addr_info.filter((a) => a.family === 'inet' || !a.local.startsWith('fe80'));
    assert.deepEqual(
      global.map((a) => `${a.local}/${a.prefixlen}${a.tentative ? ' tentative' : ''}`),
      ['10.0.0.5/24', 'fd00::5/64'],
    );
    const hostEnd = await addrs(lab.ns('h1'), 'wp1');
    assert.equal(hostEnd?.master, undefined);
    assert.equal(hostEnd?.mtu, 1450);
    assert.notEqual(hostEnd?.operstate, 'DOWN');
    await assert.rejects(
      lab.addVm('h1', { name: 'v2', ifname: 'ul0', mac: '02:00:00:00:01:06', ipv4: null, ipv6: null, mtu: 1500 }),
      new RegExp(`^WeftError: ip -n ${p}-h1 link add ul0 index \\d+ mtu 1500 type veth .*exists`),
    );
  });

  await t.test('moveVm switches the VM link over to the destination host', async () => {
    const t1 = performance.now();
    const vm = await lab.moveVm('v1', 'h3', 'wp1b');
    t.diagnostic(`moveVm took ${(performance.now() - t1).toFixed(0)} ms`);
    assert.equal(vm.host, 'h3');
    assert.notEqual(await addrs(lab.ns('h3'), 'wp1b'), null);
    assert.equal(await addrs(lab.ns('h1'), 'wp1'), null);
    assert.equal(await addrs(vm.ns, 'eth0n'), null);
    const eth0 = await addrs(vm.ns, 'eth0');
    assert.equal(eth0?.address, '02:00:00:00:01:05');
    assert.deepEqual(
      eth0!.addr_info.filter((a) => !a.local.startsWith('fe80')).map((a) => a.local),
      ['10.0.0.5', 'fd00::5'],
    );
  });

  await t.test('destroy removes namespaces, root link, processes and files, and is idempotent', async () => {
    const dir = lab.file(`${labDir()}/${p}-scratch`);
    mkdirSync(dir);
    const sleeper = lab.spawn('h4', 'sleep', ['600'], { stdio: 'ignore' });
    const exited = once(sleeper, 'exit');
    await lab.destroy();
    await lab.destroy();
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [null, 'SIGKILL']);
    assert.deepEqual(await labNamespaces(p), []);
    assert.equal(rootLinkExists(`${p}m0`), false);
    assert.equal(existsSync(dir), false);
    assert.equal(existsSync(labFile(p)), false);
    await assert.rejects(lab.addHost('h5', { rack: 'r1' }), /is destroyed/);
  });
});

test('names and slots are claimed exclusively, and freed by destroy and reaping (records only)', async (t) => {
  // A private state dir: this exercises the record files only, so it takes no
  // machine-wide slot from labs that other test files are building.
  const dir = mkdtempSync(join(tmpdir(), 'weft-lab-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const code = (c: string) => (e: Error & { code?: string }) => e.code === c;
  const [a, b] = [LabRegistry.claim('a', { dir }), LabRegistry.claim('b', { dir })];
  assert.deepEqual([a.slot, b.slot], [0, 1]);
  assert.throws(() => LabRegistry.claim('a', { dir }), code('E_CONFLICT'));
  assert.throws(() => LabRegistry.claim('c', { dir, slot: 1 }), /slot 1 is taken: slot 1 by lab "b"/);
  const [c, d] = [LabRegistry.claim('c', { dir }), LabRegistry.claim('d', { dir })];
  assert.deepEqual([c.slot, d.slot], [2, 3]);
  assert.throws(() => LabRegistry.claim('e', { dir }), code('E_CAPACITY'));
  b.destroy();
  b.destroy();
  assert.throws(() => b.addFile('/nonexistent'), /is destroyed/);
  const e = LabRegistry.claim('e', { dir });
  assert.equal(e.slot, 1);

  // Owner gone: its record, slot and files go with the next reap.
  const dead = spawn('true');
  await once(dead, 'exit');
  const scratch = join(dir, 'scratch');
  e.addFile(scratch);
  writeFileSync(scratch, 'x');
  const rec = JSON.parse(readFileSync(labFile('e', dir), 'utf8')) as LabRecord;
  writeFileSync(labFile('e', dir), JSON.stringify({ ...rec, owner: { pid: dead.pid } }));
  assert.deepEqual(reapStale(dir), ['e']);
  assert.equal(existsSync(scratch), false);
  assert.deepEqual(listLabs(dir), ['a', 'c', 'd']);
  assert.equal(LabRegistry.claim('f', { dir }).slot, 1);
  for (const r of [a, c, d]) r.destroy();
});

test('a lab whose owner died is reaped by the next Lab.create', async (t) => {
  const name = `wr${tag}`;
  const ns = `${name}-h1`;
  const scratch = `${labDir()}/${name}-scratch`;
  t.after(async () => {
    await run('ip', ['netns', 'del', ns], { okCodes: [1] });
  });
  const dead = spawn('true');
  await once(dead, 'exit');
  mkdirSync(labDir(), { recursive: true });
  writeFileSync(scratch, 'x');
  await run('ip', ['netns', 'add', ns]);
  const rec: LabRecord = { version: 1, name, owner: { pid: dead.pid! }, slot: null, namespaces: [ns], links: [], pids: [], files: [scratch] };
  writeFileSync(labFile(name), JSON.stringify(rec));

  const lab = await Lab.create({ name: `wn${tag}` });
  t.after(() => lab.destroy());
  assert.deepEqual(await labNamespaces(name), []);
  assert.equal(existsSync(labFile(name)), false);
  assert.equal(existsSync(scratch), false);
});
