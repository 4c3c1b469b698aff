import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PROFILE_CASES } from '../../test/support/profile-cases.js';
import type { InstanceInfo } from '../model/changes.js';
import { FakeVmHost } from './vm/fake.js';
import type { WrittenFiles } from './vm/seed.js';
import { Vms } from './vms.js';

const HOST = 'h1';
const input = PROFILE_CASES['overlay-two-ports'];
if (!input) throw new Error('no such case');
const ID = input.instance.id;
const info = (o: Partial<InstanceInfo> = {}): InstanceInfo => ({
  instanceId: ID,
  tenantId: input.instance.tenantId,
  name: input.instance.name,
  hostId: HOST,
  state: 'running',
  profile: input,
  ...o,
});

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-vms-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A Vms on a fake hypervisor whose file writes are recorded (the real ones are tested with cloud-localds in vm/seed.test.ts). */
function setup(o: { changed?: boolean } = {}) {
  const host = new FakeVmHost({ others: ['test', 'weft-not-an-instance'] });
  const writes: string[] = [];
  const vms = new Vms({
    dir,
    host,
    domainType: 'test',
    disk: async () => true,
    write: async (d, p): Promise<WrittenFiles> => {
      writes.push(d);
      await mkdir(d, { recursive: true });
      await writeFile(join(d, 'domain.xml'), p.domain);
      return { domain: o.changed ?? true, seed: true };
    },
  });
  return { host, vms, writes };
}

test('a local instance is written, defined and started; stopped and started again as its state says', async () => {
  const { host, vms, writes } = setup();
  await vms.update(new Map([[ID, info()]]), HOST);
  assert.equal(host.domains.get(`weft-${ID}`)?.state, 'running');
  assert.deepEqual(writes, [join(dir, 'instances', ID)]);
  assert.ok(host.domains.get(`weft-${ID}`)?.xml.includes(`${dir}/instances/${ID}/console.sock`), "the agent's directory, not the server's");
  assert.deepEqual([vms.status.running, vms.status.stopped, vms.status.failed.size], [1, 0, 0]);
  await vms.update(new Map([[ID, info({ state: 'stopped' })]]), HOST);
  assert.equal(host.domains.get(`weft-${ID}`)?.state, 'stopped');
  assert.deepEqual([vms.status.running, vms.status.stopped], [0, 1]);
  await vms.stop();
});

test('an unchanged profile is not defined again; a changed one is', async () => {
  const { host, vms } = setup({ changed: false });
  await vms.update(new Map([[ID, info()]]), HOST);
  const defines = () => host.log.filter((l) => l.startsWith('define')).length;
  assert.equal(defines(), 1, 'defined once: it was not there');
  await vms.update(new Map([[ID, info()]]), HOST);
  assert.equal(defines(), 1, 'the same files: no define');
  await vms.stop();
});

test('an instance gone from this host is undefined and its files removed; domains that are no instance of ours are left', async () => {
  const { host, vms } = setup();
  await vms.update(new Map([[ID, info()]]), HOST);
  // Moved away: the record now names another host.
  await vms.update(new Map([[ID, info({ hostId: 'h2' })]]), HOST);
  assert.equal(host.domains.has(`weft-${ID}`), false);
  assert.ok(host.domains.has('test') && host.domains.has('weft-not-an-instance'), 'not ours to remove');
  await vms.stop();
});

test('a failure is reported and retried until it succeeds; an instance without an image is left alone', async () => {
  const { host, vms } = setup();
  host.failNext('start', 1);
  await vms.update(new Map([[ID, info()]]), HOST);
  assert.match(vms.status.failed.get(ID) ?? '', /injected failure/);
  const end = Date.now() + 10_000;
  // The retry's pass is over once it has counted: running, and nothing failing.
  const settled = () => host.domains.get(`weft-${ID}`)?.state === 'running' && vms.status.failed.size === 0;
  while (!settled() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.equal(host.domains.get(`weft-${ID}`)?.state, 'running', 'retried');
  assert.equal(vms.status.failed.size, 0);
  const bare = '0190a1b2-0000-7000-8000-00000000e0ff';
  await vms.update(
    new Map([
      [ID, info()],
      [bare, info({ instanceId: bare, profile: null })],
    ]),
    HOST,
  );
  assert.equal(vms.status.noImage, 1);
  assert.equal(host.domains.has(`weft-${bare}`), false);
  await vms.stop();
});

test('a profile the renderer refuses fails that instance only, naming the field', async () => {
  const { host, vms } = setup();
  const other = '0190a1b2-0000-7000-8000-00000000e0aa';
  const bad = info({ instanceId: other, profile: { ...input, instance: { ...input.instance, id: other, image: '../x' } } });
  await vms.update(
    new Map([
      [ID, info()],
      [other, bad],
    ]),
    HOST,
  );
  assert.match(vms.status.failed.get(other) ?? '', /image/);
  assert.equal(host.domains.get(`weft-${ID}`)?.state, 'running', 'the good one runs');
  await vms.stop();
});
