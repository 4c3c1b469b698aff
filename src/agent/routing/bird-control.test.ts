// BirdControl against a real BIRD 2 in a throwaway network namespace: a
// rendered config is applied, a broken one is refused with BIRD's message
// and the running one kept, and BIRD's own undo timer reverts an
// unconfirmed change (what the FakeBird models).
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../../sys/exec.js';
import { BirdControl } from './bird.js';
import { renderBirdConf } from './bird-conf.js';
import { DEFAULT_BFD, type RoutingInputs } from './inputs.js';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespace)' : false;

const inputs = (vips: string[]): RoutingInputs => ({
  hostName: 'hv1',
  routerId: '192.0.2.1',
  asn: 65101,
  drain: false,
  hostPrefix6: null,
  routedAddrs: [],
  vips,
  sessions: [],
  rpki: null,
  roas: [],
  irr: {},
  bfd: DEFAULT_BFD,
});

describe('BirdControl on a real BIRD', { skip }, () => {
  const ns = `wbirdc${process.pid}`;
  let dir = '';
  let bird: ChildProcess | null = null;
  let ctl: BirdControl;
  const socket = () => join(dir, 'bird.ctl');
  const routes = async () => (await run('birdc', ['-s', socket(), 'show', 'route'])).stdout;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-birdc-'));
    execFileSync('ip', ['netns', 'add', ns]);
    writeFileSync(join(dir, 'bird.conf'), 'router id 192.0.2.1;\nprotocol device {}\n');
    bird = spawn('ip', ['netns', 'exec', ns, 'bird', '-f', '-c', join(dir, 'bird.conf'), '-s', socket()], { stdio: 'ignore' });
    for (let i = 0; i < 250; i++) {
      if ((await run('birdc', ['-s', socket(), 'show', 'status'], { okCodes: [1] })).code === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    ctl = new BirdControl({ socket: socket(), confPath: join(dir, 'bird.conf'), netns: ns });
  });
  after(() => {
    bird?.kill('SIGKILL');
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  test('a rendered config is applied and its sessions read back', async () => {
    await ctl.configure(renderBirdConf(inputs(['198.51.100.80/32'])));
    assert.match(await routes(), /198\.51\.100\.80\/32\s+blackhole/);
    assert.equal(readFileSync(join(dir, 'bird.conf.pre-weft'), 'utf8'), 'router id 192.0.2.1;\nprotocol device {}\n', "the operator's config is kept");
    assert.deepEqual(await ctl.sessions(), []);
  });

  test("a config BIRD cannot parse is refused with BIRD's line and reason; the running one stays", async () => {
    const bad = renderBirdConf(inputs(['198.51.100.81/32'])).replace('router id 192.0.2.1;', 'router id 192.0.2.1;\nthis is not bird;');
    await assert.rejects(ctl.check(bad), /BIRD refused the config: bird\.conf:\d+:\d+ syntax error/);
    await assert.rejects(ctl.configure(bad), /syntax error/);
    assert.match(await routes(), /198\.51\.100\.80\/32/);
    assert.doesNotMatch(await routes(), /198\.51\.100\.81/);
  });

  test('an unconfirmed change is undone by BIRD itself; a confirmed one stays', async () => {
    await ctl.configure(renderBirdConf(inputs(['198.51.100.82/32'])), { undoAfterS: 1 });
    assert.match(await routes(), /198\.51\.100\.82/);
    await new Promise((r) => setTimeout(r, 2500));
    assert.doesNotMatch(await routes(), /198\.51\.100\.82/, 'reverted');
    assert.match(await routes(), /198\.51\.100\.80/);
    await ctl.configure(renderBirdConf(inputs(['198.51.100.83/32'])), { undoAfterS: 1 });
    await ctl.confirm();
    await new Promise((r) => setTimeout(r, 2000));
    assert.match(await routes(), /198\.51\.100\.83/, 'kept once confirmed');
  });
});
