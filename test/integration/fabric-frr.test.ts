// The rendered FRR config on a real FRR: zebra and bgpd in a network
// namespace of their own (their sockets in a directory of their own), a
// host's BIRD in another, one veth between them. The ToR's config is loaded
// as vtysh loads frr.conf; the host's session comes up (BIRD to FRR), and
// its route map takes the routed address the host owns and refuses another's
// prefix, a too-specific one and a bogon. Then `applyFrr` as `weft fabric
// apply` runs it: a change that keeps the session is confirmed, one that
// breaks it is rolled back, one vtysh refuses never reaches FRR.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyFrr, checkFrr, frrEstablished } from '../../src/fabric/apply.js';
import { renderFrr } from '../../src/model/fabric-frr.js';
import { run } from '../../src/sys/exec.js';
import { until } from '../../src/sys/until.js';
import { oneRackFabric } from '../support/fabric.js';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync('/usr/lib/frr/bgpd') ? 'FRR is not installed' : false;
const { tor, view } = oneRackFabric({ site: 'ff', platform: 'frr' });

const HOST_CONF = `router id 192.0.2.1;
protocol device {}
protocol static own4 { ipv4; route 203.0.113.5/32 blackhole; route 198.51.100.0/24 blackhole; route 203.0.113.0/28 blackhole; route 10.1.0.0/16 blackhole; }
protocol bgp tor {
  local as 65101;
  neighbor 192.0.2.0 as 65010;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import all; export where source = RTS_STATIC; };
}
`;

describe('the rendered frr.conf on a real FRR', { skip }, () => {
  const torNs = `wfftr${process.pid}`;
  const hostNs = `wffhv${process.pid}`;
  let dir = '';
  const procs: ChildProcess[] = [];
  const vtysh = async (...args: string[]) => {
    const r = await run('vtysh', ['--vty_socket', dir, ...args], { okCodes: [1, 2] });
    assert.equal(r.code, 0, `vtysh ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const daemon = (name: string) =>
    procs.push(
      spawn(
        'ip',
        ['netns', 'exec', torNs, `/usr/lib/frr/${name}`, '-f', '/dev/null', '-z', join(dir, 'zserv.api'), '--vty_socket', dir, '-i', join(dir, `${name}.pid`)],
        {
          stdio: 'ignore',
        },
      ),
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-fabric-frr-'));
    execFileSync('chown', ['frr:frr', dir]);
    execFileSync('ip', ['netns', 'add', torNs]);
    execFileSync('ip', ['netns', 'add', hostNs]);
    execFileSync('ip', ['-n', torNs, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hostNs]);
    for (const [ns, addr] of [
      [torNs, '192.0.2.0/31'],
      [hostNs, '192.0.2.1/31'],
    ] as const) {
      execFileSync('ip', ['-n', ns, 'addr', 'add', addr, 'dev', 'eth0']);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    daemon('zebra');
    await until('zebra up', async () => existsSync(join(dir, 'zserv.api')), 10_000);
    daemon('bgpd');
    await until('bgpd up', async () => ['zebra', 'bgpd'].every((d) => existsSync(join(dir, `${d}.vty`))), 10_000);
    writeFileSync(join(dir, 'host.conf'), HOST_CONF);
    procs.push(spawn('ip', ['netns', 'exec', hostNs, 'bird', '-f', '-c', join(dir, 'host.conf'), '-s', join(dir, 'host.ctl')], { stdio: 'ignore' }));
  });
  after(() => {
    for (const p of procs) p.kill('SIGKILL');
    for (const ns of [torNs, hostNs]) execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  test("BIRD's host session comes up; the route map takes only what the host owns", async () => {
    const conf = join(dir, 'frr.conf');
    writeFileSync(conf, renderFrr(view()));
    await checkFrr(conf);
    await vtysh('-f', conf);
    const state = async () =>
      (JSON.parse(await vtysh('-c', 'show bgp ipv4 unicast summary json')) as { peers?: Record<string, { state?: string }> }).peers?.['192.0.2.1']?.state;
    await until('the host session Established', async () => (await state()) === 'Established', 60_000);
    const routes = async () =>
      Object.keys((JSON.parse(await vtysh('-c', 'show bgp ipv4 unicast json')) as { routes?: Record<string, unknown> }).routes ?? {}).sort();
    await until('the host route', async () => (await routes()).includes('203.0.113.5/32'), 30_000);
    assert.deepEqual(
      (await routes()).filter((p) => p !== '0.0.0.0/0'),
      ['203.0.113.5/32'],
    );
    // The host got the default route from the ToR.
    await until(
      'the default route at the host',
      async () => /0\.0\.0\.0\/0/.test((await run('birdc', ['-s', join(dir, 'host.ctl'), 'show', 'route'], { okCodes: [1] })).stdout),
      30_000,
    );
  });

  test('apply: a change that keeps the session is confirmed; one that breaks it is rolled back; a refused one changes nothing', async () => {
    const confPath = join(dir, 'running.conf');
    writeFileSync(confPath, renderFrr(view()));
    const running = () => vtysh('-c', 'show running-config');
    const established = async () => (await frrEstablished({ vtySocket: dir })).has('192.0.2.1');
    await until('the host session Established', established, 60_000);

    const changed = renderFrr(view(65101, { ...tor, maxPrefix: 50 }));
    assert.deepEqual(await applyFrr(changed, { confPath, confirmTimeoutS: 30, vtySocket: dir }), { confirmed: true, down: [] });
    assert.equal(readFileSync(confPath, 'utf8'), changed, 'confirmed: the file is the new config');
    assert.match(await running(), /neighbor 192\.0\.2\.1 maximum-prefix 50/);

    // The source of truth says the host has another ASN: its session cannot come back, so the change is undone.
    const broken = renderFrr(view(65199));
    const rolled = await applyFrr(broken, { confPath, confirmTimeoutS: 3, vtySocket: dir });
    assert.deepEqual(rolled, { confirmed: false, down: ['192.0.2.1'] });
    assert.equal(readFileSync(confPath, 'utf8'), changed, 'the file is still the config that runs');
    assert.match(await running(), /neighbor 192\.0\.2\.1 remote-as 65101/);
    await until('the host session Established again after the rollback', established, 60_000);

    await assert.rejects(
      applyFrr('router bgp 65010\n neighbor 192.0.2.1 remote-as\n', { confPath, confirmTimeoutS: 3, vtySocket: dir }),
      /FRR refused the config/,
    );
    assert.match(await running(), /maximum-prefix 50/, 'a refused config never reached FRR');
  });
});
