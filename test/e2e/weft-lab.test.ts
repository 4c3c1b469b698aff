// `weft lab` as an operator runs it: the real CLI builds a cloud in the
// background, checks it end to end, survives its own daemon being killed
// (the next `up` cleans up first) and removes everything on `down`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { labDir } from '../../src/lab/registry.js';
import { WEFT_BIN } from '../../src/lab/server-process.js';
import { run } from '../../src/sys/exec.js';

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

test('weft lab: up, check, status, a killed daemon cleaned up by the next up, down', { skip: root ? false : 'needs root (network namespaces)' }, async (t) => {
  const size = ['--name', NAME, '--racks', '2', '--hosts-per-rack', '2', '--tenants', '2', '--instances', '8'];
  const t0 = performance.now();
  const up = await weft(['lab', 'up', ...size]);
  t.diagnostic(`lab up (2 racks x 2 hosts, 8 instances) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  assert.match(up.stderr, /BGP sessions established/);
  assert.match(up.stdout, /^export WEFT_API=http:\/\/127\.0\.0\.1:\d+ WEFT_TOKEN=\S+$/m);

  const again = await weft(['lab', 'up', ...size], [1]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /error: lab wlt is already ready/);

  const check = await weft(['lab', 'check', '--name', NAME], [1]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /ok +reachability within tenants: 48\/48 pings answered/);
  assert.match(check.stdout, /ok +isolation between tenants/);
  assert.match(check.stdout, /ok +no ARP, NDP or broadcast across the underlay/);
  assert.match(check.stdout, /ok +VIP from outside the racks: 24\/24 .* answered by web1, web2/);
  assert.match(check.stdout, /all checks passed/);

  const status = JSON.parse((await weft(['-o', 'json', 'lab', 'status', '--name', NAME])).stdout) as {
    status: string;
    daemon: { pid: number };
    api: string;
    hosts: unknown[];
  };
  assert.equal(status.status, 'ready');
  assert.equal(status.hosts.length, 4);
  // The API is reachable from the machine with the printed token.
  const hosts = await run(WEFT_BIN, ['--api', status.api, '--token', 'lab-admin-token-0123456789abcdef', '-o', 'json', 'host', 'list']);
  assert.equal((JSON.parse(hosts.stdout) as unknown[]).length, 4);

  // The daemon dies: the next `up` removes what it left, then builds anew.
  process.kill(status.daemon.pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  await weft(['lab', 'up', ...size]);
  assert.equal((await weft(['lab', 'check', '--name', NAME], [1])).code, 0);

  const down = await weft(['lab', 'down', '--name', NAME]);
  assert.match(down.stdout, /lab wlt stopped and removed/);
  assert.deepEqual(namespaces(), []);
  for (const f of [`${NAME}.json`, `${NAME}.state`, `${NAME}.sock`]) assert.equal(existsSync(join(labDir(), f)), false, f);
  assert.doesNotMatch(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }), /weft-bird-wlt-/, 'no BIRD of the lab left');
  assert.match((await weft(['lab', 'down', '--name', NAME])).stdout, /lab wlt is not up/);
});
