// `weft lab` as an operator runs it: the real CLI builds a cloud of two sites
// in the background, with one instance booted as a real VM under qemu (its
// console read through `weft console`), checks it end to end, survives its
// own daemon being killed (the next `up` cleans up first, then builds the
// same lab from the same seed) and removes everything on `down`.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { labDir } from '../../src/lab/registry.js';
import { WEFT_BIN } from '../../src/lab/server-process.js';
import { run } from '../../src/sys/exec.js';
import { until } from '../../src/sys/until.js';

const root = process.getuid?.() === 0;
const NAME = 'wlt';
const weft = (args: string[], okCodes: number[] = []) => run(WEFT_BIN, args, { okCodes, timeoutMs: 300_000 });
const namespaces = () =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(`${NAME}-`));

after(async () => {
  await weft(['lab', 'down', '--name', NAME], [1]).catch(() => undefined);
});

test('weft lab up: bad sizes name the field, the value and what is allowed; --racks is gone', async () => {
  const sites = await weft(['lab', 'up', '--name', NAME, '--sites', '5'], [1]);
  assert.equal(sites.code, 1);
  assert.match(sites.stderr, /^error: invalid --sites 5: must be an integer 1\.\.4$/m);
  const many = await weft(['lab', 'up', '--name', NAME, '--sites', '2', '--racks-per-site', '4', '--hosts-per-rack', '5'], [1]);
  assert.match(many.stderr, /^error: invalid --hosts-per-rack 5: sites x racksPerSite x hostsPerRack must be at most 32 \(is 40\)$/m);
  const seed = await weft(['lab', 'up', '--name', NAME, '--seed', '-3'], [1]);
  assert.match(seed.stderr, /^error: invalid --seed -3: must be an integer 0\.\.4294967295$/m);
  // A usage error: exit 2.
  const racks = await weft(['lab', 'up', '--name', NAME, '--racks', '2'], [2]);
  assert.match(racks.stderr, /unknown option '--racks'/);
});

interface Status {
  status: string;
  daemon: { pid: number };
  api: string;
  tokenFile: string;
  vip: string;
  guest: { name: string; host: string; ipv4: string; ipv6: string; consoleSocket: string } | null;
  shape: { seed: number };
  sites: { name: string; underlayPool: string }[];
  hosts: { name: string; site: string; rack: string }[];
  instances: { name: string; host: string; ipv4: string }[];
}

test('weft lab: up with a booted VM, check, console, status, a killed daemon cleaned up by the next up, down', {
  skip: root ? false : 'needs root (network namespaces)',
}, async (t) => {
  const size = ['--name', NAME, '--sites', '2', '--racks-per-site', '2', '--hosts-per-rack', '1', '--tenants', '2', '--instances', '8', '--seed', '5'];
  const t0 = performance.now();
  const up = await weft(['lab', 'up', ...size, '--boot-vm']);
  t.diagnostic(`lab up (2 sites x 2 racks x 1 host, 8 instances, a qemu VM) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  assert.match(up.stderr, /BGP sessions established \(hosts, ToRs, spines, WAN\)/);
  assert.match(up.stderr, /8 instances placed by the server \(seed 5\)/);
  const booted = /t1guest booted under qemu \(TCG\) on (\S+) from the profile its agent wrote, in ([\d.]+) s/.exec(up.stderr);
  assert.ok(booted, up.stderr);
  t.diagnostic(`t1guest booted in ${booted[2]} s`);
  // The lab's admin token is random and only in a file root alone reads: up prints where it is, never the token.
  assert.match(up.stdout, /^export WEFT_API=http:\/\/127\.0\.0\.1:\d+ WEFT_TOKEN_FILE=\S+$/m);
  assert.doesNotMatch(up.stdout + up.stderr, /weft_[A-Za-z0-9_-]{43}/, 'lab up prints no token');
  // And the web console's URL, on the lab's API, which serves it.
  const api = /^export WEFT_API=(\S+)/m.exec(up.stdout)?.[1];
  const consoleUrl = /console: (http:\/\/\S+\/ui\/)/.exec(up.stderr)?.[1];
  assert.equal(consoleUrl, `${api}/ui/`, up.stderr);
  const ui = await fetch(consoleUrl as string);
  assert.equal(ui.status, 200);
  assert.match(await ui.text(), /<title>Weft console<\/title>/);

  const again = await weft(['lab', 'up', ...size], [1]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /error: lab wlt is already ready/);

  const check = await weft(['lab', 'check', '--name', NAME], [1]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  // 4 instances per tenant, spread over both sites: 2 x 4 x 3 ordered pairs, both families; 2 x 2 x 2 x 2 of them between sites.
  assert.match(check.stdout, /ok +reachability within tenants: 48\/48 pings answered \(32 between sites\)/);
  assert.match(check.stdout, /ok +overlay MTU 8950 across the underlay: 8950-byte packets, not fragmented: 4 answered \(t1vm1 \(s\d\) -> t1vm\d \(s\d\) v4/);
  assert.match(check.stdout, /ok +isolation between tenants/);
  assert.match(check.stdout, /ok +no ARP, NDP or broadcast flooded across the underlay/);
  assert.match(
    check.stdout,
    /ok +VIP from outside the racks: 24\/24 requests from a client behind the wan router answered by web1, web2 \(racks s1r\d, s1r\d\)/,
  );
  // 4 ToRs (a host and the spine each, 2 sessions per peer), 2 spines (2 racks, the WAN), the WAN (2 spines), both ends counted.
  assert.match(check.stdout, /ok +BGP sessions \(ToRs to hosts and spines, spines to the WAN\): 32\/32 Established on 7 routers/);
  assert.match(check.stdout, /ok +VM profiles \(libvirt domain and cloud-init seed\) for every instance: 8\/8 complete, 8\/8 written on their hypervisor only/);
  // The qemu VM answers over the overlay from a t1 VM of the other site, both families, and its serial console runs a command.
  assert.match(
    check.stdout,
    /ok +booted VM \(qemu, from its profile\): t1guest on s\dr\dh1: from t1vm\d \(s\dr\dh1\): 10\.0\.0\.\d+ answered, fd00:10::[0-9a-f]+ answered; serial console through the API: ran a command/,
  );
  assert.match(check.stdout, /all checks passed/);

  const status = JSON.parse((await weft(['-o', 'json', 'lab', 'status', '--name', NAME])).stdout) as Status;
  assert.equal(status.status, 'ready');
  assert.equal(status.guest?.name, 't1guest');
  assert.equal(status.guest?.host, booted[1]);
  assert.match(status.guest?.consoleSocket ?? '', /\/vm\/s\dr\dh1\/instances\/[0-9a-f-]{36}\/console\.sock$/);
  // An operator's `weft console`: the guest's shell answers a command (its result, not the echo of the input), Ctrl-] detaches.
  const con = spawn(WEFT_BIN, ['console', 't1guest'], { env: { ...process.env, WEFT_API: status.api, WEFT_TOKEN_FILE: status.tokenFile }, stdio: 'pipe' });
  let out = '';
  con.stdout.on('data', (b: Buffer) => {
    out += b.toString('latin1');
  });
  const exited = new Promise<number | null>((r) => con.once('exit', r));
  try {
    await until(
      'the guest to answer on its console',
      async () => {
        con.stdin.write('echo weft-$((40+2))-console\n');
        await new Promise((r) => setTimeout(r, 500));
        return out.includes('weft-42-console');
      },
      30_000,
    );
    con.stdin.write('\x1d');
    assert.equal(await exited, 0);
  } finally {
    con.kill('SIGKILL');
  }
  // A live migration of the real VM (qemu's own, after the API's migrate), followed by the overlay; it still answers, console too.
  const mv = JSON.parse((await weft(['-o', 'json', 'lab', 'move', 't1guest', '--name', NAME])).stdout) as {
    kind: string;
    from: string;
    to: string;
    ok: boolean;
    blackoutMs: number;
    notes: string[];
  };
  assert.equal(mv.kind, 'qemu');
  assert.ok(mv.ok, JSON.stringify(mv));
  assert.notEqual(mv.to, mv.from);
  assert.ok(
    mv.notes.some((n) => /live-migrated by qemu in \d+ ms/.test(n)),
    mv.notes.join('; '),
  );
  t.diagnostic(`t1guest live-migrated ${mv.from} -> ${mv.to}: blackout ${mv.blackoutMs} ms; ${mv.notes.join('; ')}`);
  const after = await weft(['lab', 'check', '--name', NAME], [1]);
  assert.equal(after.code, 0, after.stdout + after.stderr);
  assert.match(after.stdout, new RegExp(`ok +booted VM \\(qemu, from its profile\\): t1guest on ${mv.to}: .*serial console through the API: ran a command`));
  assert.equal(status.shape.seed, 5);
  assert.deepEqual(
    status.hosts.map((h) => `${h.name}@${h.site}`),
    ['s1r1h1@s1', 's1r2h1@s1', 's2r1h1@s2', 's2r2h1@s2'],
  );
  // Every tenant's instances are in both sites.
  const siteOf = new Map(status.hosts.map((h) => [h.name, h.site]));
  for (const t of ['t1', 't2'])
    assert.deepEqual([...new Set(status.instances.filter((i) => i.name.startsWith(`${t}vm`)).map((i) => siteOf.get(i.host)))].sort(), ['s1', 's2'], t);
  assert.equal(statSync(status.tokenFile).mode & 0o777, 0o600, 'the token file is 0600');
  const human = await weft(['lab', 'status', '--name', NAME]);
  assert.doesNotMatch(human.stdout, /weft_[A-Za-z0-9_-]{43}/, 'lab status prints no token');
  assert.match(human.stdout, new RegExp(`token in ${status.tokenFile}`));
  // The API is reachable from the machine with the token in that file, and holds the lab's sites with their own pools.
  const cli = (args: string[]) => run(WEFT_BIN, ['--api', status.api, '--token-file', status.tokenFile, '-o', 'json', ...args]);
  assert.equal((JSON.parse((await cli(['host', 'list'])).stdout) as unknown[]).length, 4);
  const sites = JSON.parse((await cli(['site', 'list'])).stdout) as { name: string; underlayPool: string }[];
  assert.deepEqual(sites.map((x) => `${x.name} ${x.underlayPool}`).sort(), ['s1 192.0.2.0/26', 's2 192.0.2.64/26']);

  // The daemon dies: the next `up` removes what it left, then builds anew: the same lab, from the same seed.
  process.kill(status.daemon.pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  await weft(['lab', 'up', ...size]);
  const rebuilt = JSON.parse((await weft(['-o', 'json', 'lab', 'status', '--name', NAME])).stdout) as Status;
  assert.deepEqual(rebuilt.instances, status.instances, 'the same seed places every instance on the same host with the same addresses');
  assert.equal(rebuilt.vip, status.vip);
  assert.equal((await weft(['lab', 'check', '--name', NAME], [1])).code, 0);

  const down = await weft(['lab', 'down', '--name', NAME]);
  assert.match(down.stdout, /lab wlt stopped and removed/);
  assert.deepEqual(namespaces(), []);
  for (const f of [`${NAME}.json`, `${NAME}.state`, `${NAME}.sock`, `${NAME}.log`]) assert.equal(existsSync(join(labDir(), f)), false, f);
  assert.doesNotMatch(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }), /weft-bird-wlt-/, 'no BIRD of the lab left');
  assert.doesNotMatch(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }), /qemu-system-x86_64 .*weft-wlt-/, 'no qemu of the lab left');
  assert.match((await weft(['lab', 'down', '--name', NAME])).stdout, /lab wlt is not up/);
});
