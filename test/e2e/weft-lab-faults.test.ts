// Moves and faults on `weft lab` through the real CLI: a live migration with
// its blackout measured by a ping every 10 ms, then a VIP backend, an
// underlay link (carrier lost, then silent so that BFD must find it) and a
// whole hypervisor failed and healed, each timed at the ToR; `weft lab
// check` passes again after every heal, and `down` leaves nothing behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { parseIpRoutes } from '../../src/lab/bird.js';
import type { FaultReport, MoveReport } from '../../src/lab/cloud.js';
import type { LabState } from '../../src/lab/daemon.js';
import { WEFT_BIN } from '../../src/lab/server-process.js';
import { run } from '../../src/sys/exec.js';

const root = process.getuid?.() === 0;
const NAME = 'wlf';
const weft = (args: string[], okCodes: number[] = []) => run(WEFT_BIN, args, { okCodes, timeoutMs: 300_000 });
const json = async <T>(args: string[]): Promise<T> => {
  const r = await weft(['-o', 'json', 'lab', ...args, '--name', NAME], [1]);
  assert.equal(r.code, 0, `weft lab ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};
const status = () => json<LabState>(['status']);
const namespaces = () =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(`${NAME}-`));
/** The gateways of router `node`'s kernel route for exactly `prefix`. */
const nextHops = (node: string, prefix: string) =>
  parseIpRoutes(execFileSync('ip', ['-n', `${NAME}-${node}`, '-j', 'route', 'show', 'exact', prefix], { encoding: 'utf8' })).map((h) => h.via);
/** How many of BIRD's routes on router `node` go out through its link to `dev`. */
const routesVia = (node: string, dev: string) =>
  ['-4', '-6'].flatMap((f) =>
    (
      JSON.parse(execFileSync('ip', ['-n', `${NAME}-${node}`, f, '-j', 'route', 'show', 'proto', 'bird'], { encoding: 'utf8' }) || '[]') as {
        dev?: string;
        nexthops?: { dev: string }[];
      }[]
    ).filter((r) => (r.nexthops ?? [r]).some((h) => h.dev === dev)),
  ).length;
/**
 * `weft lab check` exits 0. On 2 shared cores under load, BFD at 100 ms x 3
 * can flap a session of a host no test touched: such a check is tried
 * again (twice, 5 s apart), and the failed lines are reported.
 */
const checkPasses = async (t: { diagnostic(m: string): void }) => {
  let r = await weft(['lab', 'check', '--name', NAME], [1]);
  for (let i = 0; i < 2 && r.code !== 0; i++) {
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    t.diagnostic(`check failed, trying again in 5 s: ${failed.join(' | ')}`);
    await new Promise((res) => setTimeout(res, 5000));
    r = await weft(['lab', 'check', '--name', NAME], [1]);
  }
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /ok +no fault in place/);
};

/** Pings (10 ms apart) a move may lose here: a sanity bound, 5 x the 100 ms target (the benchmark's). */
const MOVE_LOST_MAX = 50;

describe('weft lab: moves and faults', { skip: root ? false : 'needs root (network namespaces)' }, () => {
  let s: LabState;
  const host = (name: string) => s.hosts.find((h) => h.name === name) as LabState['hosts'][number];
  const where = (instance: string) => s.instances.find((i) => i.name === instance)?.host as string;

  before(async () => {
    await weft(['lab', 'down', '--name', NAME], [1]);
    // Two sites of three racks of one host: the VIP's backends on two racks of s1, a third host there for web2 to move to, every tenant in both sites.
    await weft(['lab', 'up', '--name', NAME, '--sites', '2', '--racks-per-site', '3', '--hosts-per-rack', '1', '--tenants', '2', '--instances', '8']);
    s = await status();
  });
  after(async () => {
    await weft(['lab', 'down', '--name', NAME], [1]).catch(() => undefined);
    assert.deepEqual(namespaces(), [], 'no namespace of the lab left');
    assert.doesNotMatch(
      execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }),
      new RegExp(`weft-bird-${NAME}-|weft-${NAME}-`),
      'no process of the lab left',
    );
  });

  test('a move loses at most 10 pings at 10 ms, the instance answers on its new host and the state follows', async (t) => {
    const from = where('t1vm1');
    const m = await json<MoveReport>(['move', 't1vm1']);
    t.diagnostic(`move ${m.from} -> ${m.to}: ${m.lost}/${m.sent} pings lost, blackout ${m.blackoutMs} ms, move ${m.moveMs} ms`);
    assert.equal(m.ok, true, JSON.stringify(m));
    assert.equal(m.from, from);
    assert.notEqual(m.to, from, 'the server picked another host');
    assert.equal(m.answers, true);
    // One every 10 ms for at least the 600 ms around the move, fewer when the cores are busy.
    assert.ok(m.sent >= 30, `sent ${m.sent}`);
    // A blackout, not an outage. Its 100 ms target is a benchmark's (`npm run bench -- lab`, 10 moves side by
    // side with the rest): on a shared 2-core machine one move's figure swings from 50 to 200 ms with the load.
    assert.ok(m.lost <= MOVE_LOST_MAX, `lost ${m.lost} pings: blackout ${m.blackoutMs} ms, more than ${MOVE_LOST_MAX * 10} ms`);
    s = await status();
    assert.equal(where('t1vm1'), m.to);
    const api = JSON.parse(
      (await run(WEFT_BIN, ['--api', s.api as string, '--token-file', s.tokenFile as string, '-o', 'json', 'instance', 'get', 't1vm1'])).stdout,
    );
    const hosts = JSON.parse((await run(WEFT_BIN, ['--api', s.api as string, '--token-file', s.tokenFile as string, '-o', 'json', 'host', 'list'])).stdout) as {
      id: string;
      name: string;
    }[];
    assert.equal(hosts.find((h) => h.id === api.hostId)?.name, m.to, 'the API places it where the lab moved it');

    // Back with --to; a routed VM moves too, pinged from the client behind the core.
    const back = await json<MoveReport>(['move', 't1vm1', '--to', from]);
    assert.equal(back.to, from);
    assert.ok(back.lost <= MOVE_LOST_MAX, `lost ${back.lost} moving back`);
    // To the host of its site that serves no backend (a routed instance stays in its site), so each backend keeps a host of its own.
    const free = s.hosts.find((x) => x.site === host(where('web2')).site && x.name !== where('web1') && x.name !== where('web2'))?.name as string;
    const routed = await json<MoveReport>(['move', 'web2', '--to', free]);
    t.diagnostic(`routed move ${routed.from} -> ${routed.to}: ${routed.lost}/${routed.sent} lost, blackout ${routed.blackoutMs} ms`);
    assert.equal(routed.ok, true, JSON.stringify(routed));
    assert.match(routed.pingFrom, /client/);

    const bad = await weft(['lab', 'move', 'nosuch', '--name', NAME], [1]);
    assert.match(bad.stderr, /error: invalid instance "nosuch": must be an instance of lab wlf: t1vm1, .*web2/);
    const same = await weft(['lab', 'move', 't1vm1', '--to', from, '--name', NAME], [1]);
    assert.match(same.stderr, /error: invalid --to ".*": is where t1vm1 is already/);
    s = await status();
    await checkPasses(t);

    // One operation at a time: of two at once, one is refused.
    // (Whether the one that ran passes is checkPasses' business: under load a BFD flap can fail one check.)
    const both = await Promise.all([0, 1].map(() => weft(['lab', 'check', '--name', NAME], [1])));
    const refused = both.filter((r) => /error: lab wlf is busy: `check` is running/.test(r.stderr));
    const ran = both.filter((r) => /no fault in place/.test(r.stdout));
    assert.deepEqual([refused.length, ran.length], [1, 1], both.map((r) => r.stdout + r.stderr).join('\n'));
    assert.equal(refused[0]?.code, 1);
  });

  test('fail backend: its host leaves the VIP next hops at the ToR; heal: it comes back', async (t) => {
    s = await status();
    const h = host(where('web1'));
    const prefix = `${s.vip}/32`;
    assert.ok(nextHops(h.rack, prefix).includes(h.underlayIp));
    const f = await json<FaultReport>(['fail', 'backend', 'web1']);
    t.diagnostic(`VIP next hop of ${h.name} withdrawn at ${h.rack} after ${f.timings[0]?.ms} ms`);
    assert.equal(f.ok, true, JSON.stringify(f));
    assert.ok(!nextHops(h.rack, prefix).includes(h.underlayIp), 'the ToR still routes the VIP to the failed backend');
    assert.deepEqual((await status()).faults, ['backend web1']);
    // The report follows the VIP up the fabric: the ToR, the site's spine, the WAN router.
    assert.ok(
      f.notes.some((n) => new RegExp(`next hops now: ToR ${h.rack} .*; spine s1sp .*; WAN wan `).test(n)),
      f.notes.join('\n'),
    );
    const again = await weft(['lab', 'fail', 'backend', 'web1', '--name', NAME], [1]);
    assert.match(again.stderr, /error: backend web1 is failed already/);

    const r = await json<FaultReport>(['heal', 'backend', 'web1']);
    t.diagnostic(`back after ${r.timings[0]?.ms} ms`);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.ok(nextHops(h.rack, prefix).includes(h.underlayIp));
    await checkPasses(t);
  });

  test('fail link: the ToR drops the host at once (carrier) or by BFD (silent); check passes after heal', async (t) => {
    s = await status();
    const h = host(where('web2'));
    for (const silent of [false, true]) {
      const f = await json<FaultReport>(['fail', 'link', h.name, ...(silent ? ['--silent'] : [])]);
      const ms = f.timings[0]?.ms;
      t.diagnostic(`${silent ? 'silent link: BFD' : 'link down: carrier'} detection and withdrawal at ${h.rack}: ${ms} ms`);
      assert.equal(f.ok, true, JSON.stringify(f));
      assert.equal(routesVia(h.rack, h.name), 0, 'the ToR still routes to the host');
      assert.ok(!nextHops(h.rack, `${s.vip}/32`).includes(h.underlayIp));
      if (silent) {
        assert.ok(
          f.notes.some((n) => /BFD session down/.test(n)),
          f.notes.join('\n'),
        );
        assert.ok((ms as number) >= 200 && (ms as number) <= 1500, `BFD 100 ms x 3 detected in ${ms} ms`);
      } else
        assert.ok(
          f.notes.some((n) => /Link down/.test(n)),
          f.notes.join('\n'),
        );
      const r = await json<FaultReport>(['heal', 'link', h.name]);
      t.diagnostic(`healed: sessions Established after ${r.timings[0]?.ms} ms, routes back after ${r.timings[1]?.ms} ms`);
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.ok(routesVia(h.rack, h.name) > 0);
      await checkPasses(t);
    }
  });

  test('fail host: the ToR stops routing to it and the operator commands are printed; heal: check passes', async (t) => {
    s = await status();
    const h = host(where('web1'));
    const mine = s.instances.filter((i) => i.host === h.name).map((i) => i.name);
    const f = await weft(['lab', 'fail', 'host', h.name, '--name', NAME], [1]);
    assert.equal(f.code, 0, f.stdout + f.stderr);
    t.diagnostic(f.stdout.split('\n')[1] ?? '');
    assert.match(f.stdout, new RegExp(`^ +\\d+ ms +ToR ${h.rack} stopped routing to ${h.name}$`, 'm'));
    assert.match(f.stdout, new RegExp(`^ +weft host update ${h.name} --state down$`, 'm'));
    for (const i of mine) assert.match(f.stdout, new RegExp(`^ +weft instance migrate ${i}$`, 'm'));
    assert.equal(routesVia(h.rack, h.name), 0);
    assert.ok(!nextHops(h.rack, `${s.vip}/32`).includes(h.underlayIp));
    const hosts = JSON.parse((await run(WEFT_BIN, ['--api', s.api as string, '--token-file', s.tokenFile as string, '-o', 'json', 'host', 'list'])).stdout) as {
      name: string;
      state: string;
    }[];
    assert.equal(hosts.find((x) => x.name === h.name)?.state, 'active', 'the server is not told: an operator is');
    const during = await weft(['lab', 'check', '--name', NAME], [1]);
    assert.equal(during.code, 1, 'check fails while a host is dark');
    assert.match(during.stdout, /FAIL +no fault in place: still failed: host/);
    const link = await weft(['lab', 'fail', 'link', h.name, '--name', NAME], [1]);
    assert.match(link.stderr, /error: host .* is failed already/);

    const r = await json<FaultReport>(['heal', 'host', h.name]);
    t.diagnostic(`healed: sessions Established after ${r.timings[0]?.ms} ms, routes back after ${r.timings[1]?.ms} ms`);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.ok(routesVia(h.rack, h.name) > 0);
    await checkPasses(t);
  });
});
