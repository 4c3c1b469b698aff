import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
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

/** Two hosts' Vms on one fake libvirt cluster, their instance directories on one shared directory (a site with shared storage). */
function sharedPair(o: { waitMs?: number } = {}) {
  const cluster = new Map<string, FakeVmHost>();
  const mk = (hostId: string, uri: string) => {
    const host = new FakeVmHost({ uri, cluster });
    const vms = new Vms({
      dir,
      host,
      domainType: 'test',
      disk: async () => true,
      migrationWaitMs: o.waitMs ?? 60_000,
      write: async (d, p): Promise<WrittenFiles> => {
        await mkdir(d, { recursive: true });
        await writeFile(join(d, 'domain.xml'), p.domain);
        return { domain: true, seed: true };
      },
    });
    return { hostId, uri, host, vms };
  };
  return { a: mk('h1', 'qemu+tls://192.0.2.1/system'), b: mk('h2', 'qemu+tls://192.0.2.2/system') };
}

const sharedInfo = (hostId: string, uri: string | null): InstanceInfo =>
  info({ hostId, migrationUri: uri, profile: { ...input, vm: { ...input.vm, sharedStorage: true } } });

test('shared storage: a move is a live migration; the destination waits for it and the shared directory stays', async () => {
  const { a, b } = sharedPair();
  const name = `weft-${ID}`;
  await a.vms.update(new Map([[ID, sharedInfo('h1', a.uri)]]), 'h1');
  assert.equal(a.host.domains.get(name)?.state, 'running');
  // The move, as each agent's state has it: gone from h1 (departed, to h2's URI), arrived on h2.
  const moved = sharedInfo('h2', b.uri);
  const done: string[] = [];
  await b.vms.update(new Map([[ID, moved]]), 'h2', { departed: new Map(), arrived: new Set([ID]) });
  assert.equal(b.host.domains.has(name), false, 'the destination does not start it cold while the source may migrate it');
  assert.equal(b.vms.status.awaiting, 1);
  await a.vms.update(new Map(), 'h1', { departed: new Map([[ID, moved]]), arrived: new Set(), done: (id) => done.push(id) });
  assert.deepEqual(
    a.host.log.filter((l) => l.startsWith('migrate')),
    [`migrate ${name}`],
  );
  assert.equal(a.host.domains.has(name), false, 'undefined at the source');
  assert.equal(b.host.domains.get(name)?.state, 'running', 'running at the destination, never stopped');
  assert.equal(a.vms.status.migrated, 1);
  assert.deepEqual(done, [ID], 'the source is done with it: its directory is the destination’s now');
  assert.ok(existsSync(join(dir, 'instances', ID, 'domain.xml')), 'the shared directory stays for the destination');
  await b.vms.update(new Map([[ID, moved]]), 'h2', { departed: new Map(), arrived: new Set([ID]) });
  assert.equal(b.vms.status.awaiting, 0);
  assert.deepEqual(
    b.host.log.filter((l) => /^(start|stop)/.test(l)),
    [],
    'it came in running: no cold start',
  );
  // A later pass of the source with nothing departed leaves the destination's directory alone.
  await a.vms.update(new Map(), 'h1', { departed: new Map(), arrived: new Set() });
  assert.ok(existsSync(join(dir, 'instances', ID, 'domain.xml')));
  await Promise.all([a.vms.stop(), b.vms.stop()]);
  await rm(join(dir, 'instances', ID), { recursive: true, force: true });
});

test('shared storage: a failed migration stops the domain at the source, and the destination starts it cold after its wait', async () => {
  const { a, b } = sharedPair({ waitMs: 200 });
  const name = `weft-${ID}`;
  await a.vms.update(new Map([[ID, sharedInfo('h1', a.uri)]]), 'h1');
  a.host.failNext('migrate');
  const moved = sharedInfo('h2', b.uri);
  await a.vms.update(new Map(), 'h1', { departed: new Map([[ID, moved]]), arrived: new Set() });
  assert.equal(a.host.domains.has(name), false, 'never two copies on one disk: stopped and undefined at the source');
  assert.equal(a.vms.status.migrationsFailed, 1);
  await b.vms.update(new Map([[ID, moved]]), 'h2', { departed: new Map(), arrived: new Set([ID]) });
  assert.equal(b.vms.status.awaiting, 1);
  // Its own recheck, once a second, starts it when the wait is over.
  const end = Date.now() + 10_000;
  // The pass is over once it has counted: running, and nothing awaited.
  const awaiting = () => b.vms.status.awaiting;
  while (!(b.host.domains.get(name)?.state === 'running' && awaiting() === 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.equal(b.host.domains.get(name)?.state, 'running', 'started cold');
  assert.equal(b.vms.status.awaiting, 0);
  await Promise.all([a.vms.stop(), b.vms.stop()]);
  await rm(join(dir, 'instances', ID), { recursive: true, force: true });
});
