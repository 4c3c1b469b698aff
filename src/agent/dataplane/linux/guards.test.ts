// Port guard rendering: golden nft scripts, spec hashes, validation, the
// NftGuards parser over a fake runner, and (as root, with nft) a syntax
// check of every script by nft itself inside a throwaway network namespace.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { assertGolden, fixture } from '../../../../test/support/golden.js';
import { WeftError } from '../../../model/errors.js';
import { type RunOptions, type RunResult, run } from '../../../sys/exec.js';
import { type GuardPort, guardSpecHash } from '../guard-spec.js';
import { renderGuardChanges, renderGuardTable, renderPortAdd, renderPortRemove } from './guards.js';
import { NftGuards } from './guards-nft.js';

const dual: GuardPort = { ifname: 'wp0123456789ab', mac: '02:00:00:00:01:0a', ipv4: '10.1.0.10', ipv6: 'fd00:1::a', arpRate: 20, ndRate: 30 };
const v4only: GuardPort = { ifname: 'wp1111111111aa', mac: '02:00:00:00:01:0b', ipv4: '10.1.0.11', ipv6: null, arpRate: 5, ndRate: 5 };
const v6only: GuardPort = { ifname: 'wp2222222222bb', mac: '52:54:00:12:34:56', ipv4: null, ipv6: '2001:db8:1::c', arpRate: 1, ndRate: 100 };

const scripts: Record<string, () => string> = {
  'full.nft': () => renderGuardTable([v6only, dual, v4only]),
  'empty.nft': () => renderGuardTable([]),
  'port-add.nft': () => renderPortAdd(dual),
  'port-remove.nft': () => renderPortRemove(v4only.ifname),
  'changes.nft': () => renderGuardChanges({ add: [dual, v6only], remove: [v4only.ifname] }),
};

test('rendered scripts match the golden files', () => {
  for (const [file, render] of Object.entries(scripts)) assertGolden(`guards/${file}`, render());
});

test('the full table does not depend on the order of ports', () => {
  assert.equal(renderGuardTable([dual, v4only, v6only]), renderGuardTable([v4only, v6only, dual]));
});

test('an incremental script names only its own port', () => {
  const s = renderPortAdd(dual);
  assert.doesNotMatch(s, /wp1111111111aa|wp2222222222bb/);
  assert.match(s, /flush chain bridge weft p_wp0123456789ab\n/, 'a changed port is flushed and refilled');
  assert.doesNotMatch(s, /delete table|flush table/, 'never the whole table');
  assert.match(renderPortRemove('wp0123456789ab'), /delete chain bridge weft p_wp0123456789ab\n/);
});

test('every port chain ends with its spec hash; every drop names its guard', () => {
  const s = renderGuardTable([dual, v4only, v6only]);
  for (const p of [dual, v4only, v6only]) assert.ok(s.includes(`counter accept comment "accept spec=${guardSpecHash(p)}"`));
  for (const line of s.split('\n').filter((l) => / drop( |$)/.test(l))) assert.match(line, /counter .*drop comment "[a-z0-9-]+"$/);
});

test('a port without IPv4 drops ARP and IPv4; without IPv6 drops IPv6', () => {
  const s = renderPortAdd(v6only);
  assert.match(s, /ether type \{ arp, ip \} counter drop comment "no-ipv4"/);
  assert.doesNotMatch(s, /arp saddr/);
  assert.match(renderPortAdd(v4only), /ether type ip6 counter drop comment "no-ipv6"/);
  // The EUI-64 link-local of 52:54:00:12:34:56 is allowed as a source and an ND target.
  assert.match(s, /ip6 saddr != \{ 2001:db8:1::c, fe80::5054:ff:fe12:3456, :: \}/);
  assert.match(s, /0xfe80000000000000505400fffe123456/);
});

test('guardSpecHash: canonical forms hash alike, any field change differs', () => {
  const h = guardSpecHash(dual);
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.equal(guardSpecHash({ ...dual, mac: '02-00-00-00-01-0A', ipv6: 'fd00:1:0:0::000a' }), h);
  const changes: Partial<GuardPort>[] = [
    { ifname: 'wp0123456789ac' },
    { mac: '02:00:00:00:01:0c' },
    { ipv4: '10.1.0.12' },
    { ipv4: null },
    { ipv6: 'fd00:1::b' },
    { ipv6: null },
    { arpRate: 21 },
    { ndRate: 31 },
  ];
  const seen = new Set([h]);
  for (const c of changes) seen.add(guardSpecHash({ ...dual, ...c }));
  assert.equal(seen.size, changes.length + 1);
});

test('invalid ports are refused naming the field, the value and what is allowed', () => {
  const cases: [Partial<GuardPort>, RegExp][] = [
    [{ ifname: 'a-very-long-interface' }, /^invalid port\.ifname "a-very-long-interface": must be 1-15 characters/],
    [{ ifname: 'wp x' }, /^invalid port\.ifname "wp x"/],
    [{ mac: '01:00:5e:00:00:01' }, /^invalid port\.mac "01:00:5e:00:00:01": must be a unicast MAC/],
    [{ ipv4: 'fd00::1' }, /^invalid port\.ipv4 "fd00::1": must be an IPv4 address/],
    [{ ipv4: '0.0.0.0' }, /^invalid port\.ipv4 "0.0.0.0": must be a unicast address/],
    [{ ipv4: '224.0.0.1' }, /^invalid port\.ipv4 "224.0.0.1": must be a unicast address/],
    [{ ipv4: '127.0.0.1' }, /^invalid port\.ipv4 "127.0.0.1": must be a unicast address, not loopback/],
    [{ ipv6: '::1' }, /^invalid port\.ipv6 "::1": must be a unicast address, not loopback/],
    [{ ipv6: '10.0.0.1' }, /^invalid port\.ipv6 "10.0.0.1": must be an IPv6 address/],
    [{ ipv6: 'fe80::1' }, /^invalid port\.ipv6 "fe80::1": must be a unicast address, not link-local/],
    [{ ipv6: 'ff02::1' }, /^invalid port\.ipv6 "ff02::1"/],
    [{ arpRate: 0 }, /^invalid port\.arpRate 0: must be an integer 1\.\.100000/],
    [{ ndRate: 1.5 }, /^invalid port\.ndRate 1\.5: must be an integer/],
  ];
  for (const [patch, re] of cases) {
    assert.throws(
      () => guardSpecHash({ ...dual, ...patch }),
      (e: unknown) => e instanceof WeftError && e.code === 'E_INVALID_ARG' && re.test(e.message),
      JSON.stringify(patch),
    );
  }
  assert.throws(() => renderGuardTable([dual, { ...dual }]), /invalid ports\[1\]\.ifname "wp0123456789ab": must be unique/);
  assert.throws(() => renderGuardChanges({ add: [{ ...dual, mac: 'x' }], remove: [] }), /invalid add\[0\]\.mac "x"/);
  assert.throws(() => renderGuardChanges({ add: [], remove: ['bad name'] }), /invalid remove\[0\] "bad name"/);
});

/** A Runner that records calls and answers `nft -j list` with `listing` (null: no table). */
function fakeRunner(listing: string | null) {
  const calls: { cmd: string; args: string[]; opts: RunOptions | undefined }[] = [];
  const runner = async (cmd: string, args: string[], opts?: RunOptions): Promise<RunResult> => {
    calls.push({ cmd, args, opts });
    if (args[0] === '-j') {
      if (listing === null) return { code: 1, stdout: '', stderr: 'Error: No such file or directory\nlist table bridge weft\n' };
      return { code: 0, stdout: listing, stderr: '' };
    }
    return { code: 0, stdout: '', stderr: '' };
  };
  return { runner, calls };
}

test('NftGuards reads spec hashes and counters from nft -j', async () => {
  // Captured from nft 1.0.6 after renderGuardTable([dual, v4only]) and some traffic.
  const listing = readFileSync(fixture('guards/list.json'), 'utf8');
  const { runner, calls } = fakeRunner(listing);
  const g = new NftGuards(runner, 'ns1');
  const seen = await g.observe();
  assert.deepEqual(
    seen,
    new Map([
      [dual.ifname, guardSpecHash(dual)],
      [v4only.ifname, guardSpecHash(v4only)],
    ]),
  );
  assert.deepEqual(calls[0], { cmd: 'nft', args: ['-j', 'list', 'table', 'bridge', 'weft'], opts: { input: undefined, netns: 'ns1', okCodes: [1] } });
  const counters = await g.counters();
  const get = (ifname: string, guard: string) => counters.find((c) => c.ifname === ifname && c.guard === guard);
  assert.deepEqual(get(dual.ifname, 'spoof-arp'), { ifname: dual.ifname, guard: 'spoof-arp', packets: 6, bytes: 252 }, 'the four spoof-arp rules summed');
  assert.deepEqual(get('', 'egress-ra'), { ifname: '', guard: 'egress-ra', packets: 2, bytes: 140 });
  assert.equal(get(dual.ifname, 'accept'), undefined, 'the accept rule is no guard');
  assert.equal(counters.filter((c) => c.ifname === v4only.ifname).length, 8, 'every guard of a v4-only port');
});

test('NftGuards: no table is an empty state; apply makes one call, or none', async () => {
  const { runner, calls } = fakeRunner(null);
  const g = new NftGuards(runner);
  assert.deepEqual(await g.observe(), new Map());
  assert.deepEqual(await g.counters(), []);
  await g.apply({ add: [], remove: [] });
  assert.equal(calls.length, 2);
  await g.apply({ add: [dual], remove: ['wp9'] });
  assert.equal(calls.length, 3);
  assert.deepEqual(calls[2]?.args, ['-f', '-']);
  assert.equal(calls[2]?.opts?.input, renderGuardChanges({ add: [dual], remove: ['wp9'] }));
  await g.sync([dual]);
  assert.equal(calls[3]?.opts?.input, renderGuardTable([dual]));
});

test('NftGuards: other nft failures are E_DATAPLANE errors', async () => {
  const g = new NftGuards(async () => ({ code: 1, stdout: '', stderr: 'Error: Operation not permitted' }));
  await assert.rejects(g.observe(), (e: unknown) => e instanceof WeftError && e.code === 'E_DATAPLANE' && /Operation not permitted/.test(e.message));
});

const haveNft = process.getuid?.() === 0 && spawnSync('nft', ['--version']).status === 0;

test('nft accepts every rendered script and lists it back (nft -c in a throwaway namespace)', { skip: !haveNft && 'needs root and nft' }, async () => {
  const ns = `wg-chk-${process.pid}`;
  await run('ip', ['netns', 'add', ns]);
  try {
    const check = (script: string) => run('nft', ['-c', '-f', '-'], { input: script, netns: ns });
    await check(scripts['full.nft']!());
    await check(scripts['empty.nft']!());
    // Incremental scripts also work on a host without the table, and on one with it.
    for (const f of ['port-add.nft', 'port-remove.nft', 'changes.nft']) await check(scripts[f]!());
    await run('nft', ['-f', '-'], { input: scripts['full.nft']!(), netns: ns });
    for (const f of ['port-add.nft', 'port-remove.nft', 'changes.nft']) await check(scripts[f]!());
    // And nft can list what it loaded (1.0.6 aborts listing some rules it accepts).
    const seen = await new NftGuards(run, ns).observe();
    assert.deepEqual([...seen.keys()].sort(), [dual, v4only, v6only].map((p) => p.ifname).sort());
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
});
